"""Configuration from the environment (documented in docs/operations.md)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from flask_appbuilder.const import AUTH_DB

#: (environment variable, meaning, default) — the one table of settings.
ENVIRONMENT = [
    ("TRELLIS_INSTANCE_PATH", "folder for the SQLite database and the generated secret key",
     "./instance"),
    ("TRELLIS_DATABASE_URL", "SQLAlchemy URL of the database", "sqlite:///<instance>/trellis.db"),
    ("TRELLIS_REDIS_URL", "Redis URL for rq jobs and rate limits; unset: jobs run in-process", ""),
    ("TRELLIS_SECRET_KEY", "Flask secret key; unset: generated once into <instance>/secret_key", ""),
    ("TRELLIS_PLUGINS", "comma-separated plugins to load; unset: every installed plugin", ""),
    ("TRELLIS_PLUGIN_STATE_TTL", "seconds a process caches which plugins are enabled", "2"),
    ("TRELLIS_PERMISSION_CACHE_TTL", "seconds a process caches role permissions (a revoked "
     "permission stops working within this time)", "2"),
    ("TRELLIS_CUSTOM_FIELDS_TTL", "seconds a process trusts its cached custom field "
     "definitions before checking the database for changes", "1"),
    ("TRELLIS_QUEUE_PREFIX", "prefix of rq queue names (one Redis, several Trellis sites)", "trellis-"),
    ("TRELLIS_SECURE_COOKIES", "1: session cookies only over HTTPS (set it in production)", "0"),
    ("TRELLIS_FORCE_HTTPS", "1: redirect http to https and send Strict-Transport-Security "
     "(behind a TLS-terminating proxy, with TRELLIS_PROXY_FIX=1)", "0"),
    ("TRELLIS_LOGIN_RATE_LIMIT", "login attempts allowed per client address", "10 per minute"),
    ("TRELLIS_COUNT_CAP", "lists count rows exactly up to this many, then report 'more'", "10000"),
    ("TRELLIS_LOG_LEVEL", "log level of the trellis loggers", "INFO"),
    ("TRELLIS_PROXY_FIX", "1: trust one reverse proxy's X-Forwarded-For/-Proto/-Host headers "
     "(client addresses for rate limits, https URLs)", "0"),
    ("TRELLIS_SMTP_HOST", "SMTP server for outgoing e-mail (the core setting smtp_host "
     "overrides it); unset: messages go to the outbox folder", ""),
    ("TRELLIS_SMTP_PORT", "SMTP port", "25"),
    ("TRELLIS_SMTP_USER", "SMTP user name; unset: no login", ""),
    ("TRELLIS_SMTP_PASSWORD", "SMTP password", ""),
    ("TRELLIS_SMTP_STARTTLS", "1: upgrade the SMTP connection with STARTTLS", "0"),
    ("TRELLIS_MAIL_FROM", "sender address of outgoing e-mail", "trellis@localhost"),
    ("TRELLIS_MAIL_OUTBOX", "folder where e-mail is written as .eml files when no SMTP host "
     "is set; off: not at all", "<instance>/outbox"),
    ("TRELLIS_LOCKOUT_ATTEMPTS", "failed logins in a row that lock an account; 0: never", "5"),
    ("TRELLIS_LOCKOUT_MINUTES", "how long a locked account stays locked", "15"),
    ("TRELLIS_IDLE_MINUTES", "a web session ends after this long without a request; 0: never",
     "60"),
    ("TRELLIS_ENCRYPTION_KEYS", "comma-separated Fernet keys for encrypted fields, the first "
     "encrypts (trellis keys generate); unset: derived from the secret key", ""),
    ("TRELLIS_SCHEDULER_LEASE", "seconds a standby scheduler waits before taking over "
     "from a leader that stopped renewing", "15"),
    ("TRELLIS_DASHBOARD_CACHE_TTL", "seconds a dashboard widget's data is cached per user "
     "(in Redis with TRELLIS_REDIS_URL, else in each process); 0: not cached", "60"),
    ("TRELLIS_BASE_URL", "public address of the site (https://crm.example.com), for links "
     "in e-mails; unset: e-mails show paths", ""),
]


def instance_path() -> Path:
    return Path(os.environ.get("TRELLIS_INSTANCE_PATH") or "instance").resolve()


def _secret_key(folder: Path) -> str:
    """The configured secret, or one generated once and kept in the instance folder."""
    key = os.environ.get("TRELLIS_SECRET_KEY")
    if key:
        return key
    path = folder / "secret_key"
    if path.exists():
        return path.read_text().strip()
    folder.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    tmp = folder / f".secret_key.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    try:
        os.link(tmp, path)  # atomic: exactly one booting process wins
    except FileExistsError:
        key = path.read_text().strip()
    finally:
        tmp.unlink()
    return key


def from_environment() -> dict[str, Any]:
    """Flask config built from ``TRELLIS_*`` variables and safe defaults."""
    env = os.environ.get
    folder = instance_path()
    folder.mkdir(parents=True, exist_ok=True)
    redis_url = env("TRELLIS_REDIS_URL") or None
    secure = env("TRELLIS_SECURE_COOKIES", "0") == "1"
    return {
        "TRELLIS_INSTANCE_PATH": str(folder),
        "SQLALCHEMY_DATABASE_URI": env("TRELLIS_DATABASE_URL")
        or f"sqlite:///{folder / 'trellis.db'}",
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "SECRET_KEY": _secret_key(folder),
        "TRELLIS_REDIS_URL": redis_url,
        "TRELLIS_PLUGINS": [p.strip() for p in env("TRELLIS_PLUGINS", "").split(",") if p.strip()]
        or None,
        "TRELLIS_PLUGIN_STATE_TTL": float(env("TRELLIS_PLUGIN_STATE_TTL", "2")),
        "TRELLIS_PERMISSION_CACHE_TTL": float(env("TRELLIS_PERMISSION_CACHE_TTL", "2")),
        "TRELLIS_CUSTOM_FIELDS_TTL": float(env("TRELLIS_CUSTOM_FIELDS_TTL", "1")),
        "TRELLIS_QUEUE_PREFIX": env("TRELLIS_QUEUE_PREFIX", "trellis-"),
        "TRELLIS_COUNT_CAP": int(env("TRELLIS_COUNT_CAP", "10000")),
        "TRELLIS_LOG_LEVEL": env("TRELLIS_LOG_LEVEL", "INFO"),
        "TRELLIS_PROXY_FIX": env("TRELLIS_PROXY_FIX", "0") == "1",
        "TRELLIS_SMTP_HOST": env("TRELLIS_SMTP_HOST") or None,
        "TRELLIS_SMTP_PORT": int(env("TRELLIS_SMTP_PORT", "25")),
        "TRELLIS_SMTP_USER": env("TRELLIS_SMTP_USER") or None,
        "TRELLIS_SMTP_PASSWORD": env("TRELLIS_SMTP_PASSWORD") or None,
        "TRELLIS_SMTP_STARTTLS": env("TRELLIS_SMTP_STARTTLS", "0") == "1",
        "TRELLIS_MAIL_FROM": env("TRELLIS_MAIL_FROM", "trellis@localhost"),
        "TRELLIS_MAIL_OUTBOX": env("TRELLIS_MAIL_OUTBOX") or str(folder / "outbox"),
        "TRELLIS_BASE_URL": (env("TRELLIS_BASE_URL") or "").rstrip("/"),
        "TRELLIS_LOCKOUT_ATTEMPTS": int(env("TRELLIS_LOCKOUT_ATTEMPTS", "5")),
        "TRELLIS_LOCKOUT_MINUTES": int(env("TRELLIS_LOCKOUT_MINUTES", "15")),
        "TRELLIS_IDLE_MINUTES": int(env("TRELLIS_IDLE_MINUTES", "60")),
        "TRELLIS_SCHEDULER_LEASE": float(env("TRELLIS_SCHEDULER_LEASE", "15")),
        "TRELLIS_ENCRYPTION_KEYS": env("TRELLIS_ENCRYPTION_KEYS") or "",
        "TRELLIS_DASHBOARD_CACHE_TTL": int(env("TRELLIS_DASHBOARD_CACHE_TTL", "60")),
        # Flask-AppBuilder
        "APP_NAME": "Trellis",
        "APP_ICON": "/static/trellis/logo.svg",
        "AUTH_TYPE": AUTH_DB,
        "AUTH_ROLE_ADMIN": "Admin",
        "AUTH_ROLE_PUBLIC": "Public",
        "AUTH_USER_REGISTRATION": False,
        "FAB_CREATE_DB": False,  # schema comes from `trellis db upgrade`, never at boot
        "FAB_UPDATE_PERMS": False,  # permissions are synced by `trellis init`/upgrade
        # FAB 5.3's security REST APIs crash under marshmallow 4 (PermissionViewMenuApi);
        # the core registers FAB's API-key API on its own instead.
        "FAB_ADD_SECURITY_API": False,
        # FAB's menu API serves its React front end; Trellis renders its menus.
        "FAB_ADD_MENU_API": False,
        "FAB_API_KEY_ENABLED": True,
        "FAB_API_KEY_PREFIXES": ["trl_"],
        "FAB_API_SWAGGER_UI": True,
        "FAB_ADD_OPENAPI_VIEWS": False,  # Trellis adds them, corrected (trellis.openapi)
        "FAB_API_MAX_PAGE_SIZE": 100,
        "FAB_PASSWORD_HASH_METHOD": "scrypt",
        "AUTH_RATE_LIMITED": True,
        "AUTH_RATE_LIMIT": env("TRELLIS_LOGIN_RATE_LIMIT", "10 per minute"),
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        "RATELIMIT_HEADERS_ENABLED": True,
        "WTF_CSRF_ENABLED": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": secure,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SECURE": secure,
        "TRELLIS_FORCE_HTTPS": env("TRELLIS_FORCE_HTTPS", "0") == "1",
        "JWT_ACCESS_TOKEN_EXPIRES": 900,
        "MAX_CONTENT_LENGTH": 16 * 1024 * 1024,
    }

"""Pytest fixtures for testing Trellis and its plugins (a ``pytest11`` plugin).

Installed with Trellis, so a plugin's own tests can use them directly::

    def test_calls(trellis_app_factory, api_login):
        app = trellis_app_factory(plugins=["callnotes"])
        client = app.test_client()
        headers = api_login(client)
        assert client.get("/api/v1/call/", headers=headers).status_code == 200

Each app gets a throwaway database (a SQLite file; a fresh PostgreSQL database
with the ``postgres_url`` fixture), its migrations applied, the listed plugins
(and only those) enabled, and an admin ``admin`` / ``admin-password``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import pytest
from flask import Flask

from trellis import hookimpl
from trellis.specs import EventHandler, Manifest

ADMIN = ("admin", "admin-password")
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


def _on_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(what: str, error: Exception) -> None:
    """Fail on CI (the server must be there), skip on a laptop without it."""
    message = f"{what} is not reachable: {error}"
    if _on_ci():
        pytest.fail(message + " (CI=true: tests needing it fail instead of skipping)")
    pytest.skip(message)


class EventCapture:
    """A throwaway plugin recording every event that reaches handlers."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    @hookimpl
    def trellis_manifest(self) -> Manifest:
        return Manifest(label="Event capture (tests)")

    @hookimpl
    def trellis_event_handlers(self) -> list[EventHandler]:
        return [EventHandler("*", self.events.append)]

    def names(self) -> list[str]:
        return [e.name for e in self.events]


@pytest.fixture
def event_capture() -> EventCapture:
    """Pass ``extra_plugins=[("capture", event_capture)]`` to record events."""
    return EventCapture()


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """URL of a PostgreSQL server database we may create databases from."""
    import sqlalchemy as sa

    url = os.environ.get("TRELLIS_TEST_POSTGRES_URL", DEFAULT_POSTGRES)
    try:
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001
        _unavailable(f"PostgreSQL at {url}", exc)
    return url


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import sqlalchemy as sa

    name = f"trellis_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(postgres_server_url).set(database=name)
    yield url.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def redis_url() -> str:
    """URL of the test Redis server (its database flushed before the test)."""
    from redis import Redis

    url = os.environ.get("TRELLIS_TEST_REDIS_URL", DEFAULT_REDIS)
    try:
        conn = Redis.from_url(url)
        conn.ping()
    except Exception as exc:  # noqa: BLE001
        _unavailable(f"Redis at {url}", exc)
    return url


def build_app(
    folder: Any,
    plugins: Iterable[str] = (),
    extra_plugins: Iterable[tuple[str, Any]] = (),
    database_url: str | None = None,
    redis_url: str | None = None,
    config: dict[str, Any] | None = None,
    enable: Iterable[str] | None = None,
) -> Flask:
    """An app on a throwaway database in ``folder`` with only the given plugins
    enabled, migrated, and an admin ``admin`` / ``admin-password``.  The
    ``trellis_app_factory`` fixture uses it; call it yourself for a module-scoped
    app (and dispose of its engine afterwards)."""
    from trellis import lifecycle, migrate
    from trellis.app import create_app
    from trellis.db import db
    from trellis.security import sync_permissions

    extra_plugins = list(extra_plugins)
    template = None if database_url or redis_url or (Path(folder) / "test.db").exists() else \
        _template(plugins, extra_plugins, config, enable)
    if template is not None and template.exists():
        shutil.copyfile(template, Path(folder) / "test.db")
    settings = {
        "TESTING": True,
        "TRELLIS_INSTANCE_PATH": str(folder),
        "SQLALCHEMY_DATABASE_URI": database_url or f"sqlite:///{folder}/test.db",
        "SECRET_KEY": "test-secret-key-of-sufficient-length",
        "TRELLIS_REDIS_URL": redis_url,
        "TRELLIS_QUEUE_PREFIX": f"trellis-test-{uuid.uuid4().hex[:8]}-",
        "TRELLIS_PLUGIN_STATE_TTL": 0,
        "TRELLIS_PERMISSION_CACHE_TTL": 0,
        "AUTH_RATE_LIMIT": "1000 per second",
        "RATELIMIT_STORAGE_URI": "memory://",
        "FAB_PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        **(config or {}),
    }
    app = create_app(config=settings, plugins=list(plugins), extra_plugins=extra_plugins)
    to_enable = list(enable) if enable is not None else [
        *plugins, *(name for name, _ in extra_plugins)]
    if template is not None and template.exists():
        return app
    with app.app_context():
        ext = app.extensions["trellis"]
        migrate.upgrade(ext, [])
        for name in [p.name for p in ext.plugins.loaded()]:
            if name in to_enable:
                lifecycle.enable(ext, name)
        sync_permissions(ext)
        sm = app.appbuilder.sm
        if sm.find_user(username=ADMIN[0]) is None:
            sm.add_user(ADMIN[0], "Ada", "Admin", "admin@example.com",
                        sm.find_role(sm.auth_role_admin), ADMIN[1])
        if template is not None:  # kept for the next app built alike
            db.session.remove()
            db.engine.dispose()
            shutil.copyfile(Path(folder) / "test.db", template)
    return app


_templates: dict[str, Path] = {}


def _template(plugins: Iterable[str], extra_plugins: list[tuple[str, Any]],
              config: dict[str, Any] | None, enable: Iterable[str] | None) -> Path | None:
    """Where a fresh, migrated SQLite database for apps built with these arguments
    is kept in this process (``None``: never kept — with test plugins, whose hooks
    may watch the set-up).  Migrating, enabling and syncing permissions take
    seconds; copying the file takes milliseconds.  Only for a new database file
    without Redis (``build_app`` checks): a second app in the same folder keeps
    the first one's data."""
    if extra_plugins:
        return None
    environment = sorted((k, v) for k, v in os.environ.items()
                         if k.startswith(("TRELLIS_", "FAB_", "SQLALCHEMY_")))
    key = repr((list(plugins), None if enable is None else list(enable),
                sorted((config or {}).items(), key=lambda item: item[0]), environment))
    if key not in _templates:
        if not _templates:
            folder = tempfile.mkdtemp(prefix="trellis-templates-")
            atexit.register(shutil.rmtree, folder, True)
            _templates["folder"] = Path(folder)
        _templates[key] = _templates["folder"] / f"{len(_templates)}.db"
    return _templates[key]


def dispose(app: Flask) -> None:
    """Close an app's database connections (end of a test)."""
    from trellis.db import db

    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def trellis_app_factory(tmp_path: Any) -> Iterator[Callable[..., Flask]]:
    """Build apps with a throwaway database and only the given plugins
    (the arguments of :func:`build_app`)."""
    apps: list[Flask] = []

    def make(*args: Any, **kwargs: Any) -> Flask:
        app = build_app(tmp_path, *args, **kwargs)
        apps.append(app)
        return app

    yield make
    for app in apps:
        dispose(app)


@pytest.fixture
def api_login() -> Callable[..., dict[str, str]]:
    """``api_login(client, username="admin", password=...)`` -> JWT headers."""

    def login(client: Any, username: str = ADMIN[0], password: str = ADMIN[1]) -> dict[str, str]:
        response = client.post("/api/v1/security/login", json={
            "username": username, "password": password, "provider": "db"})
        assert response.status_code == 200, response.get_json()
        return {"Authorization": f"Bearer {response.get_json()['access_token']}"}

    return login


def csrf_token(html: str) -> str:
    """The CSRF token in a rendered form."""
    import re

    match = re.search(r'<input[^>]*name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, "no csrf_token in the page"
    return match.group(1)


@pytest.fixture
def web_login() -> Callable[..., Any]:
    """``web_login(client)`` signs in through the login form (with its CSRF token)."""

    def login(client: Any, username: str = ADMIN[0], password: str = ADMIN[1]) -> Any:
        token = csrf_token(client.get("/login/").get_data(as_text=True))
        response = client.post("/login/", data={"username": username, "password": password,
                                                "csrf_token": token})
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        return response

    return login


@pytest.fixture
def make_user() -> Callable[..., Any]:
    """``make_user(app, "rep", ["CRM User"])`` creates a user with those roles."""

    def make(app: Flask, username: str, roles: Iterable[str], password: str = "pw-123456") -> Any:
        with app.app_context():
            sm = app.appbuilder.sm
            role_objs = [sm.find_role(r) for r in roles]
            assert all(role_objs), f"unknown role in {roles}"
            return sm.add_user(username, username.title(), "Tester", f"{username}@example.com",
                               role_objs, password).id

    return make


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SMTPCollector:
    """An aiosmtpd handler keeping every message it receives (``envelopes``)."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.envelopes.append(envelope)
        return "250 Message accepted"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Any, SMTPCollector]]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1: ``(controller, collector)``;
    point Trellis at ``controller.hostname``/``controller.port`` and read
    ``collector.envelopes``."""
    from aiosmtpd.controller import Controller

    collector = SMTPCollector()
    controller = Controller(collector, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, collector
    controller.stop()


def schema_drift(app: Flask, ignore: Callable[[str], bool] = lambda name: False) -> list[Any]:
    """Differences between ``app``'s migrated database and the tables of its loaded
    models (alembic's ``compare_metadata``): ``[]`` when the migrations create
    exactly what the models declare.  Only this app's tables are compared (the
    core's, ``<plugin>_*`` of its loaded plugins, its registered models): other
    plugins and tests' throwaway plugins share the same metadata.  ``ignore(name)``
    leaves out more tables and indexes a migration adds on purpose; those of
    :mod:`trellis.fulltext` are always left out."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import MetaData

    from trellis import fulltext
    from trellis.db import Model, db

    ext = app.extensions["trellis"]
    with app.app_context(), db.engine.connect() as conn:
        loaded = {entry.model.__table__.name for entry in ext.registry}
        prefixes = tuple(f"{p.name}_" for p in ext.plugins.loaded() if p.name != "core")

        def ours(name: str | None, type_: str) -> bool:
            if name is not None and (ignore(name) or fulltext.is_artifact(name)):
                return False
            return type_ != "table" or bool(name) and (
                name.startswith(("ab_", "trellis_", *prefixes)) or name in loaded)

        # a copy of just these tables: other plugins' models may point at tables
        # of plugins this process never imported
        mine = MetaData()
        for table in Model.metadata.tables.values():
            if ours(table.name, "table"):
                table.to_metadata(mine)
        context = MigrationContext.configure(conn, opts={
            "compare_type": True,
            "include_name": lambda name, type_, parent: ours(name, type_),
            "include_object": lambda obj, name, type_, reflected, other: ours(name, type_),
        })
        return compare_metadata(context, mine)

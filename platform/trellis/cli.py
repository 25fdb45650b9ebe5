"""The ``trellis`` command (click, through Flask's CLI)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext
from marshmallow import ValidationError

from trellis import lifecycle, migrate
from trellis.db import db
from trellis.extension import current_trellis
from trellis.plugins import PluginError
from trellis.security import sync_permissions


def _create_app(*_: Any, **__: Any):
    from trellis.app import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=False,
             load_dotenv=False, set_debug_flag=False)
def main() -> None:
    """Trellis CRM."""


def _fail(exc: Exception) -> None:
    db.session.rollback()
    raise click.ClickException(str(exc))


# ------------------------------------------------------------------ setup


@main.command("init")
@click.option("--admin-username", default="admin", show_default=True)
@click.option("--admin-password", default=None, help="generated and printed when omitted")
@click.option("--admin-email", default="admin@example.com", show_default=True)
@click.option("--enable/--no-enable", "enable_all", default=True, show_default=True,
              help="enable every installed plugin that loads")
@with_appcontext
def init(admin_username: str, admin_password: str | None, admin_email: str,
         enable_all: bool) -> None:
    """Create or upgrade the database, enable plugins, create an admin."""
    ext = current_trellis()
    try:
        migrate.upgrade(ext, [])
        if enable_all:
            for plugin in ext.plugins.loaded():
                if plugin.name != "core" and not ext.is_enabled(plugin.name, fresh=True):
                    lifecycle.enable(ext, plugin.name)
        migrate.upgrade(ext)
        sync_permissions(ext)
    except PluginError as exc:
        _fail(exc)
    for plugin in ext.plugins.all():
        if plugin.error:
            click.secho(f"plugin {plugin.name}: {plugin.error}", fg="red", err=True)
    sm = current_app.appbuilder.sm
    if sm.find_user(username=admin_username) is None:
        password = admin_password or secrets.token_urlsafe(12)
        user = sm.add_user(admin_username, "Admin", "User", admin_email,
                           sm.find_role(sm.auth_role_admin), password)
        if not user:
            raise click.ClickException("could not create the admin user (see the log)")
        click.echo(f"Admin user: {admin_username}  password: {password}")
    click.echo("Database ready: " + current_app.config["SQLALCHEMY_DATABASE_URI"].split("@")[-1])


@main.command("create-admin")
@click.option("--username", required=True)
@click.option("--email", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--first-name", default="Admin")
@click.option("--last-name", default="User")
@with_appcontext
def create_admin(username: str, email: str, password: str, first_name: str,
                 last_name: str) -> None:
    """Create an administrator account."""
    sm = current_app.appbuilder.sm
    if sm.find_user(username=username):
        raise click.ClickException(f"username: a user named {username!r} already exists")
    if sm.find_user(email=email):
        raise click.ClickException(f"email: a user with e-mail {email!r} already exists")
    if not sm.add_user(username, first_name, last_name, email,
                       sm.find_role(sm.auth_role_admin), password):
        raise click.ClickException("could not create the user (see the log)")
    click.echo(f"Admin {username} created.")


@main.group("db")
def db_group() -> None:
    """Database migrations."""


@db_group.command("upgrade")
@with_appcontext
def db_upgrade() -> None:
    """Apply the core's and every enabled plugin's migrations, in dependency order."""
    try:
        applied = migrate.upgrade(current_trellis())
        sync_permissions(current_trellis())
    except PluginError as exc:
        _fail(exc)
    click.echo("Upgraded: " + ", ".join(applied))


@db_group.command("heads")
@with_appcontext
def db_heads() -> None:
    """Show the migration revisions the database is at."""
    for rev in migrate.heads_in_database(current_trellis()):
        click.echo(rev)


# ------------------------------------------------------------------ plugins


@main.group("plugins")
def plugins_group() -> None:
    """List, enable, disable, uninstall and scaffold plugins (also: ``trellis plugin``)."""


main.add_command(plugins_group, name="plugin")


@plugins_group.command("new")
@click.argument("name")
@click.option("--label", help="the name people see (default: from NAME)")
@click.option("--path", "parent", type=click.Path(file_okay=False, path_type=Path),
              default=Path("."), show_default=True, help="folder to create trellis-NAME in")
def plugins_new(name: str, label: str | None, parent: Path) -> None:
    """Scaffold the plugin distribution trellis-NAME: a model and its migration, an
    admin view, a REST API, a role grant, an event handler, a scheduled job, a
    setting and tests — installable (pip install -e) and passing at once."""
    from importlib.metadata import entry_points

    from trellis import scaffold
    from trellis.plugins import ENTRY_POINT_GROUP

    taken = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    problem = scaffold.check_name(name, taken)
    if problem:
        raise click.BadParameter(problem, param_hint="NAME")
    target = parent / f"trellis-{name}"
    if target.exists():
        raise click.ClickException(f"{target} already exists; choose another --path or NAME")
    written = scaffold.write(name, label or name.replace("_", " ").title(), target)
    click.echo(f"Created {target} ({len(written)} files). Next:\n"
               f"  pip install -e {target}\n  trellis db upgrade && trellis plugins enable "
               f"{name}\n  pytest {target / 'tests'}")


@plugins_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@with_appcontext
def plugins_list(as_json: bool) -> None:
    """Installed plugins with version, dependencies, state and errors."""
    from trellis.admin import plugin_rows

    rows = plugin_rows()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        state = "ERROR" if row["error"] else ("enabled" if row["enabled"] else "disabled")
        deps = ", ".join(row["depends"]) or "-"
        click.echo(f"{row['name']:<16} {row['version']:<10} {state:<9} depends: {deps}")
        if row["error"]:
            click.secho(f"    {row['error']}", fg="red")


@plugins_group.command("info")
@click.argument("name")
@with_appcontext
def plugins_info(name: str) -> None:
    """Everything about one plugin."""
    from trellis.admin import plugin_rows

    ext = current_trellis()
    row = next((r for r in plugin_rows() if r["name"] == name), None)
    if row is None:
        raise click.ClickException(f"no plugin named {name!r} is installed")
    row["models"] = [m.name for m in ext.registry.for_plugin(name)]
    row["jobs"] = [n for n, (p, _) in ext.jobs.specs.items() if p == name]
    row["permissions"] = sorted(ext.resources.get(name, ()))
    detail = ext.plugins.by_name[name].detail
    click.echo(json.dumps(row, indent=2))
    if detail:
        click.echo(detail)


@plugins_group.command("enable")
@click.argument("names", nargs=-1, required=True)
@with_appcontext
def plugins_enable(names: tuple[str, ...]) -> None:
    """Enable plugins (applies their migrations)."""
    for name in names:
        try:
            lifecycle.enable(current_trellis(), name)
        except PluginError as exc:
            _fail(exc)
        click.echo(f"{name}: enabled")


@plugins_group.command("disable")
@click.argument("names", nargs=-1, required=True)
@with_appcontext
def plugins_disable(names: tuple[str, ...]) -> None:
    """Disable plugins (their data is kept)."""
    for name in names:
        try:
            lifecycle.disable(current_trellis(), name)
        except PluginError as exc:
            _fail(exc)
        click.echo(f"{name}: disabled")


@plugins_group.command("uninstall")
@click.argument("name")
@click.option("--yes", is_flag=True, help="confirm: drop the plugin's tables and data")
@with_appcontext
def plugins_uninstall(name: str, yes: bool) -> None:
    """Drop a disabled plugin's tables, settings and permissions."""
    if not yes:
        click.confirm(f"Drop every table and all data of plugin {name!r}?", abort=True)
    try:
        lifecycle.uninstall(current_trellis(), name)
    except PluginError as exc:
        _fail(exc)
    click.echo(f"{name}: uninstalled")


# ------------------------------------------------------------------ settings


@main.group("settings")
def settings_group() -> None:
    """Read and change plugin settings."""


@settings_group.command("get")
@click.argument("plugin")
@with_appcontext
def settings_get(plugin: str) -> None:
    """Show a plugin's settings as JSON."""
    from trellis.settings import SettingsError, get_settings

    try:
        schema = current_trellis().settings_schemas[plugin]()
        click.echo(json.dumps(schema.dump(get_settings(plugin)), indent=2))
    except (KeyError, SettingsError):
        raise click.ClickException(f"plugin {plugin!r} has no settings") from None


@settings_group.command("set")
@click.argument("plugin")
@click.argument("pairs", nargs=-1, required=True, metavar="FIELD=VALUE...")
@with_appcontext
def settings_set(plugin: str, pairs: tuple[str, ...]) -> None:
    """Change settings: trellis settings set sales stale_deal_days=14"""
    from trellis.settings import SettingsError, update_settings

    data = {}
    for pair in pairs:
        field, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r}: use FIELD=VALUE", param_hint="PAIRS")
        data[field] = value
    try:
        update_settings(plugin, data)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    except ValidationError as exc:
        db.session.rollback()
        lines = [f"{f}: {' '.join(m) if isinstance(m, list) else m}"
                 for f, m in exc.messages.items()]  # type: ignore[union-attr]
        raise click.ClickException("invalid settings\n  " + "\n  ".join(lines)) from None
    click.echo("saved")


# ------------------------------------------------------------------ users & keys


@main.group("users")
def users_group() -> None:
    """Help users who are locked out."""


def _user(username: str) -> Any:
    user = current_app.appbuilder.sm.find_user(username=username)
    if user is None:
        raise click.ClickException(f"no user named {username!r}")
    return user


@users_group.command("unlock")
@click.argument("username")
@with_appcontext
def users_unlock(username: str) -> None:
    """Lift the lock-out after too many failed logins."""
    from trellis import audit, auth
    from trellis.context import acting_as

    user = _user(username)
    with acting_as(None, None, "cli"):
        auth.unlock(user)
        audit.log(db.session, "unlocked", "user", user.id, {"username": username})
        db.session.commit()
    click.echo(f"{username}: unlocked")


@users_group.command("reset-2fa")
@click.argument("username")
@click.option("--yes", is_flag=True, help="confirm")
@with_appcontext
def users_reset_2fa(username: str, yes: bool) -> None:
    """Turn a user's two-factor login off (they lost their device) and end their sessions."""
    from trellis import audit, auth
    from trellis.context import acting_as

    user = _user(username)
    if not yes:
        click.confirm(f"Turn off two-factor login for {username}?", abort=True)
    with acting_as(None, None, "cli"):
        row = auth.state(user.id, create=True)
        row.totp_secret = None
        row.totp_enabled_at = None
        auth.end_sessions(user.id)
        audit.log(db.session, "totp_reset", "user", user.id, {"username": username})
        db.session.commit()
    click.echo(f"{username}: two-factor login turned off")


@main.group("keys")
def keys_group() -> None:
    """Encryption keys of encrypted fields (TRELLIS_ENCRYPTION_KEYS)."""


@keys_group.command("generate")
def keys_generate() -> None:
    """Print a new key to put first in TRELLIS_ENCRYPTION_KEYS."""
    from trellis.crypto import generate_key

    click.echo(generate_key())


@keys_group.command("rotate")
@with_appcontext
def keys_rotate() -> None:
    """Re-encrypt every encrypted value with the first key of TRELLIS_ENCRYPTION_KEYS."""
    from trellis.crypto import DecryptionError, rotate
    from trellis.db import Model

    try:
        counts = rotate(db.session, Model.metadata)
        db.session.commit()
    except (DecryptionError, ValueError) as exc:
        _fail(exc)
    for column, count in counts.items():
        click.echo(f"{column}: {count} re-encrypted")


# ------------------------------------------------------------------ backups


@main.command("backup")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="file to write (default: <instance>/backups/trellis-<time>.sqlite|.dump)")
@with_appcontext
def backup_command(output: str | None) -> None:
    """Back the whole database up to one file (SQLite backup API, or pg_dump)."""
    from datetime import datetime, timezone
    from pathlib import Path

    from trellis.backup import BackupError, backup

    url = db.engine.url
    if output is None:
        suffix = "sqlite" if url.get_backend_name() == "sqlite" else "dump"
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        output = str(Path(current_app.config["TRELLIS_INSTANCE_PATH"]) / "backups"
                     / f"trellis-{stamp}.{suffix}")
    try:
        path = backup(url.render_as_string(hide_password=False), output)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {path} ({path.stat().st_size} bytes)")


@main.command("restore")
@click.argument("source", type=click.Path(exists=True, dir_okay=False))
@click.option("--yes", is_flag=True, help="confirm: replace the database with the backup")
@with_appcontext
def restore_command(source: str, yes: bool) -> None:
    """Replace the database with a backup made by `trellis backup` (stop the web and
    worker processes first)."""
    from trellis.backup import BackupError, restore

    if not yes:
        click.confirm(f"Replace the whole database with {source}?", abort=True)
    url = db.engine.url.render_as_string(hide_password=False)
    db.session.remove()
    db.engine.dispose()
    try:
        restore(url, source)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"restored {source}")


# ------------------------------------------------------------------ privacy


@main.group("privacy")
def privacy_group() -> None:
    """Export or erase a contact's personal data."""


@privacy_group.command("export")
@click.argument("contact_id", type=int)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="ZIP file to write (default: personal-data-contact-ID.zip)")
@with_appcontext
def privacy_export(contact_id: int, output: str | None) -> None:
    """Write everything Trellis holds about a contact to a ZIP file."""
    from trellis import audit, privacy
    from trellis.context import acting_as
    from trellis.models import Contact

    if db.session.get(Contact, contact_id) is None:
        raise click.ClickException(f"no contact with id {contact_id}")
    path = output or f"personal-data-contact-{contact_id}.zip"
    with acting_as(None, None, "cli"):
        payload = privacy.export_zip(db.session, contact_id)
        audit.log(db.session, "exported", "contact", contact_id, {"what": "personal data"})
        db.session.commit()
    with open(path, "wb") as fh:
        fh.write(payload)
    click.echo(f"wrote {path} ({len(payload)} bytes)")


@privacy_group.command("erase")
@click.argument("contact_id", type=int)
@click.option("--reason", default="", help="recorded in the audit log")
@click.option("--yes", is_flag=True, help="confirm: the erasure cannot be undone")
@with_appcontext
def privacy_erase(contact_id: int, reason: str, yes: bool) -> None:
    """Erase a contact's personal data (anonymise; cannot be undone)."""
    from trellis import privacy
    from trellis.context import acting_as

    if not yes:
        click.confirm(f"Erase the personal data of contact {contact_id}? This cannot be "
                      "undone.", abort=True)
    try:
        with acting_as(None, None, "cli"):
            result = privacy.erase(db.session, contact_id, reason)
            db.session.commit()
    except privacy.ErasureError as exc:
        _fail(exc)
    click.echo(f"contact {contact_id}: erased ({', '.join(result['plugins']) or 'core'}; "
               f"{result['audit_entries_redacted']} audit entries redacted)")


# ------------------------------------------------------------------ jobs


@main.command("worker")
@click.option("--queue", "-q", "queues", multiple=True, help="queues to listen on (default: all)")
@click.option("--burst", is_flag=True, help="exit when the queues are empty")
@with_appcontext
def worker(queues: tuple[str, ...], burst: bool) -> None:
    """Run an rq worker for Trellis jobs (needs TRELLIS_REDIS_URL)."""
    from rq import Worker

    from trellis.jobs import WORKER_MAINTENANCE_SECONDS, set_worker_app

    ext = current_trellis()
    if ext.jobs.redis is None:
        raise click.ClickException("TRELLIS_REDIS_URL is not set: without Redis, jobs run "
                                   "in-process and no worker is needed")
    names = queues or sorted({spec.queue for _, spec in ext.jobs.specs.values()})
    set_worker_app(current_app._get_current_object())  # type: ignore[attr-defined]
    db.engine.dispose()
    Worker([ext.jobs.queue(n) for n in names], connection=ext.jobs.redis,
           maintenance_interval=WORKER_MAINTENANCE_SECONDS).work(
        burst=burst, with_scheduler=False)


@main.command("scheduler")
@with_appcontext
def scheduler() -> None:
    """Run the plugins' periodic jobs on schedule, and relay the outbox.

    With Redis: rq's cron scheduler enqueues them for the workers.  Without:
    they run in this process.  Start as many as you like (one per host, for
    failover): only the leader schedules, the others wait (trellis.leader).
    """
    import signal
    import threading

    from trellis.jobs import run_cron, run_relay, run_schedules_in_process
    from trellis.leader import LeadershipLost, leader_for, run_as_leader

    ext = current_trellis()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    def work(stop: threading.Event) -> None:
        if ext.jobs.redis is None:
            click.echo(f"Leader: running {len(ext.jobs.schedules)} schedule(s) in-process "
                       "(no Redis).")
            run_schedules_in_process(app, stop)
            return
        click.echo(f"Leader: scheduling {len(ext.jobs.schedules)} schedule(s) on rq.")
        relay = threading.Thread(target=run_relay, args=(app, stop), name="outbox-relay",
                                 daemon=True)
        relay.start()
        run_cron(ext, stop)

    try:
        run_as_leader(leader_for(app), work, stop,
                      on_standby=lambda: click.echo("Standby: another scheduler leads."))
    except LeadershipLost as exc:
        raise click.ClickException(str(exc)) from None


@main.group("outbox")
def outbox_group() -> None:
    """Jobs and events waiting for delivery (the transactional outbox)."""


@outbox_group.command("status")
@with_appcontext
def outbox_status() -> None:
    """How many items wait for delivery and how many are dead."""
    from trellis.outbox import pending_count

    counts = pending_count()
    click.echo(f"pending: {counts['pending']}  dead: {counts['dead']}")


@outbox_group.command("relay")
@with_appcontext
def outbox_relay() -> None:
    """Deliver what is due now (``trellis scheduler`` does this every few seconds)."""
    from trellis import outbox

    total = 0
    while True:
        delivered = outbox.relay()
        total += delivered
        if not delivered:
            break
    click.echo(f"delivered {total}")


@main.command("demo")
@click.option("--contacts", default=200, show_default=True)
@click.option("--users-password", default=None,
              help="Also create demo users (e.g. sales reps and a manager) with this password.")
@click.option("--locale", default="en", show_default=True,
              type=click.Choice(["en", "zh_CN"]),
              help="Language of the demo data; zh_CN also makes it every user's language.")
@with_appcontext
def demo(contacts: int, users_password: str | None, locale: str) -> None:
    """Fill the database with realistic demo data."""
    from trellis.demo import load_demo

    if users_password is not None and len(users_password) < 8:
        raise click.BadParameter("use at least 8 characters", param_hint="--users-password")
    counts = load_demo(contacts, users_password=users_password, locale=locale)
    click.echo("Demo data: " + ", ".join(f"{v} {k}" for k, v in counts.items()))


@main.group("i18n")
def i18n_group() -> None:
    """Message catalogs of the core and the plugins (docs/plugins.md#translations)."""


def _catalog_targets(only: tuple[str, ...]) -> dict[str, Path]:
    from flask import current_app

    from trellis.i18n_catalogs import distributions

    found = distributions(current_app)
    unknown = set(only) - set(found)
    if unknown:
        raise click.BadParameter(f"not a loaded plugin: {', '.join(sorted(unknown))}",
                                 param_hint="PLUGINS")
    return {name: path for name, path in found.items() if not only or name in only}


@i18n_group.command("update")
@click.argument("plugins", nargs=-1)
@with_appcontext
def i18n_update(plugins: tuple[str, ...]) -> None:
    """Extract the messages of the core and the given (default: every loaded)
    plugins into translations/messages.pot and merge them into each .po."""
    from flask import current_app

    from trellis.i18n_catalogs import extract, runtime_strings, update

    runtime = runtime_strings(current_app)
    for name, folder in _catalog_targets(plugins).items():
        template = extract(folder, runtime.get(name))
        for path in update(folder, template):
            click.echo(f"{name}: {len(template)} messages -> {path}")


@i18n_group.command("compile")
@click.argument("plugins", nargs=-1)
@with_appcontext
def i18n_compile(plugins: tuple[str, ...]) -> None:
    """Compile each .po into the .mo the app reads."""
    from trellis.i18n_catalogs import compile_catalogs

    for name, folder in _catalog_targets(plugins).items():
        for path in compile_catalogs(folder):
            click.echo(f"{name}: {path}")


@i18n_group.command("check")
@click.argument("plugins", nargs=-1)
@with_appcontext
def i18n_check(plugins: tuple[str, ...]) -> None:
    """Fail on a message without a translation, a fuzzy one, one the .po lacks,
    or a .mo out of date."""
    from flask import current_app

    from trellis.i18n_catalogs import check, extract, runtime_strings

    runtime = runtime_strings(current_app)
    problems = []
    for name, folder in _catalog_targets(plugins).items():
        problems += check(folder, extract(folder, runtime.get(name)))
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        raise SystemExit(1)
    click.echo("catalogs complete")

"""``trellis plugin new NAME``: a plugin distribution that installs and passes its
tests at once — the shape of ``examples/callnotes`` (a model with its migration,
admin view, REST API, role, event handler, job with a schedule, a setting and
tests on the ``trellis_app_factory`` fixture), named after the plugin."""

from __future__ import annotations

import keyword
import re
from pathlib import Path
from string import Template

NAME = re.compile(r"^[a-z][a-z0-9_]{1,30}$")


def check_name(name: str, taken: set[str]) -> str | None:
    """What is wrong with ``name`` as a plugin name, or ``None``."""
    if not NAME.match(name):
        return ("use 2–31 characters: lower-case letters, digits and _, "
                "starting with a letter (it becomes the package trellis_<name>)")
    if keyword.iskeyword(name) or name in {"core", "trellis", "test", "tests"}:
        return f"{name!r} is reserved"
    if name in taken:
        return f"a plugin called {name!r} is already installed"
    return None


def files(name: str, label: str) -> dict[str, str]:
    """``{relative path: content}`` of the distribution ``trellis-<name>``."""
    camel = "".join(part.title() for part in name.split("_"))
    values = {"name": name, "label": label, "Camel": camel, "table": f"{name}_item",
              "pkg": f"trellis_{name}"}
    return {Template(path).substitute(values): Template(text).substitute(values)
            for path, text in TEMPLATES.items()}


def write(name: str, label: str, target: Path) -> list[Path]:
    """Write the distribution into ``target`` (which must not exist yet)."""
    written = []
    for relative, text in files(name, label).items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


TEMPLATES: dict[str, str] = {
    "setup.cfg": """\
[metadata]
name = trellis-$name
version = 0.1.0
description = $label: a Trellis CRM plugin

[options]
packages = find:
include_package_data = True
install_requires =
    trellis

[options.packages.find]
exclude = tests

[options.package_data]
$pkg =
    migrations/versions/*.py

[options.entry_points]
trellis.plugins =
    $name = $pkg
""",
    "pyproject.toml": """\
[build-system]
requires = ["setuptools>=68", "wheel"]
build-backend = "setuptools.build_meta"
""",
    "README.md": """\
# trellis-$name

$label: a Trellis CRM plugin (made by `trellis plugin new $name`).

    pip install -e .                 # into Trellis' environment
    trellis db upgrade               # its migration branch
    trellis plugins enable $name
    pytest tests                     # its tests (the trellis_app_factory fixture)

What it has, each a hook in `$pkg/__init__.py` (see Trellis' docs/plugins.md):
a model (`${Camel}Item`, table `$table`) with its migration, an admin view
(*$label*), a REST API (`/api/v1/${name}_item/`), a role grant for *CRM User*,
an event handler (a new item lands on the contact's timeline), a job with an
hourly schedule (`$name.close_overdue`) and a setting (`overdue_days`).
""",
    "$pkg/__init__.py": '''\
"""$label: a Trellis CRM plugin."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from marshmallow import Schema, fields, validate
from sqlalchemy import update

from trellis import hookimpl
from trellis.api import TrellisModelApi
from trellis.datamodel import TrellisSQLAInterface
from trellis.db import db, utcnow
from trellis.events import Event
from trellis.models import Activity
from trellis.settings import get_settings
from trellis.specs import (EventHandler, JobSpec, Manifest, ModelSpec, RoleSpec,
                           ScheduleSpec, ViewSpec)
from trellis.views import TrellisModelView
from $pkg.models import ${Camel}Item

__version__ = "0.1.0"


class ${Camel}ItemSchema(Schema):
    contact_id = fields.Integer(required=True)
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    amount = fields.Integer(load_default=0, validate=validate.Range(min=0, max=1_000_000))


class ${Camel}ItemView(TrellisModelView):
    datamodel = TrellisSQLAInterface(${Camel}Item)
    list_columns = ["created_at", "contact", "title", "amount", "closed"]
    add_columns = edit_columns = ["contact", "title", "amount"]


class ${Camel}ItemApi(TrellisModelApi):
    resource_name = "${name}_item"
    datamodel = TrellisSQLAInterface(${Camel}Item)
    list_columns = show_columns = ["id", "contact_id", "title", "amount", "created_at",
                                   "closed"]
    add_columns = edit_columns = ["contact_id", "title", "amount"]
    validators_columns = {"amount": validate.Range(min=0, max=1_000_000),
                          "title": validate.Length(min=1, max=200)}


class ${Camel}Settings(Schema):
    overdue_days = fields.Integer(
        load_default=30, validate=validate.Range(min=1, max=3650),
        metadata={"label": "Items close after (days)"})


def on_timeline(event: Event) -> None:
    """Handler: every new item lands on its contact's Activity timeline."""
    item = db.session.get(${Camel}Item, event.record_id)
    if item is None:  # deleted before the handler ran
        return
    db.session.add(Activity(type="$name", subject=item.title, contact_id=item.contact_id,
                            plugin="$name", payload={"item_id": item.id}))
    db.session.commit()


def close_overdue() -> int:
    """Job: close the items older than the setting, in one UPDATE."""
    days = get_settings("$name")["overdue_days"]
    result = db.session.execute(
        update(${Camel}Item).where(${Camel}Item.created_at < utcnow() - timedelta(days=days),
                                   ${Camel}Item.closed.is_(False)).values(closed=True))
    db.session.commit()
    return result.rowcount


@hookimpl
def trellis_manifest() -> Manifest:
    return Manifest(label="$label", description="$label items on contacts.")


@hookimpl
def trellis_models() -> list[ModelSpec]:
    return [ModelSpec(${Camel}Item, "${name}_item", "$label item", schema=${Camel}ItemSchema,
                      searchable=("title",), contact_field="contact_id",
                      owner_field="owner_id")]


@hookimpl
def trellis_views() -> list[ViewSpec]:
    return [ViewSpec(${Camel}ItemView, "$label")]


@hookimpl
def trellis_apis() -> list[type]:
    return [${Camel}ItemApi]


@hookimpl
def trellis_roles() -> list[RoleSpec]:
    return [RoleSpec("CRM User", [("can_read", "$name.${Camel}Item"),
                                  ("can_write", "$name.${Camel}Item")])]


@hookimpl
def trellis_event_handlers() -> list[EventHandler]:
    return [EventHandler("${name}_item.created", on_timeline, background=True)]


@hookimpl
def trellis_jobs() -> list[JobSpec]:
    return [JobSpec("$name.close_overdue", close_overdue, description="close overdue items")]


@hookimpl
def trellis_schedules() -> list[ScheduleSpec]:
    return [ScheduleSpec("$name.close_overdue", interval=3600)]


@hookimpl
def trellis_settings_schema() -> type[Schema]:
    return ${Camel}Settings


@hookimpl
def trellis_migrations() -> str:
    return str(Path(__file__).parent / "migrations" / "versions")
''',
    "$pkg/models.py": '''\
"""The plugin's model."""

from datetime import datetime
from typing import Optional

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from trellis.db import Model, utcnow
from trellis.models import Contact


class ${Camel}Item(Model):
    __tablename__ = "$table"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("trellis_contact.id", ondelete="CASCADE"),
                                            index=True)
    title: Mapped[str] = mapped_column(String(200))
    amount: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    owner_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))

    contact: Mapped[Contact] = relationship()

    def __repr__(self) -> str:
        return self.title
''',
    "$pkg/migrations/__init__.py": "",
    "$pkg/migrations/versions/0001_$name.py": '''\
"""$name: the item table

Revision ID: 0001_$name
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_$name"
down_revision = None
branch_labels = ("$name",)
depends_on = "0001_core"


def upgrade() -> None:
    op.create_table(
        "$table",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("contact_id", sa.Integer(),
                  sa.ForeignKey("trellis_contact.id", ondelete="CASCADE"), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("ab_user.id"), nullable=True),
    )
    op.create_index("ix_${table}_contact_id", "$table", ["contact_id"])


def downgrade() -> None:
    op.drop_index("ix_${table}_contact_id", "$table")
    op.drop_table("$table")
''',
    "tests/test_$name.py": '''\
"""The plugin's tests, on Trellis' pytest fixtures (trellis.testing)."""

from datetime import timedelta

from sqlalchemy import select, update

from trellis.db import db, utcnow
from trellis.jobs import enqueue
from trellis.models import Activity, Contact
from $pkg.models import ${Camel}Item


def test_api_validates_and_the_timeline_shows_new_items(trellis_app_factory, api_login):
    app = trellis_app_factory(plugins=["$name"])
    client = app.test_client()
    headers = api_login(client)
    with app.app_context():
        contact = Contact(first_name="Ada", last_name="Lovelace")
        db.session.add(contact)
        db.session.commit()
        contact_id = contact.id
    created = client.post("/api/v1/${name}_item/", headers=headers,
                          json={"contact_id": contact_id, "title": "First", "amount": 5})
    assert created.status_code == 201, created.get_json()
    invalid = client.post("/api/v1/${name}_item/", headers=headers,
                          json={"contact_id": contact_id, "title": "", "amount": -1})
    assert invalid.status_code == 400
    assert set(invalid.get_json()["message"]) == {"title", "amount"}
    with app.app_context():  # no Redis: the handler ran in-process after the commit
        assert db.session.scalars(select(Activity.subject).where(
            Activity.contact_id == contact_id)).all() == ["First"]


def test_the_job_closes_overdue_items(trellis_app_factory):
    app = trellis_app_factory(plugins=["$name"])
    with app.app_context():
        contact = Contact(first_name="Ada", last_name="Lovelace")
        db.session.add(contact)
        db.session.flush()
        old = ${Camel}Item(contact_id=contact.id, title="Old")
        new = ${Camel}Item(contact_id=contact.id, title="New")
        db.session.add_all([old, new])
        db.session.commit()
        db.session.execute(update(${Camel}Item).where(${Camel}Item.id == old.id)
                           .values(created_at=utcnow() - timedelta(days=31)))
        db.session.commit()
        enqueue("$name.close_overdue")
        db.session.expire_all()
        assert (old.closed, new.closed) == (True, False)


def test_disabled_plugin_answers_404(trellis_app_factory, api_login):
    app = trellis_app_factory(plugins=["$name"], enable=[])
    client = app.test_client()
    assert client.get("/api/v1/${name}_item/", headers=api_login(client)).status_code == 404
''',
}

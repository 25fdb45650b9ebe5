"""trellis-callnotes: the example plugin of docs/plugins.md.

It shows every kind of contribution in a few lines: a model, an admin view, a
REST API, an event handler, a background job with a schedule, and a setting.
"""

from __future__ import annotations

from pathlib import Path

from marshmallow import Schema, fields, validate
from sqlalchemy import update

from trellis import hookimpl
from trellis.api import TrellisModelApi
from trellis.datamodel import TrellisSQLAInterface
from trellis.db import db
from trellis.events import Event
from trellis.models import Activity
from trellis.settings import get_settings
from trellis.specs import (
    EventHandler,
    JobSpec,
    Manifest,
    ModelSpec,
    RoleSpec,
    ScheduleSpec,
    ViewSpec,
)
from trellis.views import TrellisModelView
from trellis_callnotes.models import Call

__version__ = "0.1.0"


class CallSchema(Schema):
    contact_id = fields.Integer(required=True)
    subject = fields.String(required=True, validate=validate.Length(min=1, max=200))
    minutes = fields.Integer(load_default=0, validate=validate.Range(min=0, max=1440))


class CallView(TrellisModelView):
    datamodel = TrellisSQLAInterface(Call)
    list_columns = ["occurred_at", "contact", "subject", "minutes", "long_call"]
    add_columns = edit_columns = ["contact", "subject", "minutes", "occurred_at"]


class CallApi(TrellisModelApi):
    resource_name = "call"
    datamodel = TrellisSQLAInterface(Call)
    list_columns = show_columns = ["id", "contact_id", "subject", "minutes", "occurred_at",
                                   "long_call"]
    add_columns = edit_columns = ["contact_id", "subject", "minutes"]
    validators_columns = {"minutes": validate.Range(min=0, max=1440),
                          "subject": validate.Length(min=1, max=200)}


class CallnotesSettings(Schema):
    long_call_minutes = fields.Integer(
        load_default=30, validate=validate.Range(min=1, max=600),
        metadata={"label": "A call is long from (minutes)"})


def log_call_on_timeline(event: Event) -> None:
    """Handler: every new call lands on the contact's Activity timeline."""
    call = db.session.get(Call, event.record_id)
    if call is None:  # deleted before the handler ran
        return
    db.session.add(Activity(type="call", subject=call.subject, contact_id=call.contact_id,
                            plugin="callnotes", payload={"call_id": call.id,
                                                         "minutes": call.minutes}))
    db.session.commit()


def flag_long_calls() -> int:
    """Job: mark calls at or over the configured length, in one UPDATE."""
    limit = get_settings("callnotes")["long_call_minutes"]
    result = db.session.execute(
        update(Call).where(Call.minutes >= limit, Call.long_call.is_(False))
        .values(long_call=True)
    )
    db.session.commit()
    return result.rowcount


@hookimpl
def trellis_manifest() -> Manifest:
    return Manifest(label="Call notes", description="Log phone calls against contacts.",
                    icon="fa-phone")


@hookimpl
def trellis_models() -> list[ModelSpec]:
    return [ModelSpec(Call, "call", "Call", schema=CallSchema, searchable=("subject",),
                      contact_field="contact_id", owner_field="owner_id")]


@hookimpl
def trellis_views() -> list[ViewSpec]:
    return [ViewSpec(CallView, "Calls", icon="fa-phone")]


@hookimpl
def trellis_apis() -> list[type]:
    return [CallApi]


@hookimpl
def trellis_roles() -> list[RoleSpec]:
    return [RoleSpec("CRM User", [("can_read", "callnotes.Call"), ("can_write", "callnotes.Call")])]


@hookimpl
def trellis_event_handlers() -> list[EventHandler]:
    return [EventHandler("call.created", log_call_on_timeline, background=True)]


@hookimpl
def trellis_jobs() -> list[JobSpec]:
    return [JobSpec("callnotes.flag_long_calls", flag_long_calls,
                    description="mark long calls")]


@hookimpl
def trellis_schedules() -> list[ScheduleSpec]:
    return [ScheduleSpec("callnotes.flag_long_calls", interval=3600)]


@hookimpl
def trellis_settings_schema() -> type[Schema]:
    return CallnotesSettings


@hookimpl
def trellis_migrations() -> str:
    return str(Path(__file__).parent / "migrations" / "versions")

"""Plain value objects that plugins return from their hooks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from flask import Blueprint
    from marshmallow import Schema

    from trellis.events import Event


@dataclass(frozen=True)
class Manifest:
    """What a plugin says about itself (Odoo's ``__manifest__``, in Python)."""

    label: str
    description: str = ""
    #: Plugins that must be installed and enabled for this one to work.
    depends: Sequence[str] = ()
    #: Plugins that, when present, are set up before this one (ordering only).
    soft_depends: Sequence[str] = ()
    #: Font Awesome icon for the plugin's menu category.
    icon: str = "fa-puzzle-piece"


@dataclass(frozen=True)
class ModelSpec:
    """A model for the model registry."""

    model: type
    #: Registry name, used in event names (``<name>.created``) and URLs.
    name: str
    label: str
    #: marshmallow schema class validating input for the model.  When omitted
    #: the registry derives one from the table (marshmallow-sqlalchemy).
    schema: type[Schema] | None = None
    searchable: Sequence[str] = ()
    #: Column holding the owning user's id, for record rules.
    owner_field: str | None = None
    #: Column holding the contact id, for personal-data export.
    contact_field: str | None = None
    #: ``(foreign-key column, parent model)`` for records without an owner of
    #: their own (order lines, stage history): they follow the parent's record rule.
    parent: tuple[str, type] | None = None
    #: Record create/update/delete in the audit log and fire record events.
    audited: bool = True
    #: ``before_save(session, obj, action)``: side effects in the same
    #: transaction, for every insert ("created"), update ("updated") and
    #: delete ("deleted").
    before_save: Callable[[Any, Any, str], None] | None = None
    #: ``validate(obj)`` -> ``{field: [messages]}``: rules checked on every save.
    validate: Callable[[Any], dict[str, list[str]] | None] | None = None
    #: ``duplicates(session, obj)`` -> a ``select()`` of possible duplicates of
    #: ``obj`` (saved or not), labelled ``model``, ``id``, ``label``, ``reason``,
    #: or ``None``.  Creating a record then warns about them (see
    #: :mod:`trellis.duplicates`); it never blocks the save.
    duplicates: Callable[[Any, Any], Any] | None = None


@dataclass(frozen=True)
class ViewSpec:
    """A Flask-AppBuilder view and its menu entry (``name=None``: no menu)."""

    view: type
    name: str | None = None
    label: str | None = None
    category: str | None = None
    icon: str = ""


@dataclass(frozen=True)
class BlueprintSpec:
    """A plain Flask blueprint and the permission guarding all its routes."""

    blueprint: Blueprint
    #: FAB permission checked for every route (``can_access`` on
    #: ``<plugin>.<blueprint name>`` when omitted).
    permission: str = "can_access"
    public: bool = False


@dataclass(frozen=True)
class RoleSpec:
    """A role and the (permission, view menu) pairs it grants.

    ``scope`` (``own``, ``team`` or ``all``) is the role's record rule for
    models with an owner; it is set when the role has none yet, so an admin's
    later choice in *Admin > Record rules* is kept.
    """

    name: str
    permissions: Sequence[tuple[str, str]] = ()
    scope: str | None = None


@dataclass(frozen=True)
class EventHandler:
    """A function called with an :class:`trellis.events.Event` after commit."""

    event: str
    func: Callable[[Event], Any]
    background: bool = False


@dataclass(frozen=True)
class JobSpec:
    """A named background job.  ``func`` receives the keyword arguments given to
    :func:`trellis.jobs.enqueue`; it runs inside an application context."""

    name: str
    func: Callable[..., Any]
    queue: str = "default"
    timeout: int = 600
    description: str = ""
    #: With Redis: how many more times rq runs the job (queued again at once) after it
    #: raised, timed out or its worker died mid-job; 0 for a job that must never run
    #: twice.  Jobs must be idempotent (claim their rows first).
    retries: int = 3


@dataclass(frozen=True)
class ScheduleSpec:
    """Run job ``job`` every ``interval`` seconds or on a ``cron`` expression."""

    job: str
    interval: int | None = None
    cron: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WidgetSpec:
    """A dashboard widget; ``data()`` returns JSON-serialisable data.

    ``kind`` is ``kpi``, ``series``, ``bars``, ``pie``, ``funnel`` or ``table``
    (see :mod:`trellis.dashboard` for the shape of each).  ``permission``
    (``(permission, resource)``, e.g. ``("can_read", "sales.Report")``) offers the
    widget only to users who have it.  ``roles`` names the roles whose default
    dashboard shows it (empty: every role's); users may still add it to their own
    arrangement.  Default dashboards list widgets by ``order``, then plugin order.
    """

    name: str
    label: str
    data: Callable[[], Any]
    kind: str = "kpi"
    permission: tuple[str, str] | None = None
    roles: Sequence[str] = ()
    order: int = 100
    description: str = ""


@dataclass(frozen=True)
class FeatureSpec:
    """A per-customer figure (see :mod:`trellis.features`).

    ``query()`` returns a ``select()`` of two labelled columns, ``contact_id``
    and ``value``, with at most one row per contact (contacts without a value
    are left out), computed set-based over all contacts.  ``kind`` is
    ``number``, ``text`` or ``date``.  Names are global: two plugins offering
    the same name is an error naming both.
    """

    name: str
    label: str
    query: Callable[[], Any]
    kind: str = "number"
    description: str = ""


@dataclass(frozen=True)
class ActionSpec:
    """Something automation can do to records (see :mod:`trellis.actions`).

    ``schema`` is a marshmallow schema of the action's parameters;
    ``run(session, model, ids, params)`` acts on the records ``ids`` of the
    registry model ``model`` (set-based where it can), inside the caller's
    transaction, and returns a JSON-serialisable summary.  ``models`` lists the
    registry names it applies to (``"*"``: any model).
    """

    name: str
    label: str
    schema: type[Schema]
    run: Callable[[Any, str, list[int], dict[str, Any]], Any]
    models: Sequence[str] = ("contact",)
    description: str = ""


@dataclass(frozen=True)
class PanelSpec:
    """A panel a plugin adds to another model's record page (see :mod:`trellis.panels`).

    ``render(record)`` returns the panel's HTML (e.g. from ``flask.render_template``,
    which escapes), or ``None`` when it has nothing to show for that record.
    ``models`` are registry names (``contact``, ``account``...).  ``permission``
    (``(permission, resource)``) shows the panel only to users who have it.
    Panels are shown by ``order``, then name.  ``wide=True`` gives the panel the
    full width of the customer page (timelines, tables with many columns);
    otherwise panels share the page two by two.
    """

    name: str
    label: str
    render: Callable[[Any], Any]
    models: Sequence[str] = ("contact",)
    permission: tuple[str, str] | None = None
    order: int = 100
    wide: bool = False

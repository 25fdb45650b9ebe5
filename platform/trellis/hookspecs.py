"""The Trellis hook API: every hook a plugin may implement.

This module (``platform/trellis/hookspecs.py``) is the contract between the
core and its plugins; docs/hooks.md is generated from it.  Each spec says
*when* the core calls it, what its arguments are and how results combine.

The core calls most hooks **once per plugin, at application start-up**, and
attributes whatever that plugin returns to it (its models, views, jobs...).
Returning ``None`` or an empty list means "nothing to contribute".  Hooks are
never called in an order a plugin may rely on, except where a spec says so.

A plugin implements a hook with the :data:`trellis.hookimpl` marker::

    from trellis import hookimpl

    @hookimpl
    def trellis_manifest():
        return Manifest(label="Call notes", depends=["sales"])

A function whose name starts with ``trellis_`` but matches no spec below is an
error that disables the plugin (so a typo never passes silently).  Arguments
may be omitted from an implementation (pluggy passes only the ones it names);
new arguments are only ever *added* to a spec, so implementations keep working.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    import click
    from flask import Flask
    from marshmallow import Schema
    from sqlalchemy.orm import Session

    from sqlalchemy import Select

    from trellis.specs import (
        ActionSpec,
        BlueprintSpec,
        EventHandler,
        FeatureSpec,
        PanelSpec,
        JobSpec,
        Manifest,
        ModelSpec,
        RoleSpec,
        ScheduleSpec,
        ViewSpec,
        WidgetSpec,
    )

hookspec = pluggy.HookspecMarker("trellis")


# --------------------------------------------------------------------------- identity


@hookspec
def trellis_manifest() -> Manifest:
    """Describe the plugin: label, description and the plugins it depends on.

    Called once when the plugin is loaded, before anything else.  Every plugin
    must implement it.  The version comes from the plugin's distribution
    metadata, the name from its ``trellis.plugins`` entry point.

    Plugins are set up in dependency order (a plugin after everything it
    ``depends`` on).  A missing, broken or disabled hard dependency keeps the
    plugin from loading or being enabled, with an error naming both.
    """


@hookspec(historic=True)
def trellis_add_hookspecs(pm: pluggy.PluginManager) -> None:
    """Publish hooks of this plugin for other plugins to implement.

    Like pytest's ``pytest_addhooks``: call ``pm.add_hookspecs(module)`` with a
    module of ``@hookspec`` functions.  Called once at load time, before the
    other plugins' implementations are checked, so they may implement the new
    hooks.  A plugin implementing a hook published by an optional plugin marks
    its implementation ``@hookimpl(optionalhook=True)``.
    """


# --------------------------------------------------------------------------- data


@hookspec
def trellis_models() -> list[ModelSpec]:
    """Register this plugin's SQLAlchemy models with the model registry.

    Return a list of :class:`trellis.specs.ModelSpec`.  The registry records the
    owning plugin, the marshmallow schema, the label and the searchable fields, so
    generic features work for the model: the audit log, record events, the model
    rules ``before_save`` and ``validate`` run at every save, record rules for a
    model with an ``owner_field``, search, saved views, import/export and
    personal-data export.  Models are subclasses of :class:`trellis.db.Model` with
    an explicit ``__tablename__``; a registry name used by two plugins is an error
    naming both.
    """


@hookspec
def trellis_migrations() -> str | None:
    """Return the directory of this plugin's alembic revision scripts (or ``None``).

    The plugin's first revision carries ``branch_labels = ("<plugin name>",)``
    and ``depends_on`` the core revision it needs.  ``trellis db upgrade``
    applies the core branch and then each enabled plugin's branch, in dependency
    order; enabling a plugin later applies its branch.  The directory stays
    locatable while the plugin is disabled, so its revisions are never lost.
    """


# --------------------------------------------------------------------------- web


@hookspec
def trellis_views() -> list[ViewSpec]:
    """Return Flask-AppBuilder views to register, with their menu entries.

    Each :class:`trellis.specs.ViewSpec` names a FAB view class and where it goes
    in the menu.  Model views should subclass
    :class:`trellis.views.TrellisModelView`, which provides the permission naming
    (actions need ``can_write``), record rules (also for bulk actions), filtered
    pickers, owner defaulting, flashed model-rule errors, the History link (for
    users who may read the audit log), saved views and the list's CSV / XLSX
    export (:mod:`trellis.export`: the list's filters and record rules, audited;
    ``exportable = False`` turns it off), and the custom fields admins add to
    the model (columns, form fields, filters and sort, ``cf_<key>``;
    docs/customisation.md).  Menus of a disabled plugin are hidden and its views
    answer 404, without a restart.
    """


@hookspec
def trellis_apis() -> list[type]:
    """Return Flask-AppBuilder REST API classes (``BaseApi`` subclasses).

    Model APIs should subclass :class:`trellis.api.TrellisModelApi` (or be built
    with :func:`trellis.api.model_api`), which reads, writes, validates, filters,
    sorts and documents the model's custom fields as ``cf_<key>`` keys, and
    provides large-table pagination
    (capped counts), field errors (including references to missing records or to
    records the user may not see, and 400 for broken model rules),
    ``optional_columns`` for columns a ``before_save`` fills in, record rules,
    owner defaulting and validation, and the permission naming.  APIs of a
    disabled plugin answer 404.  They appear in the OpenAPI document.
    """


@hookspec
def trellis_blueprints() -> list[BlueprintSpec]:
    """Return plain Flask blueprints with the permission that guards them.

    Every route of a :class:`trellis.specs.BlueprintSpec` requires login and the
    permission it names, unless the spec says ``public=True`` (a web form or a
    tracking pixel).  Public blueprints are exempt from CSRF (they act on no
    session; rate-limit and size-limit them yourself).  Blueprints of a disabled
    plugin answer 404.
    """


@hookspec
def trellis_roles() -> list[RoleSpec]:
    """Return the roles this plugin contributes, with their permissions.

    A list of :class:`trellis.specs.RoleSpec`.  Roles are created or extended by
    ``trellis init`` / ``trellis db upgrade`` and when the plugin is enabled.
    Several plugins may add permissions to the same role name; the role ends up
    with the union.  A ``scope`` sets the role's record rule only while the role
    has none.
    """


@hookspec
def trellis_dashboard_widgets() -> list[WidgetSpec]:
    """Return the dashboard widgets this plugin offers.

    Each :class:`trellis.specs.WidgetSpec` has a stable name, a label, a ``kind``
    (``kpi``, ``series``, ``bars``, ``pie``, ``funnel`` or ``table``; any other
    kind fails the plugin at registration) and a function computing its data for
    the current user.  The core's *Dashboard* (``/dashboard/``) shows each user
    **their** widgets: by default those whose ``roles`` name one of the user's
    roles (or that name no role), in ``order``, then plugin order; users with a
    role in the core setting ``dashboard_full_roles`` (default ``Manager``) and
    admins get every widget they may read.  A user may choose, order and hide
    widgets (*Arrange widgets*, or ``PUT /api/v1/dashboard/layout`` with
    ``{"widgets": ["sales.win_rate", ...]}``; ``DELETE`` goes back to the roles'
    default; ``GET`` lists the choices).  Saved reports of the report builder are
    widgets too (``core.report_<id>``).  Charts are drawn by Chart.js, which
    Trellis serves itself (``/static/trellis/vendor/chartjs/``), with a legend and
    axis titles on every chart and the data as a table inside the canvas for
    screen readers.

    ``GET /api/v1/dashboard/`` returns the user's widgets with their data
    (``result``: ``[{name: "<plugin>.<name>", plugin, label, kind, description,
    data, computed_at, cached}]``; ``?all=1`` every widget they may use);
    ``GET /api/v1/dashboard/widget/<name>`` one.  All need ``can_read`` on
    ``core.Dashboard``.  A widget with a ``permission``, e.g. ``("can_read",
    "sales.Report")``, is offered only to users who have it.  ``data()`` runs
    inside the request, so queries passed through :func:`trellis.rules.restrict`
    follow the user's record rules: a rep's widgets count only the rep's records.
    Each widget's data is cached per user for ``TRELLIS_DASHBOARD_CACHE_TTL``
    seconds (Redis when configured); ``?refresh=1`` and the widget's *Refresh*
    button recompute it.  A widget whose ``data()`` raises is shown with an error
    (and logged, never cached) instead of breaking the page.  Widgets of a
    disabled plugin are not offered.  The shape of ``data`` per kind:

    | `kind` | `data()` returns |
    |---|---|
    | `kpi` | `{"value": "1,234.00", "unit": "EUR", "note": "..."}`; add `"number": 1234.0, "previous": 1000.0, "previous_label": "last quarter"` (and `"previous_display"`) for a trend (▲ +23.4 % vs last quarter), computed by the core into `trend: {direction, change, change_pct, good, previous_label}`; `"better": "down"` when falling is good (overdue tasks) |
    | `series` | `{"labels": ["2024-01", "2024-02"], "series": [{"label": "Won", "values": [1200.0, 900.0]}, ...], "x_label": "Month", "y_label": "EUR"}`: one line per series |
    | `bars` | the same as `series` (grouped vertical bars), or one ranked series as `{"bars": [{"label": "Proposal", "value": 3700.0, "display": "3,700.00"}, ...], "unit": "EUR", "x_label": "Stage", "y_label": "EUR"}` (horizontal bars) |
    | `pie` | `{"slices": [{"label": "Core", "value": 12, "display": "12"}, ...], "unit": "Activities"}` |
    | `funnel` | `{"steps": [{"label": "Leads", "value": 120}, {"label": "Won", "value": 9}], "unit": "Count"}`: in funnel order; each step shows its share of the first |
    | `table` | `{"columns": ["Rep", "Won"], "rows": [["ann", "100.00"], ...]}` |

    Give every chart ``x_label`` and ``y_label`` (the axis titles; ``unit`` is the
    fallback of the value axis).  Any kind may add ``"note"`` and
    ``"unconverted": [{"currency": "USD", "amount": "500.00"}]`` (amounts without
    an exchange rate), shown under the widget.
    """


@hookspec
def trellis_record_panels() -> list[PanelSpec]:
    """Return panels this plugin adds to the record pages of other models.

    Called once per plugin at start-up.  Each :class:`trellis.specs.PanelSpec`
    names the registry models whose pages show it.  The contact's and the
    account's pages are the **Customer 360** pages: the identity block, then the
    panels of every plugin (two side by side, or the full width with
    ``wide=True``), then one Activity timeline merged from every plugin (write
    your interactions to the core's ``Activity`` with ``plugin="<your name>"`` and
    they appear there, filterable by type, plugin and date).  Each panel renders
    its HTML for one record inside the request, so queries written with
    :func:`trellis.rules.restrict` follow the user's record rules.  Panels of a
    disabled plugin, and panels whose ``permission`` the user lacks, are not
    shown; a panel that returns ``None`` is left out; a panel that raises is
    logged and replaced by an error line, and the rest of the page still works.
    """


@hookspec
def trellis_settings_schema() -> type[Schema] | None:
    """Return a marshmallow schema class describing this plugin's settings.

    Fields should have ``load_default`` values.  Admins edit the settings in
    the web UI (``Admin > Settings``), the API and the CLI; input is validated
    by this schema and rejected with per-field errors.  Read them with
    :func:`trellis.settings.get_settings`.
    """


# --------------------------------------------------------------------------- events & jobs


@hookspec
def trellis_event_handlers() -> list[EventHandler]:
    """Return handlers for domain events (:class:`trellis.specs.EventHandler`).

    Record events are named ``<model>.created``, ``<model>.updated`` and
    ``<model>.deleted`` after the registry name of the model.  Plugins also fire
    named events such as ``deal.won``, with :func:`trellis.events.emit` or, inside
    a ``before_save``, :func:`trellis.events.queue`.  ``"*"`` matches every
    event, and other ``fnmatch`` patterns such as ``"deal.*"`` work too.  Events
    fire **after the database transaction commits**, never for a rolled-back
    change.  A handler with ``background=True`` runs as a job: on an rq worker
    with Redis, in-process otherwise.  A failing handler is logged and does not
    stop the others.  Handlers of a disabled plugin are not called.
    """


@hookspec
def trellis_jobs() -> list[JobSpec]:
    """Return the background jobs this plugin provides (:class:`trellis.specs.JobSpec`).

    Jobs are enqueued by name with :func:`trellis.jobs.enqueue`, never by import
    path, so the code can move.  A job of a disabled plugin is skipped when a
    worker picks it up.  Jobs act as ``job``: record rules do not restrict them,
    wherever they run.
    """


@hookspec
def trellis_schedules() -> list[ScheduleSpec]:
    """Return periodic schedules for this plugin's jobs (:class:`trellis.specs.ScheduleSpec`).

    ``trellis scheduler`` enqueues them with rq's cron scheduler when Redis is
    configured, and runs them in its own process otherwise; with several
    schedulers one leads and the others stand by, so nothing fires twice.  Each
    spec needs exactly one of ``interval`` (seconds) and ``cron``.  Schedules of a
    disabled plugin do not run, because the job is skipped.
    """


# --------------------------------------------------------------------------- CLI & app


@hookspec
def trellis_cli_commands() -> list[click.Command]:
    """Return click commands to add under ``trellis`` (e.g. ``trellis sales ...``).

    Use a ``click.Group`` named after the plugin to keep the namespace tidy.
    Commands run inside an application context.
    """


@hookspec
def trellis_app_ready(app: Flask) -> None:
    """Called once after every plugin is registered, inside an app context.

    For wiring that needs the finished app (template filters, context
    processors).  Must not touch the database: it runs in every web worker
    at boot.
    """


# --------------------------------------------------------------------------- customer data


@hookspec
def trellis_customer_features() -> list[FeatureSpec]:
    """Return per-customer figures this plugin can compute (:class:`trellis.specs.FeatureSpec`).

    Called once per plugin at start-up.  Each is one set-based ``select()`` of
    ``contact_id`` and ``value`` (purchase total, average satisfaction, CRM
    value...).  Scoring models, segments, SLA tiers and reports read them through
    :mod:`trellis.features` by name, without knowing which plugin computes them.
    A name offered by two plugins fails the second one, with an error naming
    both.  Features of a disabled plugin are not offered.
    """


@hookspec
def trellis_purchase_lines() -> Select | None:
    """Return a ``select()`` of what customers bought, one row per order line.

    Called whenever :func:`trellis.purchases.lines` is used, for each enabled
    plugin; the selects are combined with ``UNION ALL``.  The columns, labelled
    and in this order: ``contact_id``, ``account_id``, ``order_id``,
    ``ordered_at``, ``product_id``, ``product_name``, ``quantity``, ``amount``
    (the line's amount in the company currency, ``NULL`` when it cannot be
    converted).  A select with other columns is an error naming the plugin.
    Return ``None`` when the plugin records no purchases.
    """


@hookspec
def trellis_merge_fields(session: Session, contact_ids: list[int]) -> dict[int, dict[str, Any]] | None:
    """Return merge fields for templates: ``{contact_id: {field: value}}``.

    Called by :func:`trellis.templating.merge_context` for each enabled plugin,
    once for a whole batch of contacts (answer set-based, not one query per
    contact).  Values must be plain data (strings, numbers, lists, dicts).  A
    plugin's fields are shown to templates under its name
    (``{{ sales.last_product }}``); contacts without fields may be left out.
    """


@hookspec
def trellis_actions() -> list[ActionSpec]:
    """Return actions that automation can run on records (:class:`trellis.specs.ActionSpec`).

    Called once per plugin at start-up.  Journeys and automation rules offer
    every enabled plugin's actions (``sales.create_task``, ``core.add_tag``...)
    and run them by name with validated parameters (:func:`trellis.actions.run`).
    Action names start with the plugin's name; a name offered twice fails the
    second plugin.  docs/plugins.md, *Writing an action*, shows one.
    """


# --------------------------------------------------------------------------- privacy


@hookspec
def trellis_personal_data(session: Session, contact_id: int) -> dict[str, Any] | None:
    """Return everything this plugin stores about one contact, JSON-serialisable.

    Called for a personal-data export (:mod:`trellis.privacy`: the contact page,
    ``GET /api/v1/privacy/<id>/export``, ``trellis privacy export``), for every
    loaded plugin, enabled or not; the results become one ``<plugin>.json`` each
    in the ZIP.  Return ``None`` when the plugin holds nothing.  A plugin that
    does not implement the hook gets the rows of its models whose
    ``contact_field`` points at the contact exported as they are.
    """


@hookspec
def trellis_erase_personal_data(session: Session, contact_id: int) -> None:
    """Erase or anonymise what this plugin stores about one contact.

    Called inside the erasure transaction, before the contact itself is
    anonymised; raising aborts the whole erasure, with your message shown to the
    user.  Keep business figures (amounts, dates) and remove what identifies the
    person (names, addresses, free text); call
    ``trellis.audit.redact(session, model, ids)`` for the records you anonymise,
    so their old values leave the audit log too.  The sales plugin's
    ``trellis_sales/privacy.py`` is an example.
    """


# --------------------------------------------------------------------------- merge


@hookspec
def trellis_before_merge(session: Session, model: str, winner_id: int,
                         loser_ids: list[int]) -> None:
    """Prepare this plugin's rows for merging records of ``model`` into one.

    ``model`` is ``"contact"`` or ``"account"``.  Called by
    :func:`trellis.merge.merge` inside the merge transaction, for every enabled
    plugin, **before** the core re-points every foreign key to the losers
    (``loser_ids``) — in any table, yours included — to ``winner_id``.  You only
    need it where a plain re-point would break a constraint or give the wrong
    answer, such as a unique "one score row per contact": keep or combine the rows
    you want and remove the others with
    ``trellis.merge.drop_rows(session, table, where)`` and
    ``trellis.merge.update_rows(session, table, column, where, value)``, which
    journal what they change so :func:`trellis.merge.undo` restores it.  Rows that
    would still break a unique constraint or index containing the foreign key
    (the winner already has that tag) are dropped by the core, journaled too.
    Raise to abort the merge.  The integrations plugin closes its duplicate
    candidates of the losers here::

        @hookimpl
        def trellis_before_merge(session, model, winner_id, loser_ids):
            if model != "contact":
                return
            t = Score.__table__
            best = session.scalar(select(func.max(t.c.points)).where(
                t.c.contact_id.in_([winner_id, *loser_ids])))
            merge.update_rows(session, t, t.c.points, t.c.contact_id == winner_id, best)
            merge.drop_rows(session, t, t.c.contact_id.in_(loser_ids))
    """


# --------------------------------------------------------------------------- demo


@hookspec
def trellis_demo_data(session: Session, rng: Any, contact_ids: list[int],
                      users_password: str | None, locale: str) -> dict[str, int] | None:
    """Add realistic demo data for this plugin (``trellis demo``).

    Called after the core created accounts and contacts (``contact_ids``), in
    dependency order, and only for enabled plugins; ``rng`` is a seeded
    ``random.Random``.  With ``trellis demo --users-password PW`` the plugin may
    also create demo users who log in with ``PW`` (``users_password`` is ``None``
    otherwise).  ``locale`` (``en`` or ``zh_CN``, ``trellis demo --locale``) is
    the language of the demo: write names and texts in it
    (``trellis.demo.demo_text``).  Return counts of what was created, e.g.
    ``{"deals": 120}``.  The core commits once all plugins have run.  What you
    add goes through the model rules (``before_save``, ``validate``) at each
    flush like any other write, so invalid demo records fail the command.
    """


# --------------------------------------------------------------------------- conditions (marketing)


@hookspec
def trellis_condition_types() -> list[Any]:
    """Return condition types for contact conditions (:class:`trellis.conditions.ConditionType`).

    ``ConditionType(name, label, check, compile, params=None, description="")``:
    kinds of conditions on contacts that marketing segments (and automation
    rules) combine in a JSON tree with ``and`` / ``or`` / ``not``;
    :mod:`trellis.conditions` compiles the tree to one SQL query
    (docs/marketing.md).  In an automation rule they test the record's contact;
    the core's ``record`` type tests the record itself (docs/automation.md).  ``check(node)`` returns ``{key: [messages]}`` for the
    node's own keys; ``compile(node, contact_id)`` returns a SQL boolean
    expression, never ``NULL``, correlated with the contact id column it is given.
    Names are global (start them with your plugin's name); types of a disabled
    plugin are not offered.
    """

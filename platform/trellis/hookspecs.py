"""The Trellis hook API: every hook a plugin may implement.

This module is the contract between the core and its plugins.  Each spec says
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
    owning plugin, the marshmallow schema, the label and the searchable fields,
    so generic features (REST API, audit, import/export, search, personal-data
    export) work for the model.  Models are subclasses of
    :class:`trellis.db.Model` with an explicit ``__tablename__``; a registry
    name used by two plugins is an error naming both.
    """


@hookspec
def trellis_migrations() -> str | None:
    """Return the directory of this plugin's alembic revision scripts.

    The plugin's first revision carries ``branch_labels = ("<plugin name>",)``
    and ``depends_on`` the core revision it needs.  ``trellis db upgrade``
    applies the core branch and then each enabled plugin's branch in dependency
    order; enabling a plugin later applies its branch.  The directory stays
    locatable while the plugin is disabled, so its revisions are never lost.
    """


# --------------------------------------------------------------------------- web


@hookspec
def trellis_views() -> list[ViewSpec]:
    """Return Flask-AppBuilder views (with their menu entries) to register.

    Each :class:`trellis.specs.ViewSpec` names a FAB view class and where it
    goes in the menu.  Menus of a disabled plugin are hidden and its views
    answer 404 without a restart.
    """


@hookspec
def trellis_apis() -> list[type]:
    """Return Flask-AppBuilder REST API classes (``BaseApi`` subclasses).

    Model APIs should subclass :class:`trellis.api.TrellisModelApi`, which
    gives large-table pagination, field errors and permission naming.  APIs of
    a disabled plugin answer 404.  They appear in the OpenAPI document.
    """


@hookspec
def trellis_blueprints() -> list[BlueprintSpec]:
    """Return plain Flask blueprints with the permission that guards them.

    Every route of a :class:`trellis.specs.BlueprintSpec` requires login and
    the permission it names, unless the spec says ``public=True`` (e.g. a web
    form or a tracking pixel).  Blueprints of a disabled plugin answer 404.
    """


@hookspec
def trellis_roles() -> list[RoleSpec]:
    """Return roles this plugin contributes, with their permissions.

    Roles are created or extended by ``trellis init`` / ``db upgrade`` and when
    the plugin is enabled.  Several plugins may add permissions to the same
    role name; the role ends up with the union.
    """


@hookspec
def trellis_dashboard_widgets() -> list[WidgetSpec]:
    """Return dashboard widgets this plugin offers.

    Each :class:`trellis.specs.WidgetSpec` has a stable name, a label, a kind
    and a function computing its data for the current user (inside the request,
    so ``restrict()``-ed queries follow the user's record rules).  The core's
    dashboard (:mod:`trellis.dashboard`) shows the widgets of enabled plugins
    whose ``permission`` the user has.  Widgets of a disabled plugin are not
    offered.
    """


@hookspec
def trellis_record_panels() -> list[PanelSpec]:
    """Return panels this plugin adds to record pages of other models.

    Called once per plugin at start-up.  Each :class:`trellis.specs.PanelSpec`
    names the registry models whose pages show it (the contact and account
    pages, typically) and renders its HTML for one record, inside the request,
    so its queries follow the user's record rules.  Panels of a disabled
    plugin, and panels whose ``permission`` the user lacks, are not shown.
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
    """Return handlers for domain events.

    Record events are named ``<model>.created``, ``<model>.updated`` and
    ``<model>.deleted`` after the registry name of the model; plugins also emit
    named events such as ``deal.won``.  ``"*"`` matches every event.  Events
    fire **after the database transaction commits**, never for a rolled-back
    change.  A handler with ``background=True`` runs as a job (an rq worker
    with Redis, in-process otherwise).  One handler failing is logged and
    does not stop the others.  Handlers of a disabled plugin are not called.
    """


@hookspec
def trellis_jobs() -> list[JobSpec]:
    """Return background jobs this plugin provides.

    Jobs are enqueued by name with :func:`trellis.jobs.enqueue` (never by
    import path, so code can move).  A job of a disabled plugin is skipped
    when a worker picks it up.
    """


@hookspec
def trellis_schedules() -> list[ScheduleSpec]:
    """Return periodic schedules for this plugin's jobs.

    ``trellis scheduler`` enqueues them (rq's cron scheduler with Redis, an
    in-process loop otherwise).  Schedules of a disabled plugin do not run.
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

    Called once per plugin at start-up.  A feature is a set-based query of
    ``contact_id`` and ``value`` (purchase total, average satisfaction, CRM
    value...).  Scoring models, segments, SLA tiers and reports read features
    through :mod:`trellis.features` without knowing which plugin computes
    them.  Features of a disabled plugin are not offered.
    """


@hookspec
def trellis_purchase_lines() -> Select | None:
    """Return a ``select()`` of what customers bought, one row per order line.

    Called whenever :func:`trellis.purchases.lines` is used, for each enabled
    plugin; the selects are combined with ``UNION ALL``.  Columns, labelled and
    in this order: ``contact_id``, ``account_id``, ``order_id``, ``ordered_at``,
    ``product_id``, ``product_name``, ``quantity``, ``amount`` (the line's
    amount in the company currency, ``NULL`` when it cannot be converted).
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
    every enabled plugin's actions (``sales.create_task``,
    ``core.add_tag``...) and run them by name with validated parameters
    (:func:`trellis.actions.run`).  Action names start with the plugin's name.
    """


# --------------------------------------------------------------------------- privacy


@hookspec
def trellis_personal_data(session: Session, contact_id: int) -> dict[str, Any] | None:
    """Return everything this plugin stores about one contact, JSON-serialisable.

    Called for a personal-data export; results are collected under each
    plugin's name.  Return ``None`` when the plugin holds nothing.
    """


@hookspec
def trellis_erase_personal_data(session: Session, contact_id: int) -> None:
    """Erase or anonymise what this plugin stores about one contact.

    Called inside the erasure transaction, before the contact itself is
    anonymised; raise to abort the whole erasure.
    """


# --------------------------------------------------------------------------- merge


@hookspec
def trellis_before_merge(session: Session, model: str, winner_id: int,
                         loser_ids: list[int]) -> None:
    """Prepare this plugin's rows for merging records of ``model`` into one.

    Called by :func:`trellis.merge.merge` inside the merge transaction, for
    every enabled plugin, before the core re-points every foreign key to the
    losers (``loser_ids``) to the winner.  Resolve here what a plain re-point
    would break or get wrong, such as a unique "one score row per contact":
    keep or combine the rows you want and remove the others with
    :func:`trellis.merge.drop_rows` / :func:`trellis.merge.update_rows`, which
    journal the change so an undo restores it.  Rows that would still break a
    unique constraint are dropped by the core (journaled too).  Raise to abort
    the merge.
    """


# --------------------------------------------------------------------------- demo


@hookspec
def trellis_demo_data(session: Session, rng: Any, contact_ids: list[int],
                      users_password: str | None, locale: str) -> dict[str, int] | None:
    """Add realistic demo data for this plugin (``trellis demo``).

    Called after the core created accounts and contacts (``contact_ids``),
    in dependency order; ``rng`` is a seeded ``random.Random``.  When
    ``users_password`` is given, the plugin may create demo users (e.g. sales
    reps) who log in with it.  ``locale`` (``en`` or ``zh_CN``) is the language
    of the demo: names and texts in it (``trellis.demo.demo_text``).  Return
    counts of what was created, e.g. ``{"deals": 120}``.
    """


# --------------------------------------------------------------------------- conditions (marketing)


@hookspec
def trellis_condition_types() -> list[Any]:
    """Return condition types for contact conditions (:class:`trellis.conditions.ConditionType`).

    Marketing segments (and automation rules) combine conditions in a JSON tree
    with and/or/not; :mod:`trellis.conditions` compiles the tree to one SQL
    query.  A condition type validates its node (``check``) and compiles it to
    a null-safe SQL boolean expression correlated with the contact id
    (``compile``).  Names are global; types of a disabled plugin are not offered.
    """

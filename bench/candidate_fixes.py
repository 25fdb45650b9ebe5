"""Candidate fixes to the core, applied to a running app object only (no file changes).

Used by profile_api.py (ablations, cumulatively) and by
``api_list.py --with-fixes`` (a third server, ``patched_app:create_app()``),
to measure what each suggested change to the core would buy before anyone
makes it.  Each function patches one app and returns a function undoing it.

History: the first profile (commit f42bc24) found FAB re-checking the rison
JSON schema against its meta-schema on every request and 4-6 security
queries per request; the core now builds each validator once and caches role
grants (``trellis/fastpaths.py``, commit efa8e16), so those candidates were
dropped from here.  What remains is below.
"""

from __future__ import annotations

from typing import Callable

Revert = Callable[[], None]
_MISSING = object()


def _set(obj, name: str, value) -> Revert:
    """Set an instance attribute; the returned function restores what was there."""
    previous = obj.__dict__.get(name, _MISSING)
    setattr(obj, name, value)

    def revert() -> None:
        if previous is _MISSING:
            obj.__dict__.pop(name, None)
        else:
            setattr(obj, name, previous)

    return revert


def _contact_api(app):
    return next(v for v in app.appbuilder.baseviews
                if getattr(v, "resource_name", "") == "contact")


def user_loaded_in_one_query(app) -> Revert:
    """The JWT user with its roles and groups' roles in one query, not three.

    FAB's ``load_user_jwt`` -> ``get_user_by_id`` loads the user; the
    permission check then lazy-loads ``user.roles`` and ``user.groups``.
    """
    from sqlalchemy.orm import joinedload

    sm = app.appbuilder.sm
    user, group = sm.user_model, sm.group_model

    def get_user_by_id(pk):
        return sm.session.get(user, pk, options=[
            joinedload(user.roles), joinedload(user.groups).joinedload(group.roles)])

    return _set(sm, "get_user_by_id", get_user_by_id)


def lean_count(app) -> Revert:
    """The same capped count, without FAB's per-column ``load_only`` query building.

    ``TrellisSQLAInterface.query_count`` runs ``_apply_inner_all`` with the
    select columns (a ``load_only`` per column, order-by handling) and then
    throws the columns away; filtering the pk column is enough.
    """
    from flask import current_app
    from sqlalchemy import func, select

    datamodel = _contact_api(app).datamodel

    def query_count(query, filters=None, select_columns=None):
        cap = current_app.config.get("TRELLIS_COUNT_CAP", 10000)
        query = datamodel.apply_filters(query, datamodel.get_inner_filters(filters))
        limited = query.with_entities(datamodel.obj.id).order_by(None).limit(cap + 1)
        return datamodel.session.execute(
            select(func.count()).select_from(limited.subquery())).scalar_one()

    return _set(datamodel, "query_count", query_count)


def no_count(app) -> Revert:
    """Not a fix: no count at all, to bound what any cheaper count could save."""
    datamodel = _contact_api(app).datamodel
    return _set(datamodel, "query_count", lambda *a, **k: 0)


def ordered_by_id(app) -> Revert:
    """Not a speed-up: the cost of making unordered pages deterministic."""
    api = _contact_api(app)
    return _set(api, "base_order", ("id", "asc"))


#: (label, patch) applied cumulatively by the ablations; the first ones are
#: what ``--with-fixes`` serves
FIXES = [
    ("+ JWT user, roles and groups in one query", user_loaded_in_one_query),
    ("+ capped count without load_only query building", lean_count),
]
EXTRA = [
    ("+ no count query at all (upper bound, not a fix)", no_count),
]
#: measured separately, against "as shipped"
COST = ("as shipped + ORDER BY id by default (correctness)", ordered_by_id)


def apply_fixes(app) -> list[Revert]:
    """The candidate fixes (FIXES), as ``patched_app.py`` serves them."""
    return [patch(app) for _, patch in FIXES]

"""Per-request costs of Flask-AppBuilder removed, measured in bench/.

* :class:`TrellisSecurityManager` answers permission checks from one
  per-process map of every role's grants, re-read every
  ``TRELLIS_PERMISSION_CACHE_TTL`` seconds (and at once in the process that
  syncs permissions), instead of 2–4 queries per request.
* :func:`cache_rison_validators` builds each ``@rison`` JSON-schema validator
  once; FAB re-checks the schema against its meta-schema on every request.
* :func:`bounded_search_options`: a list page's filter drop-down of related
  records (a contact's account, an activity's contact) offers at most
  ``limit`` of them; FAB read and rendered the whole related table on every
  list page (10,000 accounts: 2.7 s and 780 kB of HTML per contact list page).
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from flask import current_app
from flask_appbuilder.fields import QuerySelectField, QuerySelectMultipleField
from flask_appbuilder.security.sqla.manager import SecurityManager
from sqlalchemy import select
from wtforms.fields.core import UnboundField

from trellis.auth import AuthMixin, TrellisAuthDBView, TrellisSecurityApi


def _without_download(view: type, *mixins: type) -> type:
    """FAB's security view without its ``/download/<file>`` route (it serves
    UPLOAD_FOLDER, which Trellis does not use).  Same class name: same endpoints
    and permissions."""
    return type(view.__name__, (*mixins, view), {"exclude_route_methods": {"download"}})


def role_label(role: Any) -> str:
    """A role's name as shown: translated (the roles the core and the plugins
    declare are msgids of their catalogs; a role an admin made is shown as named)."""
    from trellis.i18n import translate

    return translate(role.name)


class RolesTranslated:
    """For FAB's user view: role names translated in the forms' role picker and in
    the list and the record page."""

    def _init_forms(self) -> None:
        super()._init_forms()  # type: ignore[misc]
        for form in (self.add_form, self.edit_form):  # type: ignore[attr-defined]
            field = getattr(form, "roles", None)
            if isinstance(field, UnboundField):
                field.kwargs["get_label"] = role_label
        self.formatters_columns = {
            "roles": lambda roles: ", ".join(role_label(r) for r in roles or ()),
            **(self.formatters_columns or {})}  # type: ignore[has-type]


class TrellisSecurityManager(AuthMixin, SecurityManager):
    """FAB's SQLAlchemy security manager with cached role grants (and the sign-in
    hardening of :mod:`trellis.auth`)."""

    authdbview = TrellisAuthDBView
    security_api = TrellisSecurityApi
    userdbmodelview = _without_download(SecurityManager.userdbmodelview, RolesTranslated)
    rolemodelview = _without_download(SecurityManager.rolemodelview)
    groupmodelview = _without_download(SecurityManager.groupmodelview)
    permissionmodelview = _without_download(SecurityManager.permissionmodelview)
    viewmenumodelview = _without_download(SecurityManager.viewmenumodelview)
    permissionviewmodelview = _without_download(SecurityManager.permissionviewmodelview)
    #: FAB's user statistics chart loads Google Charts from a CDN (and answers 500
    #: to a non-numeric group): not offered.
    userstatschartview = None

    _grants: dict[int, frozenset[tuple[str, str]]] = {}
    _grants_read_at = float("-inf")
    _public_role_id: int | None = None

    def forget_grants(self) -> None:
        self._grants_read_at = float("-inf")

    def grants(self) -> dict[int, frozenset[tuple[str, str]]]:
        """``{role id: {(permission, view menu)}}`` for every role, cached."""
        ttl = current_app.config.get("TRELLIS_PERMISSION_CACHE_TTL", 2)
        now = time.monotonic()
        if now - self._grants_read_at > ttl:
            assoc = self.role_model.permissions.property.secondary
            pv, perm, view = self.permissionview_model, self.permission_model, self.viewmenu_model
            rows = self.session.execute(
                select(assoc.c.role_id, perm.name, view.name)
                .join(pv, pv.id == assoc.c.permission_view_id)
                .join(perm, perm.id == pv.permission_id)
                .join(view, view.id == pv.view_menu_id)
            ).all()
            grants: dict[int, set[tuple[str, str]]] = {}
            for role_id, permission, view_menu in rows:
                grants.setdefault(role_id, set()).add((permission, view_menu))
            self._grants = {k: frozenset(v) for k, v in grants.items()}
            public = self.session.scalar(select(self.role_model.id).where(
                self.role_model.name == self.auth_role_public))
            self._public_role_id = public
            self._grants_read_at = now
        return self._grants

    def exist_permission_on_roles(self, view_name: str, permission_name: str,
                                  role_ids: list[int]) -> bool:
        grants = self.grants()
        return any((permission_name, view_name) in grants.get(r, ()) for r in role_ids)

    def is_item_public(self, permission_name: str, view_name: str) -> bool:
        grants = self.grants()
        if self._public_role_id is None:
            return False
        return (permission_name, view_name) in grants.get(self._public_role_id, ())

    def find_roles_permission_view_menus(self, permission_name: str,
                                         role_ids: list[int]) -> list[Any]:
        grants = self.grants()
        names = {v for r in role_ids for p, v in grants.get(r, ()) if p == permission_name}
        return [SimpleNamespace(view_menu=SimpleNamespace(name=n)) for n in sorted(names)]


class _CachedJsonschema:
    """Stands in for the ``jsonschema`` module inside ``flask_appbuilder.api``."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.ValidationError = real.ValidationError
        self._validators: dict[int, tuple[dict, Any]] = {}

    def validate(self, instance: Any, schema: dict) -> None:
        from jsonschema.exceptions import best_match
        from jsonschema.validators import validator_for

        hit = self._validators.get(id(schema))
        if hit is None or hit[0] is not schema:
            cls = validator_for(schema)
            cls.check_schema(schema)
            hit = self._validators[id(schema)] = (schema, cls(schema))
        error = best_match(hit[1].iter_errors(instance))
        if error is not None:
            raise error

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def cache_rison_validators() -> None:
    """Make FAB's ``@rison`` decorator reuse one validator per schema (idempotent)."""
    import flask_appbuilder.api as fab_api

    if not isinstance(fab_api.jsonschema, _CachedJsonschema):
        fab_api.jsonschema = _CachedJsonschema(fab_api.jsonschema)


def _first_related(datamodel: Any, column: str, rel_filters: dict[str, Any],
                   limit: int) -> Any:
    """FAB's query of a search form's related records (with the view's filters on
    them, e.g. record rules), bounded to its first ``limit`` rows."""
    related = datamodel.get_related_interface(column)

    def query() -> list[Any]:
        filters = related.get_filters()
        if column in rel_filters:
            filters = filters.add_filter_list(rel_filters[column])
        return related.query(filters, page=0, page_size=limit)[1]

    return query


def bounded_search_options(form: type, datamodel: Any, rel_filters: dict[str, Any] | None,
                           limit: int) -> type:
    """``form`` (a search form class FAB built) with each related-record drop-down
    offering at most ``limit`` records.  Filtering is unchanged: FAB's relation
    filters take any id from the URL (``?_flt_0_account=<id>``) without
    checking it against the options; only search forms are bounded (add and edit
    forms validate the chosen record against their options)."""
    bounded = {}
    for name in dir(form):
        field = getattr(form, name, None)
        if isinstance(field, UnboundField) and field.field_class in (
                QuerySelectField, QuerySelectMultipleField):
            kwargs = {**field.kwargs,
                      "query_func": _first_related(datamodel, name, rel_filters or {}, limit)}
            bounded[name] = UnboundField(field.field_class, *field.args, name=field.name,
                                         **kwargs)
    return type(form.__name__, (form,), bounded) if bounded else form

"""Record rules: which owned records a user may see and change.

A model whose :class:`~trellis.specs.ModelSpec` names an ``owner_field`` is
filtered for every user by the widest scope among their roles:

* ``own``  — records they own;
* ``team`` — records owned by anyone in a team they belong to or manage;
* ``all``  — everything (the ``Admin`` role always; roles without a scope too).

The same rule is applied by every path that reads through the core's base
classes — list, detail, edit, delete, the REST API, related-field pickers —
and by :func:`restrict` for hand-written queries (reports, exports, search).
"""

from __future__ import annotations

from typing import Any

from flask import current_app, g, has_request_context
from flask_appbuilder.models.filters import BaseFilter
from sqlalchemy import or_, select

from trellis.context import _actor as _acting
from trellis.db import db
from trellis.models import RoleScope, Team, team_member

SCOPES = ("own", "team", "all")
_RANK = {scope: rank for rank, scope in enumerate(SCOPES)}


def _user() -> Any:
    if not has_request_context():
        return None
    user = getattr(g, "user", None)
    return user if getattr(user, "is_authenticated", False) else None


def user_scope(user: Any) -> str:
    """The widest scope of the user's roles (``all`` for the admin role)."""
    roles = list(getattr(user, "roles", []) or [])
    if not roles:
        return "own"
    admin = current_app.config.get("AUTH_ROLE_ADMIN", "Admin")
    if any(role.name == admin for role in roles):
        return "all"
    stored = dict(db.session.execute(
        select(RoleScope.role_id, RoleScope.scope)
        .where(RoleScope.role_id.in_([r.id for r in roles]))).all())
    return max((stored.get(role.id, "all") for role in roles), key=_RANK.__getitem__)


def team_user_ids(user_id: int) -> set[int]:
    """The user and everyone in a team they belong to or manage."""
    teams = select(Team.id).where(or_(
        Team.manager_id == user_id,
        Team.id.in_(select(team_member.c.team_id).where(team_member.c.user_id == user_id))))
    members = db.session.scalars(
        select(team_member.c.user_id).where(team_member.c.team_id.in_(teams))).all()
    managers = db.session.scalars(select(Team.manager_id).where(Team.id.in_(teams))).all()
    return {user_id, *members, *(m for m in managers if m is not None)}


def visible_owner_ids() -> list[int] | None:
    """Owner ids the current user may see; ``None`` means no restriction.

    Jobs (also in-process ones run inside a request), the CLI and other code
    outside a request are not restricted.  Cached for the request.
    """
    actor = _acting.get()
    if not has_request_context() or (actor is not None and actor.source in ("job", "cli")):
        return None
    if "trellis_owner_ids" in g:
        return g.trellis_owner_ids
    user = _user()
    if user is None:
        ids: list[int] | None = []
    else:
        scope = user_scope(user)
        ids = None if scope == "all" else (
            [user.id] if scope == "own" else sorted(team_user_ids(user.id)))
    g.trellis_owner_ids = ids
    return ids


def _spec(model: type) -> Any:
    entry = current_app.extensions["trellis"].registry.for_class(model)
    return entry.spec if entry else None


def owner_field(model: type) -> str | None:
    spec = _spec(model)
    return spec.owner_field if spec else None


def parent_of(model: type) -> tuple[str, type] | None:
    spec = _spec(model)
    return spec.parent if spec and not spec.owner_field else None


def is_ruled(model: type) -> bool:
    """Whether record rules apply to the model (it has an owner or a ruled parent)."""
    parent = parent_of(model)
    return bool(owner_field(model) or (parent and is_ruled(parent[1])))


def visible_ids(model: type) -> Any:
    """A subquery of the ids of ``model`` the user may see (``None``: all)."""
    if not is_ruled(model) or visible_owner_ids() is None:
        return None
    key = model.__mapper__.primary_key[0]
    return restrict(select(key), model).scalar_subquery()


def may_see(item: Any) -> bool:
    """Whether the current user may see this record under its model's rule."""
    model = type(item)
    field = owner_field(model)
    if field:
        ids = visible_owner_ids()
        return ids is None or getattr(item, field) in ids
    parent = parent_of(model)
    if parent and is_ruled(parent[1]) and visible_owner_ids() is not None:
        parent_id = getattr(item, parent[0])
        record = db.session.get(parent[1], parent_id) if parent_id is not None else None
        return record is not None and may_see(record)
    return True


def restrict(stmt: Any, model: type) -> Any:
    """Apply the current user's record rule to a ``select()`` over ``model``."""
    ids = visible_owner_ids()
    if ids is None:
        return stmt
    field = owner_field(model)
    if field:
        return stmt.where(getattr(model, field).in_(ids))
    parent = parent_of(model)
    if parent and is_ruled(parent[1]):
        return stmt.where(getattr(model, parent[0]).in_(visible_ids(parent[1])))
    return stmt


class OwnerRuleFilter(BaseFilter):
    """FAB base filter applying the record rule (added by the core's base classes)."""

    name = "Record rule"

    def apply(self, query: Any, value: Any) -> Any:
        ids = visible_owner_ids()
        if ids is None:
            return query
        return query.filter(getattr(self.model, self.column_name).in_(ids))


class ParentRuleFilter(BaseFilter):
    """FAB base filter: only rows whose parent the user may see."""

    name = "Record rule (parent)"

    def apply(self, query: Any, parent: Any) -> Any:
        ids = visible_ids(parent)
        if ids is None:
            return query
        return query.filter(getattr(self.model, self.column_name).in_(ids))


def rule_filters(model: type) -> list[list[Any]]:
    """``base_filters`` entries enforcing the rule on ``model`` (none if unruled)."""
    field = owner_field(model)
    if field:
        return [[field, OwnerRuleFilter, None]]
    parent = parent_of(model)
    if parent and is_ruled(parent[1]):
        return [[parent[0], ParentRuleFilter, parent[1]]]
    return []


def check_owner(value: Any) -> str | None:
    """Why the current user may not make ``value`` the owner of a record, or None."""
    ids = visible_owner_ids()
    if ids is None or (value is not None and value in ids):
        return None
    if value is None:
        return "A record must have an owner; give it to yourself or your team."
    return ("You can only assign records to yourself." if len(ids) <= 1
            else "You can only assign records to members of your teams.")


class VisibleUsersFilter(BaseFilter):
    """Limits an owner picker to the users the current user may assign to."""

    name = "Assignable users"

    def apply(self, query: Any, value: Any) -> Any:
        ids = visible_owner_ids()
        if ids is None:
            return query
        return query.filter(self.model.id.in_(ids))


def picker_filters(model: type) -> dict[str, list[list[Any]]]:
    """``*_form_query_rel_fields`` so related-record pickers obey the rule too."""
    from sqlalchemy import inspect as sa_inspect

    own_field = owner_field(model)
    out: dict[str, list[list[Any]]] = {}
    for rel in sa_inspect(model).relationships:
        local = {c.key for c in rel.local_columns}
        target_field = owner_field(rel.mapper.class_)
        if own_field and own_field in local:
            out[rel.key] = [["id", VisibleUsersFilter, None]]
        elif target_field:
            out[rel.key] = [[target_field, OwnerRuleFilter, None]]
    return out


def default_owner(item: Any) -> None:
    """Make a restricted user the owner of a new record that names none (or they
    could not see it).  Unrestricted users (admins, integrations) leave it
    unowned, for the plugin's assignment rules or the shared pool."""
    field = owner_field(type(item))
    user = _user()
    if field and user is not None and getattr(item, field, None) is None \
            and visible_owner_ids() is not None:
        setattr(item, field, user.id)

"""Permissions and roles, synced explicitly (never at web-worker start).

Every view and API of plugin ``p`` uses resources named ``p.<Thing>``, so a
plugin's permissions can be listed and removed exactly (Superset-style
``trellis init`` sync, without its clean-up of other people's permissions).
"""

from __future__ import annotations

from typing import Iterable

from flask import current_app
from sqlalchemy import delete, insert, select

from trellis.db import db
from trellis.extension import Trellis
from trellis.models import RoleScope


def sync_permissions(ext: Trellis, plugins: Iterable[str] | None = None) -> None:
    """Create missing permissions for every registered view (the Admin role gets
    them all), then the roles the given plugins (default: all loaded) contribute.

    What Flask-AppBuilder's ``add_permissions(update_perms=True)`` does, set-based:
    a handful of queries and bulk inserts whatever the number of views, where
    FAB's own walk issues several ORM queries per permission (about 30 s for the
    five plugins, on every enable).  One difference: the permissions of a resource
    shared by several views are the union of theirs (FAB keeps the last view's).
    """
    appbuilder = current_app.appbuilder
    sm = appbuilder.sm
    # FAB's own roles (Admin, Public), which FAB_CREATE_DB=False skips at boot.
    admin = sm.add_role(sm.auth_role_admin)
    sm.add_role(sm.auth_role_public)
    catalog = _Catalog(sm)
    by_resource = _view_permissions(appbuilder)
    menu_names = [name for category in (appbuilder.menu.get_list() if appbuilder.menu else [])
                  for name in [category.name, *(i.name for i in category.childs)] if name != "-"]
    admin_pairs = {(perm, resource) for resource, perms in by_resource.items() for perm in perms}
    admin_pairs |= {("menu_access", name) for name in menu_names}
    catalog.add_views(by_resource)  # FAB registers a resource even without permissions
    catalog.drop_stale(by_resource)
    blueprint_pairs = {(spec.permission, f"{name}.{spec.blueprint.name}")
                       for name, spec in ext.blueprint_owner.values()
                       if spec is not None and not spec.public}
    catalog.ensure(admin_pairs | blueprint_pairs)
    if admin is not None and sm.auth_role_admin not in sm.builtin_roles:
        catalog.grant(admin.id, admin_pairs)
    wanted = set(plugins) if plugins is not None else {p.name for p in ext.plugins.loaded()}
    menus = _menus_by_resource(appbuilder)
    for plugin, role_spec in ext.roles:
        if plugin not in wanted:
            continue
        role = sm.find_role(role_spec.name) or sm.add_role(role_spec.name)
        pairs = set(role_spec.permissions)
        for _, resource in role_spec.permissions:
            pairs |= {("menu_access", menu) for menu in menus.get(resource, ())}
        catalog.ensure(pairs)
        catalog.grant(role.id, pairs)
        if role_spec.scope is not None and db.session.get(RoleScope, role.id) is None:
            db.session.add(RoleScope(role_id=role.id, scope=role_spec.scope))
    db.session.commit()
    db.session.expire_all()  # roles' permission collections were written around the ORM
    sm.forget_grants()


def _view_permissions(appbuilder) -> dict[str, set[str]]:
    """Each registered view's resource and the permissions its views expose."""
    out: dict[str, set[str]] = {}
    for view in appbuilder.baseviews:
        resource = getattr(view, "class_permission_name", None)
        if resource:
            out.setdefault(resource, set()).update(view.base_permissions or ())
    return out


class _Catalog:
    """FAB's permission tables as name → id maps, extended by bulk inserts."""

    def __init__(self, sm) -> None:
        self.perm_model, self.view_model = sm.permission_model, sm.viewmenu_model
        self.pv_model = sm.permissionview_model
        self.assoc = sm.role_model.permissions.property.secondary
        self.perms = self._names(self.perm_model)
        self.views = self._names(self.view_model)
        pv = self.pv_model
        self.pvs = {(p, v): i for i, p, v in db.session.execute(
            select(pv.id, pv.permission_id, pv.view_menu_id))}

    def _names(self, model) -> dict[str, int]:
        return dict(db.session.execute(select(model.name, model.id)).all())

    def _add_names(self, model, known: dict[str, int], names: Iterable[str]) -> None:
        missing = sorted(set(names) - known.keys())
        if missing:
            db.session.execute(insert(model), [{"name": name} for name in missing])
            known.update(db.session.execute(
                select(model.name, model.id).where(model.name.in_(missing))).all())

    def add_views(self, names: Iterable[str]) -> None:
        self._add_names(self.view_model, self.views, names)

    def ensure(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Create the missing permissions, resources and their pairings."""
        pairs = set(pairs)
        self._add_names(self.perm_model, self.perms, {p for p, _ in pairs})
        self.add_views({v for _, v in pairs})
        missing = sorted({(self.perms[p], self.views[v]) for p, v in pairs} - self.pvs.keys())
        if missing:
            pv = self.pv_model
            db.session.execute(insert(pv), [{"permission_id": p, "view_menu_id": v}
                                            for p, v in missing])
            self.pvs.update({(p, v): i for i, p, v in db.session.execute(
                select(pv.id, pv.permission_id, pv.view_menu_id).where(
                    pv.view_menu_id.in_({v for _, v in missing})))})

    def ids(self, pairs: Iterable[tuple[str, str]]) -> set[int]:
        return {self.pvs[(self.perms[p], self.views[v])] for p, v in pairs}

    def grant(self, role_id: int, pairs: Iterable[tuple[str, str]]) -> None:
        """Give ``role_id`` the (existing) permission pairs it lacks."""
        assoc = self.assoc
        have = set(db.session.scalars(select(assoc.c.permission_view_id)
                                      .where(assoc.c.role_id == role_id)))
        missing = sorted(self.ids(pairs) - have)
        if missing:
            db.session.execute(insert(assoc), [{"role_id": role_id, "permission_view_id": i}
                                               for i in missing])

    def drop_stale(self, by_resource: dict[str, set[str]]) -> None:
        """Remove, from every role and then altogether, the permissions a view's
        resource has but its views no longer expose."""
        perm_names = {i: n for n, i in self.perms.items()}
        view_names = {i: n for n, i in self.views.items()}
        stale = {i for (p, v), i in self.pvs.items()
                 if view_names.get(v) in by_resource
                 and perm_names.get(p) not in by_resource[view_names[v]]}
        if stale:
            db.session.execute(delete(self.assoc).where(self.assoc.c.permission_view_id.in_(stale)))
            db.session.execute(delete(self.pv_model).where(self.pv_model.id.in_(stale)))
            self.pvs = {key: i for key, i in self.pvs.items() if i not in stale}


def _menus_by_resource(appbuilder) -> dict[str, list[str]]:
    """Menu item and category names reachable through a view's resource."""
    out: dict[str, list[str]] = {}
    by_name = {}
    for view in appbuilder.baseviews:
        by_name[type(view).__name__] = getattr(view, "class_permission_name", None)
    for category in appbuilder.menu.menu:
        items = category.childs or [category]
        for item in items:
            view = item.baseview
            resource = getattr(view, "class_permission_name", None) if view else None
            if resource:
                names = out.setdefault(resource, [])
                names.append(item.name)
                if category.childs:
                    names.append(category.name)
    return out


def remove_permissions(ext: Trellis, plugin: str) -> None:
    """Delete every permission on ``<plugin>.*`` resources, from every role
    (three set-based DELETEs, whatever the number of roles)."""
    sm = current_app.appbuilder.sm
    view, pv = sm.viewmenu_model, sm.permissionview_model
    assoc = sm.role_model.permissions.property.secondary
    pattern = plugin.replace("\\", "\\\\").replace("_", r"\_").replace("%", r"\%") + ".%"
    views = select(view.id).where(view.name.like(pattern, escape="\\"))
    pvs = select(pv.id).where(pv.view_menu_id.in_(views))
    db.session.execute(delete(assoc).where(assoc.c.permission_view_id.in_(pvs)))
    db.session.execute(delete(pv).where(pv.view_menu_id.in_(views)))
    db.session.execute(delete(view).where(view.name.like(pattern, escape="\\")))
    db.session.commit()
    sm.forget_grants()

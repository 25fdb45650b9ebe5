"""Permissions and roles, synced explicitly (never at web-worker start).

Every view and API of plugin ``p`` uses resources named ``p.<Thing>``, so a
plugin's permissions can be listed and removed exactly (Superset-style
``trellis init`` sync, without its clean-up of other people's permissions).
"""

from __future__ import annotations

from typing import Iterable

from flask import current_app
from sqlalchemy import delete, select

from trellis.db import db
from trellis.extension import Trellis
from trellis.models import RoleScope


def sync_permissions(ext: Trellis, plugins: Iterable[str] | None = None) -> None:
    """Create missing permissions for every registered view, then the roles the
    given plugins (default: all loaded) contribute."""
    appbuilder = current_app.appbuilder
    sm = appbuilder.sm
    # FAB's own roles (Admin, Public), which FAB_CREATE_DB=False skips at boot.
    sm.add_role(sm.auth_role_admin)
    sm.add_role(sm.auth_role_public)
    appbuilder.add_permissions(update_perms=True)
    for plugin, owner in ext.blueprint_owner.items():
        name, spec = owner
        if spec is not None and not spec.public:
            sm.add_permission_view_menu(spec.permission, f"{name}.{spec.blueprint.name}")
    wanted = set(plugins) if plugins is not None else {p.name for p in ext.plugins.loaded()}
    menus = _menus_by_resource(appbuilder)
    for plugin, role_spec in ext.roles:
        if plugin not in wanted:
            continue
        role = sm.find_role(role_spec.name) or sm.add_role(role_spec.name)
        pairs = list(role_spec.permissions)
        for _, resource in role_spec.permissions:
            for menu in menus.get(resource, ()):
                pairs.append(("menu_access", menu))
        for permission, resource in pairs:
            pv = sm.add_permission_view_menu(permission, resource)
            if pv is not None and pv not in role.permissions:
                sm.add_permission_role(role, pv)
        if role_spec.scope is not None and db.session.get(RoleScope, role.id) is None:
            db.session.add(RoleScope(role_id=role.id, scope=role_spec.scope))
    db.session.commit()
    sm.forget_grants()


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

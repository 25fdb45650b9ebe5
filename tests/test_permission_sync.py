"""``trellis.security.sync_permissions``: set-based, it leaves exactly FAB's
permissions for the registered views (stale ones removed, Admin granted all),
and ``trellis.testing.build_app``'s template keeps a second app's data."""

from sqlalchemy import select

from trellis.db import db
from trellis.security import sync_permissions


def _admin_pairs(sm):
    role = sm.find_role(sm.auth_role_admin)
    return {(pv.permission.name, pv.view_menu.name) for pv in role.permissions}


def test_sync_removes_stale_permissions_and_restores_admin_grants(trellis_app_factory):
    app = trellis_app_factory(plugins=["sales"])
    with app.app_context():
        sm = app.appbuilder.sm
        ext = app.extensions["trellis"]
        before = _admin_pairs(sm)
        assert any(v == "sales.Deal" for _, v in before)
        # a permission no view exposes any more, granted to a role; and a grant lost
        stale = sm.add_permission_view_menu("can_bygone", "sales.Deal")
        rep = sm.find_role("Sales Rep")
        sm.add_permission_role(rep, stale)
        lost = next(pv for pv in sm.find_role(sm.auth_role_admin).permissions
                    if pv.view_menu.name == "sales.Deal")
        lost_pair = (lost.permission.name, lost.view_menu.name)
        sm.del_permission_role(sm.find_role(sm.auth_role_admin), lost)
        assert lost_pair not in _admin_pairs(sm)

        sync_permissions(ext)

        assert sm.find_permission_view_menu("can_bygone", "sales.Deal") is None
        assert "can_bygone" not in {pv.permission.name for pv in sm.find_role("Sales Rep").permissions}
        assert _admin_pairs(sm) == before
        sync_permissions(ext)  # idempotent
        assert _admin_pairs(sm) == before


def test_a_second_app_in_the_same_folder_keeps_the_first_ones_data(trellis_app_factory):
    from trellis.models import Contact

    first = trellis_app_factory(plugins=["sales"])
    with first.app_context():
        db.session.add(Contact(first_name="Kept", last_name="Here"))
        db.session.commit()
    second = trellis_app_factory(plugins=["sales"])
    with second.app_context():
        assert db.session.scalar(select(Contact.first_name)) == "Kept"

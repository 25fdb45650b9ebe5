"""The audit log covers changes to users and roles (who got or lost which role or
permission, activation, a changed password — never its hash), and it is
append-only from the application's side."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from trellis.audit import AuditImmutable
from trellis.db import db
from trellis.models import AuditEntry


def entries(model):
    return [(e.action, e.changes) for e in db.session.scalars(
        select(AuditEntry).where(AuditEntry.model == model).order_by(AuditEntry.id))]


def test_role_and_user_changes_are_audited(trellis_app_factory, make_user):
    app = trellis_app_factory()
    make_user(app, "bea", ["CRM Viewer"])
    with app.app_context():
        sm = app.appbuilder.sm
        before = len(entries("user")) + len(entries("role"))
        viewer = sm.find_role("CRM Viewer")
        writable = next(pv for pv in sm.find_role("CRM User").permissions
                        if pv.permission.name == "can_write" and pv.view_menu.name == "core.Contact")
        viewer.permissions.append(writable)
        db.session.commit()
        added = entries("role")[-1]
        assert added[0] == "updated"
        assert added[1] == {"permissions": {"added": [str(writable)], "removed": []}}

        bea = sm.find_user(username="bea")
        bea.roles.append(sm.find_role("CRM User"))
        bea.active = False
        sm.reset_password(bea.id, "a-new-password-123")
        db.session.commit()
        changes = [c for a, c in entries("user") if a == "updated"]
        joined = {k: v for c in changes for k, v in c.items()}
        assert joined["roles"] == {"added": ["CRM User"], "removed": []}
        assert joined["active"] == {"old": True, "new": False}
        assert joined["password"] == "changed"
        assert "hash" not in str(changes) and "pbkdf2" not in str(changes)
        assert len(entries("user")) + len(entries("role")) > before


def test_the_audit_log_is_append_only(trellis_app_factory, make_user):
    app = trellis_app_factory()
    make_user(app, "bea", ["CRM Viewer"])
    with app.app_context():
        entry = db.session.scalars(select(AuditEntry)).first()
        assert entry is not None
        entry.action = "forged"
        with pytest.raises(AuditImmutable):
            db.session.commit()
        db.session.rollback()
        db.session.delete(db.session.get(AuditEntry, entry.id))
        with pytest.raises(AuditImmutable):
            db.session.commit()
        db.session.rollback()
        assert db.session.get(AuditEntry, entry.id).action != "forged"

"""``trellis demo`` fills the service plugin through its own rules."""

from __future__ import annotations

from sqlalchemy import func, select

from trellis.db import db


def test_demo_data_goes_through_the_rules(trellis_app_factory, api_login):
    from trellis.demo import load_demo
    from trellis_service.models import Article, Survey, Ticket

    app = trellis_app_factory(plugins=["service"])
    with app.app_context():
        load_demo(contacts=20, users_password="pw-123456")
        assert db.session.scalar(select(func.count()).select_from(Ticket)) == 20
        assert db.session.scalar(select(func.count()).select_from(Article)) == 3
        # assigned round-robin within the support team, with SLA due times
        assignees = set(db.session.scalars(select(Ticket.assignee_id)).all())
        assert len(assignees - {None}) == 2
        assert db.session.scalar(select(func.count()).select_from(Ticket).where(
            Ticket.resolution_due_at.is_(None))) == 0
        assert db.session.scalar(select(func.count()).select_from(Survey)) > 0
    client = app.test_client()
    headers = api_login(client, "lee.lead", "pw-123456")
    assert client.get("/api/v1/service_report/volume", headers=headers).get_json()["total"] == 20

"""Merging contacts and accounts (the core's trellis.merge, through the plugin's API):
every related record of every plugin re-pointed in one transaction, plugins'
own conflicts resolved by their hook, a dry run, the audit log, and undo."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Optional

import pytest
from sqlalchemy import ForeignKey, Integer, String, func, select
from sqlalchemy.orm import Mapped, mapped_column

from trellis import hookimpl
from trellis import merge as core_merge
from trellis.db import Model, db
from trellis.models import Account, Activity, AuditEntry, Contact, Note, Tag
from trellis.specs import Manifest

PASSWORD = "pw-123456"


class MergeTestTicket(Model):
    """A throwaway plugin's tickets: plain references to contacts."""

    __tablename__ = "mergetest_ticket"

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(100))
    contact_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("trellis_contact.id", ondelete="CASCADE"))


class MergeTestScore(Model):
    """... and a unique one-row-per-contact table, which a re-point alone would break."""

    __tablename__ = "mergetest_score"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("trellis_contact.id",
                                                       ondelete="CASCADE"), unique=True)
    points: Mapped[int] = mapped_column(Integer, default=0)


class MergeTestPlugin:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, list[int]]] = []

    @hookimpl
    def trellis_manifest(self) -> Manifest:
        return Manifest(label="Merge test plugin")

    @hookimpl
    def trellis_before_merge(self, session: Any, model: str, winner_id: int,
                             loser_ids: list[int]) -> None:
        """Keep the best score on the winner, drop the losers' rows (journaled)."""
        self.calls.append((model, winner_id, loser_ids))
        if model != "contact":
            return
        table = MergeTestScore.__table__
        best = session.scalar(select(func.max(table.c.points)).where(
            table.c.contact_id.in_([winner_id, *loser_ids])))
        if best is None:
            return
        if session.scalar(select(table.c.id).where(table.c.contact_id == winner_id)):
            core_merge.update_rows(session, table, table.c.points,
                                   table.c.contact_id == winner_id, best)
            core_merge.drop_rows(session, table, table.c.contact_id.in_(loser_ids))


@pytest.fixture
def merge_site(request, trellis_app_factory, api_login, event_capture):
    """SQLite, or PostgreSQL where a test asks for it (indirect parametrisation)."""
    kind = getattr(request, "param", "sqlite")
    database_url = request.getfixturevalue("postgres_url") if kind == "postgres" else None
    plugin = MergeTestPlugin()
    app = trellis_app_factory(plugins=["sales", "integrations"], database_url=database_url,
                              extra_plugins=[("mergetest", plugin),
                                             ("capture", event_capture)])
    with app.app_context():
        Model.metadata.create_all(db.engine, tables=[MergeTestTicket.__table__, MergeTestScore.__table__])
    client = app.test_client()
    return app, client, api_login(client), plugin, event_capture


def _people(app):
    from trellis_sales.models import Deal, Lead, Order, Task

    with app.app_context():
        vip, new = Tag(name="vip"), Tag(name="new")
        account = Account(name="Northwind", domain="northwind.example")
        winner = Contact(first_name="Nina", last_name="North", email="nina@northwind.example",
                         account=account, tags=[vip])
        loser = Contact(first_name="Nina", last_name="North", phone="+49 30 1234567",
                        email="nina+news@northwind.example", title="CTO", tags=[vip, new])
        db.session.add_all([winner, loser])
        db.session.flush()
        db.session.add_all([
            Deal(name="Renewal", contact_id=loser.id, amount=Decimal("1000")),
            Order(contact_id=loser.id, total=Decimal("50")),
            Task(subject="Call Nina", contact_id=loser.id),
            Lead(last_name="North", email="nina+news@northwind.example",
                 converted_contact_id=loser.id, status="converted"),
            Activity(type="call", subject="Intro call", contact_id=loser.id),
            Note(body="Prefers e-mail", contact_id=loser.id),
            MergeTestTicket(subject="Cannot log in", contact_id=loser.id),
            MergeTestTicket(subject="Invoice", contact_id=loser.id),
            MergeTestScore(contact_id=winner.id, points=10), MergeTestScore(contact_id=loser.id, points=30),
        ])
        db.session.commit()
        # the winner agreed to marketing e-mail; later the other record unsubscribed
        from datetime import timedelta

        from trellis import consent
        from trellis.db import utcnow
        from trellis.models import ConsentState

        consent.record(db.session, winner.id, "email", "marketing", True)
        db.session.commit()
        consent.record(db.session, loser.id, "email", "marketing", False)
        db.session.commit()
        db.session.execute(ConsentState.__table__.update().where(
            ConsentState.contact_id == winner.id).values(since=utcnow() - timedelta(days=3)))
        db.session.commit()
        return winner.id, loser.id


def pointing_at(app, contact_id):
    """Every row of every table whose foreign key references this contact."""
    with app.app_context():
        out = {}
        for table, column in core_merge.references(db.session, Contact.__table__):
            n = db.session.scalar(select(func.count()).select_from(table)
                                  .where(column == contact_id))
            if n:
                out[f"{table.name}.{column.name}"] = n
        return out




@pytest.mark.parametrize("merge_site", ["sqlite", pytest.param(
    "postgres", marks=pytest.mark.postgres)], indirect=True)
def test_merge_leaves_nothing_pointing_at_the_loser_and_undo_restores(merge_site):
    """Acceptance: a merge of two contacts with deals, tickets and activities leaves
    nothing pointing at the loser."""
    app, client, headers, plugin, capture = merge_site
    winner, loser = _people(app)
    before = pointing_at(app, loser)
    assert before == {"mergetest_score.contact_id": 1, "mergetest_ticket.contact_id": 2,
                      "sales_deal.contact_id": 1, "sales_lead.converted_contact_id": 1,
                      "sales_order.contact_id": 1, "sales_task.contact_id": 1,
                      "trellis_activity.contact_id": 3,  # the call, and the deal and order on the timeline
                      "trellis_consent.contact_id": 1, "trellis_consent_state.contact_id": 1,
                      "trellis_contact_tag.contact_id": 2,
                      "trellis_note.contact_id": 1}
    body = {"model": "contact", "winner_id": winner, "loser_ids": [loser],
            "values": {"phone": "+49 30 1234567", "title": "CTO"}}

    dry = client.post("/api/v1/merge/", headers=headers, json={**body, "dry_run": True})
    assert dry.status_code == 200, dry.get_json()
    plan = dry.get_json()
    assert plan["merge_id"] is None and plan["dry_run"] is True
    assert {f"{r['table']}.{r['column']}": r["rows"] for r in plan["references"]} == before
    assert [(c["table"], c["rows"]) for c in plan["conflicts"]] == [
        ("mergetest_score", 1), ("trellis_consent_state", 1), ("trellis_contact_tag", 1)]
    assert plan["fields"] == {"phone": {"old": None, "new": "+49 30 1234567"},
                              "title": {"old": None, "new": "CTO"}}
    assert pointing_at(app, loser) == before  # the dry run wrote nothing

    capture.events.clear()
    merged = client.post("/api/v1/merge/", headers=headers, json=body)
    assert merged.status_code == 200, merged.get_json()
    merge_id = merged.get_json()["merge_id"]
    assert pointing_at(app, loser) == {}
    assert plugin.calls == [("contact", winner, [loser])]
    with app.app_context():
        from trellis_sales.models import Deal, Task

        assert db.session.get(Contact, loser) is None
        survivor = db.session.get(Contact, winner)
        assert (survivor.phone, survivor.title, survivor.email) == (
            "+49 30 1234567", "CTO", "nina@northwind.example")
        assert sorted(t.name for t in survivor.tags) == ["new", "vip"]
        assert db.session.scalar(select(Deal.contact_id)) == winner
        assert db.session.scalar(select(Task.contact_id)) == winner
        assert db.session.scalars(select(MergeTestScore.points)).all() == [30]
        from trellis.models import ConsentState

        # the later withdrawal stands: the merged contact is unsubscribed
        assert db.session.execute(select(ConsentState.contact_id, ConsentState.granted)).all() \
            == [(winner, False)]
        assert db.session.scalar(select(func.count()).select_from(MergeTestTicket)
                                 .where(MergeTestTicket.contact_id == winner)) == 2
        audit = [(a.action, a.record_id) for a in db.session.scalars(
            select(AuditEntry).where(AuditEntry.action.in_(("merged", "deleted")))
            .order_by(AuditEntry.id))]
        assert audit == [("merged", str(winner)), ("deleted", str(loser))]
    merged_events = [e for e in capture.events if e.name == "contact.merged"]
    assert [(e.data["winner_id"], e.data["loser_ids"]) for e in merged_events] == [
        (winner, [loser])]

    undone = client.post(f"/api/v1/merge/{merge_id}/undo", headers=headers)
    assert undone.status_code == 200, undone.get_json()
    assert pointing_at(app, loser) == before
    with app.app_context():
        back = db.session.get(Contact, loser)
        assert (back.email, back.phone, back.title) == ("nina+news@northwind.example",
                                                        "+49 30 1234567", "CTO")
        assert sorted(t.name for t in back.tags) == ["new", "vip"]
        survivor = db.session.get(Contact, winner)
        assert (survivor.phone, survivor.title) == (None, None)
        assert [t.name for t in survivor.tags] == ["vip"]
        assert sorted(db.session.execute(select(MergeTestScore.contact_id, MergeTestScore.points)).all()) == \
            sorted([(winner, 10), (loser, 30)])
        assert sorted(db.session.execute(select(ConsentState.contact_id,
                                                ConsentState.granted)).all()) == \
            sorted([(winner, True), (loser, False)])
        assert db.session.scalar(select(AuditEntry.action).where(
            AuditEntry.action == "unmerged")) == "unmerged"
    again = client.post(f"/api/v1/merge/{merge_id}/undo", headers=headers)
    assert again.status_code == 400
    assert again.get_json()["message"] == {"merge_id": ["This merge has been undone already."]}


def test_bad_merges_are_refused_with_field_errors(merge_site, make_user, api_login):
    app, client, headers, _, _ = merge_site
    winner, loser = _people(app)
    cases = [({"model": "contact", "winner_id": winner, "loser_ids": [winner]},
              {"loser_ids": ["Name at least one record to merge into the winner."]}),
             ({"model": "contact", "winner_id": winner, "loser_ids": [424242]},
              {"loser_ids": ["No contact with id 424242."]}),
             ({"model": "deal", "winner_id": 1, "loser_ids": [2]},
              {"model": ["Must be one of: contact, account."]}),
             ({"model": "contact", "winner_id": winner, "loser_ids": [loser],
               "values": {"email": "nope"}},
              {"values": {"email": ["Not a valid e-mail address."]}})]
    for body, message in cases:
        answer = client.post("/api/v1/merge/", headers=headers, json=body)
        assert answer.status_code == 400, body
        assert answer.get_json()["message"] == message
    # a Data Steward restricted to their own records cannot merge others' contacts
    make_user(app, "steward", ["Data Steward"])
    with app.app_context():
        from trellis.models import RoleScope

        role = app.appbuilder.sm.find_role("Data Steward")
        db.session.add(RoleScope(role_id=role.id, scope="own"))
        db.session.commit()
    steward = api_login(client, "steward", PASSWORD)
    answer = client.post("/api/v1/merge/", headers=steward,
                         json={"model": "contact", "winner_id": winner, "loser_ids": [loser]})
    assert answer.status_code == 400
    assert answer.get_json()["message"] == {"loser_ids": [f"No contact with id {winner}.",
                                                          f"No contact with id {loser}."]}
    assert pointing_at(app, loser) != {}


def test_accounts_merge_too(merge_site):
    from trellis_sales.models import Deal

    app, client, headers, _, _ = merge_site
    with app.app_context():
        a = Account(name="Acme", domain="acme.example")
        b = Account(name="ACME Inc.", domain="www.acme.example", industry="Tools")
        db.session.add_all([a, b])
        db.session.flush()
        db.session.add_all([Contact(first_name="Al", last_name="A", account_id=b.id),
                            Deal(name="Anvils", account_id=b.id)])
        db.session.commit()
        a_id, b_id = a.id, b.id
    answer = client.post("/api/v1/merge/", headers=headers, json={
        "model": "account", "winner_id": a_id, "loser_ids": [b_id],
        "values": {"industry": "Tools"}})
    assert answer.status_code == 200, answer.get_json()
    with app.app_context():
        assert db.session.get(Account, b_id) is None
        assert db.session.get(Account, a_id).industry == "Tools"
        assert db.session.scalar(select(Contact.account_id).where(Contact.first_name == "Al")) \
            == a_id
        assert db.session.scalar(select(Deal.account_id).where(Deal.name == "Anvils")) == a_id

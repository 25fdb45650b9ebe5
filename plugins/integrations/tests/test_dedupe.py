"""Duplicate detection (reasons and scores, computed in SQL groups) and the review
screen: compare, choose field values, merge, undo, dismiss."""

from __future__ import annotations

import re

from sqlalchemy import select

from trellis.db import db
from trellis.jobs import execute
from trellis.models import Account, Activity, Contact
from trellis.testing import csrf_token

from trellis_integrations import dedupe
from trellis_integrations.models import DuplicateCandidate


def test_candidates_with_reasons_and_scores(trellis_app_factory, api_login, web_login):
    app = trellis_app_factory(plugins=["integrations"])
    with app.app_context():
        acme = Account(name="Acme Inc.", domain="acme.example")
        acme2 = Account(name="ACME", domain="www.acme.example")
        other = Account(name="Globex", domain="globex.example")
        db.session.add_all([acme, acme2, other])
        db.session.flush()
        people = {
            "ann": Contact(first_name="Ann", last_name="Lee", email="Ann.Lee+news@Mail.example",
                           account_id=acme.id),
            "ann2": Contact(first_name="Anne", last_name="Lee", email="ann.lee@mail.example",
                            phone="+1 202 555 0100", account_id=acme.id),
            "phone": Contact(first_name="Zed", last_name="Other", phone="+1 (202) 555-0100"),
            "bob": Contact(first_name="Bob", last_name="Lee", account_id=acme.id),
            "solo": Contact(first_name="Cy", last_name="Solo", email="cy@example.com"),
        }
        db.session.add_all(people.values())
        db.session.add(Activity(type="call", subject="Hi", contact=people["ann2"]))
        db.session.commit()
        ids = {k: v.id for k, v in people.items()}
        acme_ids = (acme.id, acme2.id)
        assert execute("integrations.find_duplicates", {}) == {"contact": 2, "account": 1}
        found = {(c.a_id, c.b_id): (c.score, c.reasons) for c in db.session.scalars(
            select(DuplicateCandidate).where(DuplicateCandidate.model == "contact"))}
        # same e-mail ignoring +tag and case (0.9) and similar name at the same company
        # (0.8 × 0.857 for Ann/Anne): 1 - 0.1 × (1 - 0.686) = 0.969
        assert found[(ids["ann"], ids["ann2"])] == (
            0.969, ["same e-mail", "similar name at the same company"])
        assert found[(ids["ann2"], ids["phone"])] == (0.7, ["same phone"])
        assert (ids["ann"], ids["bob"]) not in found  # same company and surname, other name
        accounts = db.session.scalars(select(DuplicateCandidate).where(
            DuplicateCandidate.model == "account")).all()
        assert [(c.a_id, c.b_id, c.reasons) for c in accounts] == [
            (*acme_ids, ["same domain", "similar name"])]
        # running again adds nothing; a dismissed pair stays dismissed
        assert execute("integrations.find_duplicates", {}) == {"contact": 0, "account": 0}
    client = app.test_client()
    headers = api_login(client)
    listed = client.get("/api/v1/merge/candidates?model=contact", headers=headers).get_json()
    assert [(c["a"]["id"], c["b"]["id"]) for c in listed["result"]] == [
        (ids["ann"], ids["ann2"]), (ids["ann2"], ids["phone"])]
    phone_pair = listed["result"][1]["id"]
    assert client.post(f"/api/v1/merge/candidates/{phone_pair}/dismiss",
                       headers=headers).status_code == 200
    with app.app_context():
        execute("integrations.find_duplicates", {})
        assert db.session.get(DuplicateCandidate, phone_pair).status == "dismissed"

    # the review screen: Ann's record survives, with Anne's phone; the call moves
    web_login(client)
    pair = listed["result"][0]["id"]
    page = client.get(f"/integrations/duplicates/{pair}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "same e-mail, similar name at the same company" in html
    assert "trellis_activity (contact_id)" in html  # the dry run's preview
    # the loser's phone is pre-selected because the survivor has none
    assert re.search(rf'name="take-phone" value="{ids["ann2"]}"\s+checked', html)
    merged = client.post(f"/integrations/duplicates/{pair}/merge", data={
        "csrf_token": csrf_token(html), "winner_id": ids["ann"],
        "take-first_name": ids["ann"], "take-email": ids["ann"], "take-phone": ids["ann2"]})
    assert merged.status_code == 200, merged.get_data(as_text=True)[:300]
    with app.app_context():
        assert db.session.get(Contact, ids["ann2"]) is None
        ann = db.session.get(Contact, ids["ann"])
        assert (ann.first_name, ann.phone) == ("Ann", "+1 202 555 0100")
        assert db.session.scalar(select(Activity.contact_id)) == ids["ann"]
        assert db.session.get(DuplicateCandidate, pair).status == "merged"
    undo = re.search(r'action="(/integrations/duplicates/merges/\d+/undo)"',
                     merged.get_data(as_text=True)).group(1)
    client.post(undo, data={"csrf_token": csrf_token(merged.get_data(as_text=True))})
    with app.app_context():
        assert db.session.get(Contact, ids["ann2"]).phone == "+1 202 555 0100"
        assert db.session.get(Contact, ids["ann"]).phone is None
        assert db.session.scalar(select(Activity.contact_id)) == ids["ann2"]
        # undoing the merge reopened the candidate the merge had settled
        assert db.session.get(DuplicateCandidate, pair).status == "open"


def test_email_base_and_similarity():
    assert dedupe.similarity("J.", "John") == 0.8
    assert dedupe.similarity("Jon", "John") > 0.85
    assert dedupe.similarity("Ann", "Bob") == 0.0
    assert dedupe.score({"a": 0.9, "b": 0.7}) == 0.97


import pytest  # noqa: E402


@pytest.mark.postgres
def test_candidates_on_postgres(trellis_app_factory, postgres_url):
    """The SQL keys (e-mail without +tag, phone digits) on PostgreSQL."""
    app = trellis_app_factory(plugins=["integrations"], database_url=postgres_url)
    with app.app_context():
        a = Contact(first_name="Ann", last_name="Lee", email="Ann+X@Mail.example")
        b = Contact(first_name="Zoe", last_name="Ray", email="ann@mail.example",
                    phone="+49 30 1234567")
        c = Contact(first_name="Max", last_name="Mo", phone="+49-30-1234567")
        db.session.add_all([a, b, c])
        db.session.commit()
        assert execute("integrations.find_duplicates", {"model": "contact"}) == {"contact": 2}
        found = {(x.a_id, x.b_id): x.reasons for x in db.session.scalars(
            select(DuplicateCandidate))}
        assert found == {(a.id, b.id): ["same e-mail"], (b.id, c.id): ["same phone"]}

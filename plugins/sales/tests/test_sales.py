"""The sales plugin through its REST API, as reps, a manager and an admin."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from trellis.db import db
from trellis.models import Account, Activity, Contact, Team


@pytest.fixture
def sales(trellis_app_factory, make_user, api_login, event_capture):
    app = trellis_app_factory(plugins=["sales"], extra_plugins=[("capture", event_capture)])
    ids = {"rep": make_user(app, "rep", ["Sales Rep"]),
           "rep2": make_user(app, "rep2", ["Sales Rep"]),
           "boss": make_user(app, "boss", ["Sales Manager"])}
    with app.app_context():
        sm = app.appbuilder.sm
        team = Team(name="EMEA", manager_id=ids["boss"],
                    members=[sm.get_user_by_id(ids["rep"]), sm.get_user_by_id(ids["rep2"])])
        db.session.add(team)
        db.session.add(Account(name="Northwind", domain="northwind.example"))
        db.session.add(Contact(first_name="Nina", last_name="North",
                               email="Nina.North@northwind.example"))
        db.session.commit()
    client = app.test_client()
    headers = {name: api_login(client, name, "pw-123456") for name in ids}
    headers["admin"] = api_login(client)
    return app, client, headers, ids, event_capture


def stages(client, headers):
    rows = client.get("/api/v1/stage/?q=(order_column:position,order_direction:asc)",
                      headers=headers).get_json()["result"]
    return {r["name"]: r for r in rows}


def test_enabling_sales_creates_a_default_pipeline(sales):
    app, client, headers, ids, _ = sales
    pipelines = client.get("/api/v1/pipeline/", headers=headers["rep"]).get_json()["result"]
    assert [(p["name"], p["is_default"]) for p in pipelines] == [("New business", True)]
    names = list(stages(client, headers["rep"]))
    assert names == ["Qualification", "Needs analysis", "Proposal", "Negotiation", "Won", "Lost"]


def test_lead_to_won_deal_story(sales):
    app, client, headers, ids, capture = sales
    rep = headers["rep"]
    lead = client.post("/api/v1/lead/", headers=rep, json={
        "first_name": "Nina", "last_name": "North", "email": "nina.north@northwind.example",
        "company": "Northwind", "source": "web_form"})
    assert lead.status_code == 201, lead.get_json()
    lead_id = lead.get_json()["id"]
    assert lead.get_json()["result"]["owner_id"] == ids["rep"]
    assert client.put(f"/api/v1/lead/{lead_id}", headers=rep,
                      json={"status": "qualified"}).status_code == 200
    converted = client.post(f"/api/v1/lead/{lead_id}/convert", headers=rep,
                            json={"deal_name": "Northwind rollout", "amount": 12000})
    assert converted.status_code == 200, converted.get_json()
    body = converted.get_json()
    # the existing contact (e-mail matched ignoring case) and account (domain) are reused
    assert body["contact_created"] is False and body["account_created"] is False
    with app.app_context():
        assert db.session.query(Contact).count() == 1
        assert db.session.query(Account).count() == 1
    again = client.post(f"/api/v1/lead/{lead_id}/convert", headers=rep, json={})
    assert again.status_code == 400
    assert again.get_json()["message"] == {"status": ["This lead is already converted."]}

    deal_id = body["deal_id"]
    deal = client.get(f"/api/v1/deal/{deal_id}", headers=rep).get_json()["result"]
    by_name = stages(client, rep)
    assert deal["stage_id"] == by_name["Qualification"]["id"] and deal["probability"] == 10
    for stage in ("Needs analysis", "Proposal", "Negotiation"):
        response = client.put(f"/api/v1/deal/{deal_id}", headers=rep,
                              json={"stage_id": by_name[stage]["id"]})
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["result"]["probability"] == by_name[stage]["probability"]
    won = client.put(f"/api/v1/deal/{deal_id}", headers=rep,
                     json={"stage_id": by_name["Won"]["id"]})
    assert won.status_code == 200
    assert won.get_json()["result"]["probability"] == 100

    history = client.get(
        f"/api/v1/deal_stage_history/?q=(filters:!((col:deal_id,opr:eq,value:{deal_id})),"
        "order_column:id,order_direction:asc)", headers=rep).get_json()["result"]
    assert [h["stage_id"] for h in history] == [by_name[s]["id"] for s in (
        "Qualification", "Needs analysis", "Proposal", "Negotiation", "Won")]
    assert all(h["left_at"] for h in history[:-1]) and history[-1]["left_at"] is None

    orders = client.get("/api/v1/order/", headers=rep).get_json()["result"]
    assert len(orders) == 1
    assert orders[0]["deal_id"] == deal_id and Decimal(str(orders[0]["total"])) == 12000
    assert orders[0]["owner_id"] == ids["rep"]

    timeline = client.get(
        f"/api/v1/activity/?q=(filters:!((col:contact_id,opr:eq,value:{body['contact_id']})),"
        "order_column:id,order_direction:asc)", headers=rep).get_json()["result"]
    assert [a["type"] for a in timeline] == [
        "deal.created", "lead.converted", "deal.stage_changed", "deal.stage_changed",
        "deal.stage_changed", "deal.stage_changed", "order.placed"]
    assert timeline[-2]["subject"] == "Deal Northwind rollout: Negotiation → Won"
    named = [n for n in capture.names() if n.split(".")[1] not in (
        "created", "updated", "deleted")]
    assert named == ["lead.qualified", "lead.converted", "deal.stage_changed",
                     "deal.stage_changed", "deal.stage_changed", "deal.stage_changed",
                     "deal.won", "order.placed"]


def test_reps_see_only_their_deals_and_the_manager_sees_the_team(sales):
    app, client, headers, ids, _ = sales
    mine = client.post("/api/v1/deal/", headers=headers["rep"], json={"name": "Mine"})
    assert mine.status_code == 201, mine.get_json()
    theirs = client.post("/api/v1/deal/", headers=headers["rep2"], json={"name": "Theirs"})
    mine_id, theirs_id = mine.get_json()["id"], theirs.get_json()["id"]
    assert client.get(f"/api/v1/deal/{theirs_id}", headers=headers["rep"]).status_code == 404
    assert client.put(f"/api/v1/deal/{theirs_id}", headers=headers["rep"],
                      json={"amount": 1}).status_code == 404
    listed = client.get("/api/v1/deal/", headers=headers["rep"]).get_json()["result"]
    assert [d["name"] for d in listed] == ["Mine"]
    listed = client.get("/api/v1/deal/?q=(order_column:id,order_direction:asc)",
                        headers=headers["boss"]).get_json()["result"]
    assert [d["name"] for d in listed] == ["Mine", "Theirs"]
    assert client.get(f"/api/v1/deal/{mine_id}", headers=headers["boss"]).status_code == 200


def test_bad_deal_input_gets_field_errors_and_nothing_is_written(sales):
    app, client, headers, ids, _ = sales
    rep = headers["rep"]
    with app.app_context():
        from trellis_sales.models import Pipeline, Stage

        other = Pipeline(name="Renewals")
        other.stages = [Stage(name="Up for renewal", position=0, probability=60)]
        db.session.add(other)
        db.session.commit()
        foreign_stage = other.stages[0].id
    response = client.post("/api/v1/deal/", headers=rep, json={
        "name": "Bad", "amount": -5, "probability": 140, "pipeline_id": 1,
        "stage_id": foreign_stage, "currency": "eur"})
    assert response.status_code == 400
    assert response.get_json()["message"] == {
        "amount": ["Must not be negative."], "probability": ["Must be between 0 and 100."],
        "currency": ["Use an ISO 4217 code, e.g. EUR."],
        "stage_id": ["Stage 'Up for renewal' belongs to pipeline 'Renewals', not 'New business'."]}
    response = client.post("/api/v1/deal/", headers=rep, json={
        "name": "Bad date", "expected_close": "next tuesday"})
    assert response.status_code == 400
    assert response.get_json()["message"] == {"expected_close": ["Not a valid date."]}
    response = client.post("/api/v1/deal/", headers=rep, json={"name": "X", "owner_id": 999})
    assert response.get_json()["message"] == {"owner_id": ["No user with id 999."]}
    deal = client.post("/api/v1/deal/", headers=rep, json={"name": "Good"}).get_json()["id"]
    lost = stages(client, rep)["Lost"]["id"]
    response = client.put(f"/api/v1/deal/{deal}", headers=rep, json={"stage_id": lost})
    assert response.status_code == 400
    assert response.get_json()["message"] == {
        "lost_reason": ["Required when a deal is marked lost."]}
    with app.app_context():
        from trellis_sales.models import Deal, DealStageHistory

        assert [d.name for d in db.session.scalars(select(Deal))] == ["Good"]
        assert db.session.query(DealStageHistory).count() == 1  # the failed move left nothing
    response = client.put(f"/api/v1/deal/{deal}", headers=rep,
                          json={"stage_id": lost, "lost_reason": "Price"})
    assert response.status_code == 200 and response.get_json()["result"]["probability"] == 0


def test_an_overridden_probability_is_never_silently_recomputed(sales):
    app, client, headers, ids, _ = sales
    rep = headers["rep"]
    by_name = stages(client, rep)
    deal = client.post("/api/v1/deal/", headers=rep, json={"name": "P", "probability": 33})
    deal_id = deal.get_json()["id"]
    assert deal.get_json()["result"]["probability"] == 33
    def stored():
        return client.get(f"/api/v1/deal/{deal_id}", headers=rep).get_json()["result"]

    client.put(f"/api/v1/deal/{deal_id}", headers=rep,
               json={"stage_id": by_name["Proposal"]["id"]})
    assert (stored()["probability"], stored()["probability_overridden"]) == (33, True)
    client.put(f"/api/v1/deal/{deal_id}", headers=rep, json={"probability": 50})
    assert (stored()["probability"], stored()["probability_overridden"]) == (50, False)
    moved = client.put(f"/api/v1/deal/{deal_id}", headers=rep,
                       json={"stage_id": by_name["Negotiation"]["id"]})
    assert moved.get_json()["result"]["probability"] == 75


def test_order_lines_compute_totals(sales):
    app, client, headers, ids, _ = sales
    admin = headers["admin"]
    product = client.post("/api/v1/product/", headers=admin, json={
        "sku": "WID-1", "name": "Widget", "price": "19.90", "currency": "EUR"}).get_json()["id"]
    with app.app_context():
        contact = db.session.scalars(select(Contact.id)).first()
    order = client.post("/api/v1/order/", headers=admin, json={"contact_id": contact})
    assert order.status_code == 201, order.get_json()
    order_id = order.get_json()["id"]
    line = client.post("/api/v1/order_line/", headers=admin, json={
        "order_id": order_id, "product_id": product, "quantity": 3})
    assert line.status_code == 201, line.get_json()
    stored = client.get(f"/api/v1/order_line/{line.get_json()['id']}", headers=admin)
    assert Decimal(str(stored.get_json()["result"]["total"])) == Decimal("59.70")
    client.post("/api/v1/order_line/", headers=admin, json={
        "order_id": order_id, "product_id": product, "quantity": 1, "unit_price": "10"})
    total = client.get(f"/api/v1/order/{order_id}", headers=admin).get_json()["result"]["total"]
    assert Decimal(str(total)) == Decimal("69.70")
    bad = client.post("/api/v1/order_line/", headers=admin, json={
        "order_id": order_id, "product_id": product, "quantity": 0})
    assert bad.status_code == 400 and bad.get_json()["message"] == {
        "quantity": ["Must be at least 1."]}
    bad = client.post("/api/v1/order/", headers=admin, json={"currency": "EUR"})
    assert bad.get_json()["message"] == {"contact_id": ["An order needs a contact or an account."]}


def test_conversion_creates_what_is_missing_and_ignores_free_mail_domains(sales):
    app, client, headers, ids, _ = sales
    rep = headers["rep"]
    lead = client.post("/api/v1/lead/", headers=rep, json={
        "last_name": "Solo", "first_name": "Sam", "email": "sam.solo@gmail.com",
        "company": "Solo Consulting"}).get_json()["id"]
    body = client.post(f"/api/v1/lead/{lead}/convert", headers=rep,
                       json={"create_deal": False}).get_json()
    assert body["contact_created"] and body["account_created"] and body["deal_id"] is None
    with app.app_context():
        account = db.session.get(Account, body["account_id"])
        assert (account.name, account.domain, account.owner_id) == (
            "Solo Consulting", None, ids["rep"])
    other = client.post("/api/v1/lead/", headers=headers["rep2"], json={"last_name": "Other"})
    assert client.post(f"/api/v1/lead/{other.get_json()['id']}/convert", headers=rep,
                       json={}).status_code == 404


def test_completing_a_task_lands_on_the_timeline(sales):
    app, client, headers, ids, capture = sales
    rep = headers["rep"]
    with app.app_context():
        nina = db.session.scalars(select(Contact.id)).first()
    refused = client.post("/api/v1/task/", headers=rep, json={
        "subject": "Call", "contact_id": nina})  # not the rep's contact
    assert refused.get_json()["message"] == {"contact_id": [f"No contact with id {nina}."]}
    contact = client.post("/api/v1/contact/", headers=rep, json={
        "first_name": "Pia", "last_name": "Own"}).get_json()["id"]
    bad = client.post("/api/v1/task/", headers=rep, json={"subject": "Call", "kind": "fax"})
    assert bad.get_json()["message"] == {
        "kind": ["Must be one of: call, email, meeting, todo."],
        "deal_id": ["Link the task to a lead, a contact or a deal."]}
    task = client.post("/api/v1/task/", headers=rep, json={
        "subject": "Call about pricing", "kind": "call", "contact_id": contact}).get_json()["id"]
    client.put(f"/api/v1/task/{task}", headers=rep, json={"done_at": "2026-11-22T10:00:00"})
    with app.app_context():
        kinds = db.session.scalars(select(Activity.type).where(
            Activity.contact_id == contact)).all()
    assert kinds == ["task.done"]
    assert "task.done" in capture.names()


def test_lines_and_history_follow_their_deals_record_rule(sales):
    app, client, headers, ids, _ = sales
    admin = headers["admin"]
    product = client.post("/api/v1/product/", headers=admin, json={
        "sku": "P-1", "name": "Thing", "price": "5"}).get_json()["id"]
    theirs = client.post("/api/v1/deal/", headers=headers["rep2"], json={"name": "Theirs"})
    theirs_id = theirs.get_json()["id"]
    line = client.post("/api/v1/deal_line/", headers=headers["rep2"],
                       json={"deal_id": theirs_id, "product_id": product, "quantity": 2})
    assert line.status_code == 201, line.get_json()
    rep = headers["rep"]
    assert client.get("/api/v1/deal_line/", headers=rep).get_json()["count"] == 0
    assert client.get(f"/api/v1/deal_line/{line.get_json()['id']}", headers=rep).status_code == 404
    assert client.delete(f"/api/v1/deal_line/{line.get_json()['id']}",
                         headers=rep).status_code == 404
    assert client.get("/api/v1/deal_stage_history/", headers=rep).get_json()["count"] == 0
    refused = client.post("/api/v1/deal_line/", headers=rep,
                          json={"deal_id": theirs_id, "product_id": product})
    assert refused.get_json()["message"] == {"deal_id": [f"No deal with id {theirs_id}."]}
    assert client.get("/api/v1/deal_line/", headers=headers["rep2"]).get_json()["count"] == 1
    assert client.get("/api/v1/deal_line/", headers=headers["boss"]).get_json()["count"] == 1


def test_conversion_never_matches_another_reps_customer(sales):
    app, client, headers, ids, _ = sales
    theirs = client.post("/api/v1/contact/", headers=headers["rep2"], json={
        "first_name": "Kept", "last_name": "Private", "email": "kept@private.example"})
    lead = client.post("/api/v1/lead/", headers=headers["rep"], json={
        "last_name": "Private", "email": "KEPT@private.example"}).get_json()["id"]
    body = client.post(f"/api/v1/lead/{lead}/convert", headers=headers["rep"],
                       json={"create_deal": False}).get_json()
    assert body["contact_created"] is True
    assert body["contact_id"] != theirs.get_json()["id"]


def test_event_data_has_the_ids_of_records_created_in_the_same_save(sales):
    app, client, headers, ids, capture = sales
    rep = headers["rep"]
    with app.app_context():
        nina = db.session.scalars(select(Contact.id)).first()
    contact = client.post("/api/v1/contact/", headers=rep, json={
        "first_name": "Won", "last_name": "Directly"}).get_json()["id"]
    won = stages(client, rep)["Won"]["id"]
    deal = client.post("/api/v1/deal/", headers=rep, json={
        "name": "Instant", "stage_id": won, "contact_id": contact, "amount": "300"})
    deal_id = deal.get_json()["id"]
    events = {e.name: e.data for e in capture.events}
    assert events["deal.won"] == {"deal_id": deal_id, "amount": "300.00", "currency": "EUR"}
    order = events["order.placed"]
    assert order["deal_id"] == deal_id and order["contact_id"] == contact
    assert order["total"] == "300.00" and isinstance(order["order_id"], int)
    assert nina != contact


def test_a_won_deal_without_a_customer_creates_no_order(sales):
    app, client, headers, ids, _ = sales
    rep = headers["rep"]
    response = client.post("/api/v1/deal/", headers=rep, json={
        "name": "Nobody's", "stage_id": stages(client, rep)["Won"]["id"]})
    assert response.status_code == 201, response.get_json()
    assert client.get("/api/v1/order/", headers=rep).get_json()["count"] == 0


def test_deleting_an_order_line_recomputes_the_total(sales):
    app, client, headers, ids, _ = sales
    admin = headers["admin"]
    product = client.post("/api/v1/product/", headers=admin, json={
        "sku": "P-2", "name": "Thing", "price": "10"}).get_json()["id"]
    with app.app_context():
        contact = db.session.scalars(select(Contact.id)).first()
    order = client.post("/api/v1/order/", headers=admin,
                        json={"contact_id": contact}).get_json()["id"]
    first = client.post("/api/v1/order_line/", headers=admin, json={
        "order_id": order, "product_id": product, "quantity": 2}).get_json()["id"]
    client.post("/api/v1/order_line/", headers=admin, json={
        "order_id": order, "product_id": product, "quantity": 1})
    assert client.delete(f"/api/v1/order_line/{first}", headers=admin).status_code == 200
    total = client.get(f"/api/v1/order/{order}", headers=admin).get_json()["result"]["total"]
    assert Decimal(str(total)) == Decimal("10.00")


def test_web_form_shows_broken_rules_under_their_fields_and_saves_nothing(sales, web_login):
    from trellis.testing import csrf_token

    app, client, headers, ids, _ = sales
    browser = app.test_client()
    web_login(browser, "rep", "pw-123456")
    form = browser.get("/dealview/add").get_data(as_text=True)
    lost = stages(client, headers["rep"])["Lost"]["id"]
    response = browser.post("/dealview/add", data={
        "csrf_token": csrf_token(form), "name": "Form deal", "pipeline": "1",
        "stage": str(lost), "amount": "10", "currency": "EUR", "probability": "0"},
        follow_redirects=True)
    page = response.get_data(as_text=True)
    # the form comes back with the input kept and the message under its field, once
    assert response.request.path == "/dealview/add"
    assert page.count("Please correct the errors below.") == 1
    assert page.count("Required when a deal is marked lost.") == 1
    assert 'value="Form deal"' in page
    assert "Database" not in page
    assert client.get("/api/v1/deal/", headers=headers["rep"]).get_json()["count"] == 0
    deal = client.post("/api/v1/deal/", headers=headers["rep"], json={"name": "Kept"})
    deal_id = deal.get_json()["id"]
    form = browser.get(f"/dealview/edit/{deal_id}").get_data(as_text=True)
    response = browser.post(f"/dealview/edit/{deal_id}", data={
        "csrf_token": csrf_token(form), "name": "Renamed", "pipeline": "1",
        "stage": str(lost), "amount": "-3", "currency": "EUR", "probability": "0"},
        follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.request.path == f"/dealview/edit/{deal_id}"
    assert "Must not be negative." in page and "Required when a deal is marked lost." in page
    assert 'value="Renamed"' in page
    stored = client.get(f"/api/v1/deal/{deal_id}", headers=headers["rep"]).get_json()["result"]
    assert stored["name"] == "Kept" and stored["stage_id"] != lost


def test_new_unowned_leads_are_assigned_round_robin_by_rules(sales, make_user, api_login):
    app, client, headers, ids, capture = sales
    admin = headers["admin"]
    dach_rep = make_user(app, "hans", ["Sales Rep"])
    with app.app_context():
        emea = db.session.scalar(select(Team.id).where(Team.name == "EMEA"))
        dach = Team(name="DACH", members=[app.appbuilder.sm.get_user_by_id(dach_rep)])
        db.session.add(dach)
        db.session.commit()
        dach = dach.id
    bad = client.post("/api/v1/assignment_rule/", headers=admin,
                      json={"field": "country", "team_id": dach})
    assert bad.status_code == 400
    assert bad.get_json()["message"] == {"value": ["Give the value to match, e.g. DE."]}
    for rule in ({"position": 1, "field": "country", "value": "de", "team_id": dach},
                 {"position": 2, "field": "any", "team_id": emea}):
        assert client.post("/api/v1/assignment_rule/", headers=admin,
                           json=rule).status_code == 201
    owners = []
    for name, country in [("A", "FR"), ("B", "GB"), ("C", "DE"), ("D", None), ("E", "DE")]:
        lead = client.post("/api/v1/lead/", headers=admin,
                           json={"last_name": name, "country": country})
        assert lead.status_code == 201, lead.get_json()
        owners.append(client.get(f"/api/v1/lead/{lead.get_json()['id']}",
                                 headers=admin).get_json()["result"]["owner_id"])
    # EMEA alternates between its two reps; German leads go to DACH
    assert owners == [ids["rep"], ids["rep2"], dach_rep, ids["rep"], dach_rep]
    assigned = [e.data for e in capture.events if e.name == "lead.assigned"]
    assert [a["owner_id"] for a in assigned] == owners
    mine = client.post("/api/v1/lead/", headers=headers["rep2"], json={"last_name": "Own"})
    assert mine.get_json()["result"]["owner_id"] == ids["rep2"]  # a rep's own lead stays


def test_deal_shows_expected_revenue_lines_total_and_days_in_each_stage(sales):
    from datetime import timedelta

    from trellis.db import utcnow
    from trellis_sales.models import DealStageHistory

    app, client, headers, ids, _ = sales
    admin = headers["admin"]
    deal_id = client.post("/api/v1/deal/", headers=admin, json={
        "name": "Sized", "amount": 1000}).get_json()["id"]
    product = client.post("/api/v1/product/", headers=admin, json={
        "sku": "P-9", "name": "Widget", "price": 120}).get_json()["id"]
    client.post("/api/v1/deal_line/", headers=admin, json={
        "deal_id": deal_id, "product_id": product, "quantity": 3})
    got = client.get(f"/api/v1/deal/{deal_id}", headers=admin).get_json()["result"]
    assert got["probability"] == 10  # Qualification
    assert (got["expected_revenue"], got["lines_total"]) == ("100.00", "360.00")
    proposal = stages(client, admin)["Proposal"]["id"]
    client.put(f"/api/v1/deal/{deal_id}", headers=admin, json={"stage_id": proposal})
    with app.app_context():
        first, second = db.session.scalars(
            select(DealStageHistory).where(DealStageHistory.deal_id == deal_id)
            .order_by(DealStageHistory.id)).all()
        first.entered_at = utcnow() - timedelta(days=3)
        first.left_at = utcnow() - timedelta(days=1)
        second.entered_at = utcnow() - timedelta(days=1, hours=12)
        db.session.commit()
    rows = client.get(f"/api/v1/deal_stage_history/?q=(filters:!((col:deal_id,opr:eq,"
                      f"value:{deal_id})),order_column:id,order_direction:asc)",
                      headers=admin).get_json()["result"]
    assert [r["days_in_stage"] for r in rows] == [2.0, 1.5]
    got = client.get(f"/api/v1/deal/{deal_id}", headers=admin).get_json()["result"]
    assert got["expected_revenue"] == "500.00"  # Proposal: 50 %

"""Issue 3's acceptance story, end to end through the REST API, as an integrator,
two Sales Reps and their Sales Manager."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from trellis.db import db
from trellis.models import Account, Contact, Team


def test_lead_to_order_story_as_reps_and_their_manager(trellis_app_factory, make_user,
                                                        api_login, event_capture):
    app = trellis_app_factory(plugins=["sales"], extra_plugins=[("capture", event_capture)])
    ids = {name: make_user(app, name, [role]) for name, role in (
        ("rep", "Sales Rep"), ("rep2", "Sales Rep"), ("boss", "Sales Manager"))}
    with app.app_context():
        sm = app.appbuilder.sm
        team = Team(name="EMEA", manager_id=ids["boss"],
                    members=[sm.get_user_by_id(ids["rep"]), sm.get_user_by_id(ids["rep2"])])
        db.session.add_all([team, Account(name="Northwind", domain="northwind.example"),
                            Contact(first_name="Nina", last_name="North",
                                    email="nina.north@northwind.example")])
        db.session.commit()
        team_id = team.id
    client = app.test_client()
    h = {name: api_login(client, name, "pw-123456") for name in ids}
    integrator = api_login(client)  # the admin's token, as a web-form integration would use

    # new leads arrive unowned and are handed out round-robin within the team
    assert client.post("/api/v1/assignment_rule/", headers=h["boss"], json={
        "field": "any", "team_id": team_id}).status_code == 201
    owners = []
    for email in ("nina.north@northwind.example", "olaf@fabrikam.example"):
        lead = client.post("/api/v1/lead/", headers=integrator, json={
            "first_name": email.split(".")[0].title(), "last_name": "Lead", "email": email,
            "company": "Northwind", "source": "web_form"})
        assert lead.status_code == 201, lead.get_json()
        owners.append(lead.get_json()["result"]["owner_id"])
    assert sorted(owners) == sorted([ids["rep"], ids["rep2"]])
    seller = "rep" if owners[0] == ids["rep"] else "rep2"
    other = "rep2" if seller == "rep" else "rep"
    mine = client.get("/api/v1/lead/", headers=h[seller]).get_json()["result"]
    assert [l["email"] for l in mine] == ["nina.north@northwind.example"]
    lead_id = client.get("/api/v1/lead/", headers=h[seller]).get_json()["ids"][0]

    # qualified and converted: the existing contact and account are reused
    assert client.put(f"/api/v1/lead/{lead_id}", headers=h[seller],
                      json={"status": "qualified"}).status_code == 200
    converted = client.post(f"/api/v1/lead/{lead_id}/convert", headers=h[seller],
                            json={"deal_name": "Northwind rollout", "amount": 12000})
    assert converted.status_code == 200, converted.get_json()
    body = converted.get_json()
    assert (body["contact_created"], body["account_created"]) == (False, False)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Contact)) == 1
    deal_id = body["deal_id"]

    # through the stages to won; the order appears
    stage = {s["name"]: s["id"] for s in client.get(
        "/api/v1/stage/?q=(page_size:100)", headers=h[seller]).get_json()["result"]}
    for name in ("Needs analysis", "Proposal", "Negotiation", "Won"):
        moved = client.put(f"/api/v1/deal/{deal_id}", headers=h[seller],
                           json={"stage_id": stage[name]})
        assert moved.status_code == 200, moved.get_json()
    orders = client.get("/api/v1/order/", headers=h[seller]).get_json()["result"]
    assert [(o["deal_id"], Decimal(str(o["total"]))) for o in orders] == [(deal_id, 12000)]

    # it counts in the forecast and the win rate of the seller and the manager, not the other rep
    def report(who, name, **params):
        query = "&".join(f"{k}={v}" for k, v in params.items())
        response = client.get(f"/api/v1/sales_report/{name}?{query}", headers=h[who])
        assert response.status_code == 200, response.get_json()
        return response.get_json()["result"]

    for who in (seller, "boss"):
        assert report(who, "forecast", group="total")[0]["won"] == "12000.00"
        assert [(r["owner"], r["won"], r["lost"], r["win_rate"])
                for r in report(who, "win_rate", group="owner")] == [
            (ids[seller], 1, 0, 100.0)]
    assert [r["won"] for r in report(other, "forecast", group="total")] in ([], ["0.00"])
    assert report(other, "win_rate", group="owner") == []

    # the customer's timeline tells the story
    timeline = client.get(
        f"/api/v1/activity/?q=(filters:!((col:contact_id,opr:eq,value:{body['contact_id']})),"
        "order_column:id,order_direction:asc)", headers=h[seller]).get_json()["result"]
    assert [a["type"] for a in timeline] == [
        "deal.created", "lead.converted", *["deal.stage_changed"] * 4, "order.placed"]

    # the other rep cannot read or change the deal; the manager can read it
    assert client.get(f"/api/v1/deal/{deal_id}", headers=h[other]).status_code == 404
    assert client.put(f"/api/v1/deal/{deal_id}", headers=h[other],
                      json={"amount": 1}).status_code == 404
    assert client.get(f"/api/v1/deal/{deal_id}", headers=h["boss"]).status_code == 200
    assert {"lead.qualified", "lead.converted", "deal.won", "order.placed"} <= set(
        event_capture.names())

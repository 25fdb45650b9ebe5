"""Tickets: the API, the status workflow, assignment, record rules, the timeline."""

from __future__ import annotations

from sqlalchemy import select

from trellis.db import db
from trellis.models import Activity
from trellis.settings import update_settings

from service_testkit import site  # noqa: F401


def _ticket(client, headers, **body):
    body = {"subject": "Printer on fire", **body}
    response = client.post("/api/v1/ticket/", headers=headers, json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def _get(client, headers, ticket_id):
    return client.get(f"/api/v1/ticket/{ticket_id}", headers=headers)


def test_ticket_defaults_and_the_status_workflow(site):
    app, client, headers, ids, events = site
    admin = headers["admin"]
    ticket_id = _ticket(client, admin, contact_id=ids["contact"])
    ticket = _get(client, admin, ticket_id).get_json()["result"]
    assert (ticket["status"], ticket["priority"], ticket["channel"]) == ("new", "normal", "api")
    assert ticket["assignee_id"] is None  # no team: the managers' queue

    # bad values answer 400 naming the field
    bad = client.post("/api/v1/ticket/", headers=admin,
                      json={"subject": "x", "priority": "whenever", "channel": "pigeon"})
    assert bad.status_code == 400
    assert set(bad.get_json()["message"]) == {"priority", "channel"}

    def put(status):
        return client.put(f"/api/v1/ticket/{ticket_id}", headers=admin, json={"status": status})

    assert put("pending").status_code == 200
    assert put("resolved").status_code == 200
    resolved = _get(client, admin, ticket_id).get_json()["result"]
    assert resolved["resolved_at"] is not None
    # resolved → pending is not in the workflow
    refused = put("pending")
    assert refused.status_code == 400
    assert list(refused.get_json()["message"]) == ["status"]
    assert "may become: open, closed" in refused.get_json()["message"]["status"][0]
    assert put("closed").status_code == 200
    assert put("open").status_code == 200  # reopen
    reopened = _get(client, admin, ticket_id).get_json()["result"]
    assert reopened["status"] == "open" and reopened["resolved_at"] is None
    names = [e.name for e in events.events if e.name.startswith("ticket.")]
    assert names.count("ticket.status_changed") == 4 and names.count("ticket.resolved") == 1


def test_round_robin_skips_away_agents_and_least_open(site):
    app, client, headers, ids, _ = site
    admin = headers["admin"]
    # the category routes to the Support team (ann, bob, cid)
    category = client.post("/api/v1/service_category/", headers=admin,
                           json={"name": "Hardware", "team_id": ids["support"]}).get_json()["id"]
    client.post("/api/v1/agent_status/", headers=admin, json={"user_id": ids["bob"], "away": True})
    got = []
    for n in range(4):
        ticket_id = _ticket(client, admin, subject=f"T{n}", category_id=category)
        result = _get(client, admin, ticket_id).get_json()["result"]
        assert result["team_id"] == ids["support"]
        got.append(result["assignee_id"])
    assert got == [ids["ann"], ids["cid"], ids["ann"], ids["cid"]]  # bob is away

    with app.app_context():
        update_settings("service", {"assignment_mode": "least_open"})
        db.session.commit()
    # ann 2 open, cid 2 open, bob back (0 open) → bob, then bob again (1 < 2), then the ties
    client.put(f"/api/v1/agent_status/{_status_id(app, ids['bob'])}", headers=admin,
               json={"away": False})
    picks = [_get(client, admin, _ticket(client, admin, team_id=ids["support"]))
             .get_json()["result"]["assignee_id"] for _ in range(3)]
    assert picks == [ids["bob"], ids["bob"], ids["ann"]]


def _status_id(app, user_id):
    from trellis_service.models import AgentStatus

    with app.app_context():
        return db.session.scalar(select(AgentStatus.id).where(AgentStatus.user_id == user_id))


def test_an_agent_sees_only_their_teams_tickets_unless_manager(site):
    app, client, headers, ids, _ = site
    admin = headers["admin"]
    support = _ticket(client, admin, subject="Support one", team_id=ids["support"])  # → ann
    support2 = _ticket(client, admin, subject="Support two", team_id=ids["support"])  # → bob
    billing = _ticket(client, admin, subject="Billing", team_id=ids["billing"])  # → dan

    def visible(user):
        return sorted(t["id"] for t in client.get("/api/v1/ticket/", headers=headers[user])
                      .get_json()["result"])

    assert visible("ann") == sorted([support, support2])  # her team's, bob's included
    assert visible("dan") == [billing]
    assert visible("boss") == sorted([support, support2, billing])  # Service Manager
    assert _get(client, headers["ann"], billing).status_code == 404
    # nor can she add to its thread
    denied = client.post("/api/v1/ticket_message/", headers=headers["ann"],
                         json={"ticket_id": billing, "body": "hi"})
    assert denied.status_code == 400 and "ticket_id" in denied.get_json()["message"]
    # nor hand her team's ticket to another team's agent
    moved = client.put(f"/api/v1/ticket/{support}", headers=headers["ann"],
                       json={"assignee_id": ids["dan"]})
    assert moved.status_code == 400 and "assignee_id" in moved.get_json()["message"]


def test_replies_notes_first_response_and_the_timeline(site):
    app, client, headers, ids, _ = site
    ticket_id = _ticket(client, headers["admin"], contact_id=ids["contact"],
                        team_id=ids["support"])
    ann = headers["ann"]
    note = client.post("/api/v1/ticket_message/", headers=ann,
                       json={"ticket_id": ticket_id, "kind": "note", "body": "Call them?"})
    assert note.status_code == 201
    assert _get(client, ann, ticket_id).get_json()["result"]["first_response_at"] is None
    reply = client.post("/api/v1/ticket_message/", headers=ann,
                        json={"ticket_id": ticket_id, "body": "We are on it."})
    assert reply.status_code == 201
    message = client.get(f"/api/v1/ticket_message/{reply.get_json()['id']}",
                         headers=ann).get_json()["result"]
    assert message["kind"] == "reply" and message["author_id"] == ids["ann"]
    assert message["message_id"].startswith("<") and message["message_id"].endswith(">")
    assert _get(client, ann, ticket_id).get_json()["result"]["first_response_at"] is not None
    call = client.post("/api/v1/ticket_message/", headers=ann,
                       json={"ticket_id": ticket_id, "kind": "call", "body": "Called, 5 min"})
    assert call.status_code == 201
    empty = client.post("/api/v1/ticket_message/", headers=ann,
                        json={"ticket_id": ticket_id, "body": "", "kind": "shout"})
    assert empty.status_code == 400 and set(empty.get_json()["message"]) == {"body", "kind"}
    assert client.put(f"/api/v1/ticket/{ticket_id}", headers=ann,
                      json={"status": "resolved"}).status_code == 200
    with app.app_context():
        timeline = db.session.execute(
            select(Activity.type, Activity.plugin, Activity.payload)
            .where(Activity.contact_id == ids["contact"]).order_by(Activity.id)).all()
    assert [t for t, _, _ in timeline] == ["ticket.opened", "ticket.note", "ticket.reply",
                                           "ticket.call", "ticket.resolved"]
    assert {p for _, p, _ in timeline} == {"service"}
    assert all(payload["ticket_id"] == ticket_id for _, _, payload in timeline)
    assert timeline[1][2]["internal"] is True and timeline[3][2]["internal"] is True


def test_ticket_pages_render(site, web_login):
    app, client, headers, ids, _ = site
    ticket_id = _ticket(client, headers["admin"], subject="Visible on the page")
    web_login(client)
    page = client.get("/ticketview/list/")
    assert page.status_code == 200 and b"Visible on the page" in page.data
    assert client.get(f"/ticketview/show/{ticket_id}").status_code == 200
    for path in ("/categoryview/list/", "/slapolicyview/list/", "/agentstatusview/list/"):
        assert client.get(path).status_code == 200, path


def test_canned_responses_are_team_scoped_and_merge_fields(site):
    app, client, headers, ids, _ = site
    boss = headers["boss"]

    def add(name, body, team=None):
        return client.post("/api/v1/canned_response/", headers=boss,
                           json={"name": name, "body": body, "team_id": team})

    hello = add("Hello", "Hello {{ contact.first_name }}, about {{ ticket.reference }} "
                         "({{ ticket.subject }}): {{ agent.name }} is on it.").get_json()["id"]
    billing = add("Refund", "Refund on its way.", ids["billing"]).get_json()["id"]
    broken = add("Broken", "{{ 1 / 0 }}").get_json()["id"]
    bad = add("Bad", "{% include 'secrets.txt' %}")
    assert bad.status_code == 400 and list(bad.get_json()["message"]) == ["body"]
    ticket_id = _ticket(client, headers["admin"], subject="Wifi", contact_id=ids["contact"],
                        team_id=ids["support"])
    ann = headers["ann"]
    listed = client.get(f"/api/v1/ticket/{ticket_id}/canned", headers=ann).get_json()["result"]
    assert [c["name"] for c in listed] == ["Broken", "Hello"]  # not Billing's
    rendered = client.get(f"/api/v1/ticket/{ticket_id}/canned/{hello}", headers=ann)
    assert rendered.get_json()["body"] == \
        f"Hello Cora, about [#{ticket_id}] (Wifi): Ann Tester is on it."
    assert client.get(f"/api/v1/ticket/{ticket_id}/canned/{billing}",
                      headers=ann).status_code == 404
    failed = client.get(f"/api/v1/ticket/{ticket_id}/canned/{broken}", headers=ann)
    assert failed.status_code == 400 and list(failed.get_json()["message"]) == ["body"]
    # agents may use canned responses, not write them
    assert client.post("/api/v1/canned_response/", headers=ann,
                       json={"name": "x", "body": "y"}).status_code == 403


def test_a_logged_call_is_the_first_response(site):
    app, client, headers, ids, _ = site
    ticket_id = _ticket(client, headers["admin"], channel="phone", contact_id=ids["contact"])
    client.post("/api/v1/ticket_message/", headers=headers["admin"],
                json={"ticket_id": ticket_id, "kind": "call", "body": "Talked it through"})
    assert _get(client, headers["admin"], ticket_id).get_json()["result"]["first_response_at"]

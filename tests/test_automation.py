"""Automation rules (issue 8): triggers, conditions on the record and its
relations, actions of several plugins, runs logged, dry runs, versions, loops.

The acceptance rule — "when a deal is won above 10,000, create an onboarding
ticket and tag the account" — runs under a real ``trellis worker`` on PostgreSQL
and Redis; the other behaviour is checked in-process (jobs run after commit).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from trellis.automation.models import AutomationFired, AutomationRule, AutomationRun
from trellis.db import db, utcnow
from trellis.models import Account, Contact, Tag, contact_tag

TRELLIS = str(Path(sys.executable).parent / "trellis")
PLUGINS = ["sales", "service"]

ACCEPTANCE_RULE = {
    "name": "Onboard big wins", "model": "deal", "enabled": True,
    "trigger": {"kind": "event", "event": "deal.won"},
    "conditions": {"and": [{"type": "record", "field": "amount", "op": "gt", "value": 10000}]},
    "actions": [
        {"action": "service.create_ticket",
         "params": {"subject": "Onboarding: {{ record.name }}", "priority": "high"}},
        {"action": "core.add_tag", "params": {"tag": "customer", "on": "account"}},
    ],
}


def _customers(app) -> dict[str, int]:
    """Two companies, each with two people."""
    with app.app_context():
        acme, globex = Account(name="Acme"), Account(name="Globex")
        people = [Contact(first_name="Ann", last_name="Acme", account=acme),
                  Contact(first_name="Al", last_name="Acme", account=acme),
                  Contact(first_name="Gil", last_name="Globex", account=globex),
                  Contact(first_name="Gus", last_name="Globex", account=globex)]
        db.session.add_all(people)
        db.session.commit()
        return {"acme": acme.id, "globex": globex.id, "ann": people[0].id,
                "al": people[1].id, "gil": people[2].id, "gus": people[3].id}


def _stages(client, headers) -> dict[str, int]:
    rows = client.get("/api/v1/stage/?q=(page_size:100)", headers=headers).get_json()["result"]
    return {r["name"]: r["id"] for r in rows}


def _deal(client, headers, name, amount, contact, account, stage, **extra) -> int:
    answer = client.post("/api/v1/deal/", headers=headers, json={
        "name": name, "amount": str(amount), "contact_id": contact, "account_id": account,
        "stage_id": stage, **extra})
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["id"]


def _tagged(app, tag: str) -> set[int]:
    with app.app_context():
        db.session.remove()
        return set(db.session.scalars(select(contact_tag.c.contact_id).join(
            Tag, Tag.id == contact_tag.c.tag_id).where(Tag.name == tag)))


def _tickets(app) -> list[tuple]:
    from trellis_service.models import Ticket

    with app.app_context():
        db.session.remove()
        return db.session.execute(select(Ticket.subject, Ticket.contact_id, Ticket.account_id,
                                         Ticket.priority).order_by(Ticket.id)).all()


def _runs(app, rule_id=None) -> list[AutomationRun]:
    with app.app_context():
        db.session.remove()
        stmt = select(AutomationRun).order_by(AutomationRun.id)
        if rule_id is not None:
            stmt = stmt.where(AutomationRun.rule_id == rule_id)
        runs = db.session.scalars(stmt).all()
        db.session.expunge_all()
        return runs


@pytest.fixture
def crm(trellis_app_factory, api_login):
    app = trellis_app_factory(plugins=PLUGINS)
    ids = _customers(app)
    client = app.test_client()
    headers = api_login(client)
    return app, client, headers, ids


def _create(client, headers, rule) -> dict:
    answer = client.post("/api/v1/automation/rules", headers=headers, json=rule)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["result"]


# ------------------------------------------------------------------ in-process


def test_a_won_deal_above_10000_opens_a_ticket_and_tags_the_account(crm):
    app, client, headers, ids = crm
    rule = _create(client, headers, ACCEPTANCE_RULE)
    stages = _stages(client, headers)
    small = _deal(client, headers, "Small", 5000, ids["gil"], ids["globex"], stages["Proposal"])
    big = _deal(client, headers, "Big", 25000, ids["ann"], ids["acme"], stages["Proposal"])
    assert _tickets(app) == [] and _runs(app) == []
    for deal in (small, big):
        assert client.put(f"/api/v1/deal/{deal}", headers=headers,
                          json={"stage_id": stages["Won"]}).status_code == 200
    assert _tickets(app) == [("Onboarding: Big", ids["ann"], ids["acme"], "high")]
    assert _tagged(app, "customer") == {ids["ann"], ids["al"]}  # Acme's people, not Globex's
    runs = _runs(app, rule["id"])
    assert [(r.trigger, r.record_ids, r.matched_ids, r.status) for r in runs] == [
        ("deal.won", [small], [], "no_match"), ("deal.won", [big], [big], "done")]
    assert [o["action"] for o in runs[1].outcome] == ["service.create_ticket", "core.add_tag"]
    assert runs[1].outcome[1]["result"] == {"tagged": 2}
    assert runs[1].version == 1 and runs[1].chain == [] and runs[1].finished_at is not None
    listed = client.get(f"/api/v1/automation/runs?rule_id={rule['id']}",
                        headers=headers).get_json()["result"]
    assert [r["status"] for r in listed] == ["done", "no_match"]


def test_dry_run_lists_the_matching_records_and_writes_nothing(crm):
    app, client, headers, ids = crm
    rule = _create(client, headers, {**ACCEPTANCE_RULE, "enabled": False})
    stages = _stages(client, headers)
    deals = [_deal(client, headers, name, amount, ids["ann"], ids["acme"], stages["Won"])
             for name, amount in (("A", 9000), ("B", 12000), ("C", 10000), ("D", 30000))]
    assert _tickets(app) == []  # the rule is off: nothing ran
    answer = client.post(f"/api/v1/automation/rules/{rule['id']}/dry_run", headers=headers,
                         json={"record_ids": deals})
    assert answer.status_code == 200, answer.get_json()
    result = answer.get_json()["result"]
    assert [(r["id"], r["label"], r["matches"]) for r in result["records"]] == [
        (deals[0], "A", False), (deals[1], "B", True), (deals[2], "C", False),
        (deals[3], "D", True)]
    assert result["matched_ids"] == [deals[1], deals[3]]
    created, tagged = result["actions"]
    assert created["ok"] and created["result"]["tickets"] == 2
    assert tagged == {"action": "core.add_tag", "ok": True, "result": {"tagged": 2}}
    # nothing written but the dry run's own log entry
    assert _tickets(app) == [] and _tagged(app, "customer") == set()
    [run] = _runs(app, rule["id"])
    assert run.dry_run and run.matched_ids == [deals[1], deals[3]] and run.trigger == "dry_run"
    # without chosen records: the first matching ones
    result = client.post(f"/api/v1/automation/rules/{rule['id']}/dry_run", headers=headers,
                         json={}).get_json()["result"]
    assert [r["id"] for r in result["records"]] == [deals[1], deals[3]]
    # an unsaved definition, with a related record's field: deals of Acme's industry
    with app.app_context():
        db.session.get(Account, ids["acme"]).industry = "Retail"
        db.session.commit()
    unsaved = {**ACCEPTANCE_RULE, "conditions": {"and": [
        {"type": "record", "field": "account.industry", "op": "eq", "value": "retail"},
        {"type": "record", "field": "amount", "op": "lt", "value": 10000}]}}
    result = client.post("/api/v1/automation/dry_run", headers=headers,
                         json={"rule": unsaved, "record_ids": deals}).get_json()["result"]
    assert result["matched_ids"] == [deals[0]]
    assert _tickets(app) == []


def test_a_self_triggering_rule_is_stopped_and_logged(crm):
    app, client, headers, ids = crm
    stages = _stages(client, headers)
    deal = _deal(client, headers, "Loop", 100, ids["ann"], ids["acme"], stages["Proposal"])
    rule = _create(client, headers, {
        "name": "Touch every updated deal", "model": "deal", "enabled": True,
        "trigger": {"kind": "record", "on": "updated"},
        "actions": [{"action": "core.update_field",
                     "params": {"field": "lost_reason", "value": "touched"}}]})
    assert client.put(f"/api/v1/deal/{deal}", headers=headers,
                      json={"name": "Loop 2"}).status_code == 200
    runs = _runs(app, rule["id"])
    assert [(r.status, r.chain) for r in runs] == [("done", []), ("loop_stopped", [rule["id"]])]
    assert "triggered itself" in runs[1].error and runs[1].outcome == []
    with app.app_context():
        from trellis_sales.models import Deal

        assert db.session.get(Deal, deal).lost_reason == "touched"


def test_two_rules_triggering_each_other_are_stopped(crm):
    app, client, headers, ids = crm
    ping = _create(client, headers, {
        "name": "Ping", "model": "contact", "enabled": True,
        "trigger": {"kind": "record", "on": "updated", "field": "title"},
        "actions": [{"action": "core.update_field", "params": {"field": "phone",
                                                                "value": "1"}}]})
    pong = _create(client, headers, {
        "name": "Pong", "model": "contact", "enabled": True,
        "trigger": {"kind": "record", "on": "updated", "field": "phone"},
        "actions": [{"action": "core.update_field", "params": {"field": "title",
                                                                "value": "Boss"}}]})
    assert client.put(f"/api/v1/contact/{ids['ann']}", headers=headers,
                      json={"title": "CEO"}).status_code == 200
    statuses = [(r.rule_id, r.status, r.chain) for r in _runs(app)]
    assert statuses == [(ping["id"], "done", []), (pong["id"], "done", [ping["id"]]),
                        (ping["id"], "loop_stopped", [ping["id"], pong["id"]])]


def test_field_changed_to_a_value_triggers_only_that_change(crm):
    app, client, headers, ids = crm
    rule = _create(client, headers, {
        "name": "VIP title", "model": "contact", "enabled": True,
        "trigger": {"kind": "record", "on": "updated", "field": "title", "to": "CEO"},
        "conditions": {"type": "field", "field": "account.name", "op": "eq", "value": "Acme"},
        "actions": [{"action": "core.add_tag", "params": {"tag": "vip"}}]})
    for person, title in (("ann", "CTO"), ("al", "CEO"), ("gil", "CEO")):
        client.put(f"/api/v1/contact/{ids[person]}", headers=headers, json={"title": title})
    assert _tagged(app, "vip") == {ids["al"]}  # Ann: other value; Gil: not Acme
    assert [r.status for r in _runs(app, rule["id"])] == ["done", "no_match"]


def test_a_deleted_record_triggers_its_rule_with_its_id(crm):
    from trellis.models import Notification

    app, client, headers, ids = crm
    rule = _create(client, headers, {
        "name": "Tell me about deletions", "model": "contact", "enabled": True,
        "trigger": {"kind": "record", "on": "deleted"},
        "actions": [{"action": "core.notify", "params": {"subject": "A contact was deleted",
                                                          "user_id": 1}}]})
    assert client.delete(f"/api/v1/contact/{ids['gus']}", headers=headers).status_code == 200
    [run] = _runs(app, rule["id"])
    assert (run.trigger, run.matched_ids, run.status) == ("contact.deleted", [ids["gus"]], "done")
    with app.app_context():
        assert db.session.scalar(select(Notification.subject)) == "A contact was deleted"


def test_versions_and_restore(crm):
    app, client, headers, ids = crm
    rule = _create(client, headers, ACCEPTANCE_RULE)
    changed = {**ACCEPTANCE_RULE, "name": "Onboard huge wins", "conditions": {
        "type": "record", "field": "amount", "op": "gt", "value": 50000}}
    answer = client.put(f"/api/v1/automation/rules/{rule['id']}", headers=headers, json=changed)
    assert answer.status_code == 200 and answer.get_json()["result"]["version"] == 2
    # saving the same definition again makes no version
    again = client.put(f"/api/v1/automation/rules/{rule['id']}", headers=headers, json=changed)
    assert again.get_json()["result"]["version"] == 2
    restored = client.post(f"/api/v1/automation/rules/{rule['id']}/restore", headers=headers,
                           json={"version": 1}).get_json()["result"]
    assert restored["version"] == 3 and restored["name"] == "Onboard big wins"
    assert restored["conditions"] == ACCEPTANCE_RULE["conditions"]
    versions = client.get(f"/api/v1/automation/rules/{rule['id']}/versions",
                          headers=headers).get_json()["result"]
    assert [(v["version"], v["note"], v["definition"]["name"]) for v in versions] == [
        (3, "restored from 1", "Onboard big wins"), (2, "updated", "Onboard huge wins"),
        (1, "created", "Onboard big wins")]
    missing = client.post(f"/api/v1/automation/rules/{rule['id']}/restore", headers=headers,
                          json={"version": 9})
    assert missing.status_code == 400 and "version" in missing.get_json()["message"]


def test_a_date_relative_rule_fires_once_per_date_value(crm):
    from trellis.automation import engine

    app, client, headers, ids = crm
    stages = _stages(client, headers)
    today = utcnow().date()
    renews = _deal(client, headers, "Renews", 100, ids["ann"], ids["acme"], stages["Proposal"],
                   expected_close=(today + timedelta(days=10)).isoformat())
    later = _deal(client, headers, "Later", 100, ids["gil"], ids["globex"], stages["Proposal"],
                  expected_close=(today + timedelta(days=40)).isoformat())
    past = _deal(client, headers, "Past", 100, ids["gus"], ids["globex"], stages["Proposal"],
                 expected_close=(today - timedelta(days=5)).isoformat())
    rule = _create(client, headers, {
        "name": "3 days before closing", "model": "deal", "enabled": True,
        "trigger": {"kind": "date", "field": "expected_close", "days": 3,
                    "direction": "before"},
        "actions": [{"action": "core.add_tag", "params": {"tag": "closing-soon"}}]})
    now = utcnow()

    def tick(days: int) -> None:
        with app.app_context():
            engine.tick(now + timedelta(days=days))

    tick(5)  # due on day 7: nothing yet
    assert _tagged(app, "closing-soon") == set()
    tick(7)
    assert _tagged(app, "closing-soon") == {ids["ann"]}
    tick(8)  # no second firing for the same date
    runs = _runs(app, rule["id"])
    assert [(r.trigger, r.record_ids) for r in runs] == [("date", [renews])]
    # a new date fires again once it is due; the old deal in the past never fired
    client.put(f"/api/v1/deal/{renews}", headers=headers,
               json={"expected_close": (today + timedelta(days=20)).isoformat()})
    tick(16)
    tick(17)
    runs = _runs(app, rule["id"])
    assert [r.record_ids for r in runs] == [[renews], [renews]]
    with app.app_context():
        fired = db.session.scalars(select(AutomationFired.record_id)).all()
    assert sorted(fired) == [renews, renews] and past not in fired and later not in fired


def test_a_schedule_rule_runs_once_per_due_time(crm):
    from trellis.automation import engine

    app, client, headers, ids = crm
    rule = _create(client, headers, {
        "name": "Hourly tag of Acme", "model": "contact", "enabled": True,
        "trigger": {"kind": "schedule", "interval": 3600},
        "conditions": {"type": "field", "field": "account.name", "op": "eq", "value": "Acme"},
        "actions": [{"action": "core.add_tag", "params": {"tag": "acme"}}]})
    now = utcnow()
    with app.app_context():
        assert engine.tick(now)["queued"] == 0  # due in an hour
        assert engine.tick(now + timedelta(minutes=61))["queued"] == 1
        assert engine.tick(now + timedelta(minutes=62))["queued"] == 0  # claimed already
    assert _tagged(app, "acme") == {ids["ann"], ids["al"]}
    [run] = _runs(app, rule["id"])
    assert run.trigger == "schedule" and run.matched_ids == sorted([ids["ann"], ids["al"]])


def test_bad_rules_answer_400_naming_the_field(crm):
    app, client, headers, ids = crm

    def errors(rule):
        answer = client.post("/api/v1/automation/rules", headers=headers, json=rule)
        assert answer.status_code == 400, answer.get_json()
        return answer.get_json()["message"]

    assert "trigger.kind" in errors({**ACCEPTANCE_RULE, "trigger": {"kind": "sometimes"}})
    assert "trigger.field" in errors({**ACCEPTANCE_RULE, "trigger": {
        "kind": "record", "on": "updated", "field": "nope"}})
    assert "trigger.cron" in errors({**ACCEPTANCE_RULE, "trigger": {
        "kind": "schedule", "cron": "every day"}})
    assert "trigger.field" in errors({**ACCEPTANCE_RULE, "trigger": {
        "kind": "date", "field": "name", "days": 3}})
    found = errors({**ACCEPTANCE_RULE, "conditions": {"and": [
        {"type": "record", "field": "amount", "op": "gt", "value": "lots"}]}})
    assert found == {"conditions.and.0.value": ["Must be a number."]}
    assert "conditions.and.0.field" in errors({**ACCEPTANCE_RULE, "conditions": {"and": [
        {"type": "record", "field": "colour", "op": "eq", "value": "red"}]}})
    found = errors({**ACCEPTANCE_RULE, "actions": [{"action": "nobody.does_this"}]})
    assert "actions.0.action" in found
    found = errors({**ACCEPTANCE_RULE, "actions": [
        {"action": "service.create_ticket", "params": {"subject": "x", "priority": "asap"}}]})
    assert list(found) == ["actions.0.params.priority"]
    assert "model" in errors({**ACCEPTANCE_RULE, "model": "spaceship"})
    assert "(root)" in errors(["not", "an", "object"])
    with app.app_context():
        assert db.session.scalar(select(func.count(AutomationRule.id))) == 0


def test_only_admins_and_granted_roles_reach_automation(crm, make_user, api_login):
    app, client, headers, ids = crm
    make_user(app, "clerk", ["CRM User"])
    clerk = api_login(client, "clerk", "pw-123456")
    assert client.get("/api/v1/automation/rules", headers=clerk).status_code == 403
    assert client.post("/api/v1/automation/rules", headers=clerk,
                       json=ACCEPTANCE_RULE).status_code == 403
    assert client.get("/api/v1/automation/rules", headers=headers).status_code == 200


def test_the_pages_show_rules_runs_and_a_dry_run(crm, web_login):
    app, client, headers, ids = crm
    rule = _create(client, headers, {**ACCEPTANCE_RULE, "enabled": False})
    stages = _stages(client, headers)
    deal = _deal(client, headers, "Huge", 99000, ids["ann"], ids["acme"], stages["Won"])
    web = app.test_client()
    web_login(web)
    page = web.get("/automation/").get_data(as_text=True)
    assert "Onboard big wins" in page
    assert "Onboard big wins" in web.get(f"/automation/builder/{rule['id']}").get_data(
        as_text=True)
    from trellis.testing import csrf_token

    form = web.get(f"/automation/dry_run/{rule['id']}").get_data(as_text=True)
    shown = web.post(f"/automation/dry_run/{rule['id']}", data={
        "record_ids": str(deal), "csrf_token": csrf_token(form)}).get_data(as_text=True)
    assert "Huge" in shown and "service.create_ticket" in shown
    assert _tickets(app) == []
    assert "dry run" in web.get("/automation/runs").get_data(as_text=True)


def test_the_plugins_actions_through_one_rule(trellis_app_factory, smtp_server, make_user,
                                             api_login):
    """marketing.send_template (a real SMTP server receives it), marketing.enrol_journey,
    scoring.recompute, core.assign and service.create_ticket on a contact."""
    from trellis import actions
    from trellis_marketing.models import JourneyEnrolment, Message
    from trellis_scoring.models import CustomerScore

    controller, collector = smtp_server
    app = trellis_app_factory(plugins=["sales", "service", "marketing", "scoring"], config={
        "TRELLIS_SMTP_HOST": controller.hostname, "TRELLIS_SMTP_PORT": controller.port})
    ids = _customers(app)
    rep = make_user(app, "rep", ["Sales Rep"])
    client = app.test_client()
    headers = api_login(client)
    with app.app_context():
        from trellis.jobs import execute
        from trellis.settings import update_settings

        db.session.get(Contact, ids["ann"]).email = "ann@acme.example"
        db.session.commit()
        update_settings("scoring", {"recompute_on_events": ""})  # only the action rescores
        execute("scoring.recompute", {})
        scored_at = db.session.scalar(select(CustomerScore.computed_at).where(
            CustomerScore.contact_id == ids["ann"])).replace(tzinfo=None)
    template = client.post("/api/v1/email_template/", headers=headers, json={
        "name": "Welcome", "subject": "Welcome aboard, {{ contact.first_name }}",
        "text_body": "Glad to have you."}).get_json()["id"]
    journey = client.post("/api/v1/journey/", headers=headers, json={
        "name": "Onboarding", "trigger_kind": "event", "trigger_event": "never.happens",
        "steps": [{"type": "wait", "hours": 24}]}).get_json()["id"]
    rule = _create(client, headers, {
        "name": "Welcome the won", "model": "deal", "enabled": True,
        "trigger": {"kind": "event", "event": "deal.won"},
        "actions": [{"action": "marketing.send_template", "params": {"template_id": template}},
                    {"action": "marketing.enrol_journey", "params": {"journey_id": journey}},
                    {"action": "scoring.recompute", "params": {}},
                    {"action": "core.assign", "params": {"owner_id": rep}}]})
    stages = _stages(client, headers)
    deal = _deal(client, headers, "Won one", 700, ids["ann"], ids["acme"], stages["Won"])
    [run] = _runs(app, rule["id"])
    assert run.status == "done", run.outcome
    assert [o["result"] for o in run.outcome] == [
        {"queued": 1, "skipped": 0}, {"enrolled": 1}, {"queued_contacts": 1}, {"assigned": 1}]
    assert [e.rcpt_tos for e in collector.envelopes] == [["ann@acme.example"]]
    assert b"Welcome aboard, Ann" in collector.envelopes[0].content
    with app.app_context():
        from trellis_sales.models import Deal

        assert db.session.scalar(select(Message.status)) == "sent"
        assert db.session.scalars(select(JourneyEnrolment.contact_id)).all() == [ids["ann"]]
        assert db.session.scalar(select(CustomerScore.computed_at).where(
            CustomerScore.contact_id == ids["ann"])).replace(tzinfo=None) > scored_at
        assert db.session.get(Deal, deal).owner_id == rep
        # a ticket for a contact: linked to the contact and the contact's company
        assert actions.run(db.session, "service.create_ticket", "contact", [ids["gil"]],
                           {"subject": "Call {{ record.first_name }}"})["tickets"] == 1
        db.session.commit()
        # bad parameters: a field error, nothing done
        with pytest.raises(actions.ActionError) as bad:
            actions.run(db.session, "marketing.send_template", "deal", [deal],
                        {"template_id": 999})
        assert "template_id" in bad.value.messages
        with pytest.raises(actions.ActionError) as bad:
            actions.run(db.session, "core.assign", "tag", [1], {"owner_id": rep})
        assert "action" in bad.value.messages
        db.session.rollback()
    assert _tickets(app)[-1] == ("Call Gil", ids["gil"], ids["globex"], "normal")


# ------------------------------------------------------------------ production path


def _wait_for(check, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.postgres
@pytest.mark.redis
def test_the_acceptance_rule_runs_under_a_real_rq_worker(trellis_app_factory, postgres_url,
                                                         redis_url, api_login, tmp_path):
    app = trellis_app_factory(plugins=PLUGINS, database_url=postgres_url, redis_url=redis_url)
    ids = _customers(app)
    client = app.test_client()
    headers = api_login(client)
    rule = _create(client, headers, ACCEPTANCE_RULE)
    loop = _create(client, headers, {
        "name": "Touch every updated deal", "model": "deal", "enabled": True,
        "trigger": {"kind": "record", "on": "updated", "field": "name"},
        "actions": [{"action": "core.update_field",
                     "params": {"field": "name", "value": "touched"}}]})
    stages = _stages(client, headers)
    big = _deal(client, headers, "Big", 25000, ids["ann"], ids["acme"], stages["Proposal"])
    small = _deal(client, headers, "Small", 500, ids["gil"], ids["globex"], stages["Proposal"])
    for deal in (big, small):
        client.put(f"/api/v1/deal/{deal}", headers=headers, json={"stage_id": stages["Won"]})
    client.put(f"/api/v1/deal/{small}", headers=headers, json={"name": "Renamed"})
    with app.app_context():
        assert app.extensions["trellis"].jobs.queue("default").count >= 3  # on Redis
    assert _runs(app) == [] and _tickets(app) == []
    cfg = app.config
    env = {**os.environ, "TRELLIS_DATABASE_URL": cfg["SQLALCHEMY_DATABASE_URI"],
           "TRELLIS_REDIS_URL": cfg["TRELLIS_REDIS_URL"],
           "TRELLIS_QUEUE_PREFIX": cfg["TRELLIS_QUEUE_PREFIX"],
           "TRELLIS_SECRET_KEY": cfg["SECRET_KEY"],
           "TRELLIS_INSTANCE_PATH": str(tmp_path / "worker"),
           "TRELLIS_PLUGINS": ",".join(PLUGINS), "TRELLIS_PLUGIN_STATE_TTL": "0"}
    worker = subprocess.Popen([TRELLIS, "worker"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for(lambda: len(_runs(app, rule["id"])) == 2
                  and len(_runs(app, loop["id"])) == 2, "the runs")
        assert _tickets(app) == [("Onboarding: Big", ids["ann"], ids["acme"], "high")]
        assert _tagged(app, "customer") == {ids["ann"], ids["al"]}
        runs = {r.record_ids[0]: r.status for r in _runs(app, rule["id"])}
        assert runs == {big: "done", small: "no_match"}
        looped = _runs(app, loop["id"])
        assert [(r.status, r.chain) for r in looped] == [("done", []),
                                                         ("loop_stopped", [loop["id"]])]
        assert worker.poll() is None
    finally:
        worker.terminate()
        try:
            output, _ = worker.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
        with app.app_context():
            app.extensions["trellis"].jobs.queue("default").empty()

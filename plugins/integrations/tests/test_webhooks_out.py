"""Webhooks out: signatures a receiver verifies, retries with back-off, dead-letter,
redelivery, secret rotation, chat templates and a plugin's connector — against a
real local HTTP server; the retry acceptance also on PostgreSQL + Redis with a
real ``trellis worker``."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import select

from trellis import hookimpl
from trellis.db import db
from trellis.jobs import execute
from trellis.specs import Manifest

from trellis_integrations import webhooks
from trellis_integrations.connectors import ConnectorSpec
from trellis_integrations.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

from integrations_testkit import allow_loopback, receiver, wait_for, worker_site  # noqa: F401


def add_endpoint(client, headers, url, **extra):
    response = client.post("/api/v1/webhook/", headers=headers,
                           json={"name": "Receiver", "url": url, **extra})
    assert response.status_code == 201, response.get_json()
    with client.application.app_context():
        endpoint = db.session.get(WebhookEndpoint, response.get_json()["id"])
        return endpoint.id, endpoint.secret


def add_contact(client, headers, email="ada@example.com"):
    response = client.post("/api/v1/contact/", headers=headers,
                           json={"first_name": "Ada", "last_name": "Lovelace", "email": email})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def deliveries(app):
    with app.app_context():
        db.session.remove()
        return [(d.event_name, d.status, d.attempts, d.last_status_code) for d in
                db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id))]


def verified(request, secret):
    return webhooks.verify(secret, request["headers"], request["body"])


@pytest.fixture
def hooked(trellis_app_factory, api_login):
    app = trellis_app_factory(plugins=["integrations"])
    allow_loopback(app, webhook_retry_base_seconds=0, webhook_max_attempts=4)
    client = app.test_client()
    return app, client, api_login(client)


def test_signature_over_timestamp_and_body():
    body = b'{"id":"e1"}'
    signature = webhooks.sign("whsec_x", 1767225600, body)
    import hashlib
    import hmac

    assert signature == hmac.new(b"whsec_x", b"1767225600." + body, hashlib.sha256).hexdigest()
    headers = {"X-Trellis-Timestamp": "1767225600",
               "X-Trellis-Signature": f"v1=deadbeef, v1={signature}"}
    assert webhooks.verify("whsec_x", headers, body, now=1767225600 + 299)
    assert not webhooks.verify("whsec_x", headers, body, now=1767225600 + 301)  # replay
    assert not webhooks.verify("whsec_y", headers, body, now=1767225600)
    assert not webhooks.verify("whsec_x", headers, body + b" ", now=1767225600)
    assert [webhooks.backoff(n, 30) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert webhooks.backoff(30, 30) == 6 * 3600


def test_deliveries_are_signed_and_verified_by_the_receiver(hooked, receiver):
    app, client, headers = hooked
    endpoint_id, secret = add_endpoint(client, headers, receiver.url,
                                       events="contact.created, deal.*")
    contact_id = add_contact(client, headers)
    client.put(f"/api/v1/contact/{contact_id}", headers=headers, json={"title": "Countess"})
    assert len(receiver.requests) == 1  # contact.updated is not subscribed
    request = receiver.requests[0]
    assert verified(request, secret)
    assert not verified(request, "whsec_someone_else")
    body = json.loads(request["body"])
    assert (body["type"], body["schema_version"], body["model"], body["record_id"]) == (
        "contact.created", 1, "contact", contact_id)
    assert body["changes"]["email"] == {"old": None, "new": "ada@example.com"}
    assert request["headers"]["X-Trellis-Event"] == "contact.created"
    assert request["headers"]["X-Trellis-Event-Id"] == body["id"]
    assert deliveries(app) == [("contact.created", "delivered", 1, 200)]


def test_failing_receiver_is_retried_then_dead_lettered_and_redelivered(hooked, receiver):
    app, client, headers = hooked
    _, secret = add_endpoint(client, headers, receiver.url, events="contact.created")
    receiver.codes = [500, 500, 500]  # then 200
    add_contact(client, headers)
    assert deliveries(app) == [("contact.created", "retrying", 1, 500)]
    with app.app_context():
        for _ in range(5):
            execute("integrations.retry_deliveries", {})
    assert deliveries(app) == [("contact.created", "delivered", 4, 200)]
    assert [r["code"] for r in receiver.requests] == [500, 500, 500, 200]
    ids = {json.loads(r["body"])["id"] for r in receiver.requests}
    assert len(ids) == 1 and all(verified(r, secret) for r in receiver.requests)
    with app.app_context():
        attempts = db.session.scalars(select(WebhookAttempt.status_code)
                                      .order_by(WebhookAttempt.id)).all()
    assert attempts == [500, 500, 500, 200]

    # a dead receiver: after webhook_max_attempts (4) the delivery is dead-lettered
    receiver.default = 503
    add_contact(client, headers, "grace@example.com")
    with app.app_context():
        for _ in range(6):
            execute("integrations.retry_deliveries", {})
    assert deliveries(app)[1] == ("contact.created", "dead", 4, 503)
    assert len(receiver.requests) == 8
    # an admin sends it again once the receiver is back
    receiver.default = 200
    dead_id = client.get("/api/v1/webhook_delivery/?q=(filters:!((col:status,opr:eq,"
                         "value:dead)))", headers=headers).get_json()["ids"][0]
    answer = client.post(f"/api/v1/webhook_delivery/{dead_id}/redeliver", headers=headers)
    assert answer.status_code == 200
    assert deliveries(app)[1] == ("contact.created", "delivered", 1, 200)
    log = client.get(f"/api/v1/webhook_delivery/{dead_id}/attempts",
                     headers=headers).get_json()["result"]
    assert [a["status_code"] for a in log] == [503, 503, 503, 503, 200]
    again = client.post(f"/api/v1/webhook_delivery/{dead_id}/redeliver", headers=headers)
    assert again.status_code == 200  # delivered ones may be sent again too
    pending = client.post("/api/v1/webhook_delivery/99999/redeliver", headers=headers)
    assert pending.status_code == 404


def test_secret_rotation_signs_with_both_during_the_grace_period(hooked, receiver):
    app, client, headers = hooked
    endpoint_id, old = add_endpoint(client, headers, receiver.url)
    rotated = client.post(f"/api/v1/webhook/{endpoint_id}/rotate_secret", headers=headers)
    new = rotated.get_json()["secret"]
    assert new != old and new.startswith("whsec_")
    add_contact(client, headers)
    request = receiver.requests[-1]
    assert verified(request, new) and verified(request, old)
    assert request["headers"]["X-Trellis-Signature"].count("v1=") == 2
    with app.app_context():  # the grace period is over: only the new secret signs
        from datetime import timedelta

        from trellis.db import utcnow

        endpoint = db.session.get(WebhookEndpoint, endpoint_id)
        endpoint.previous_secret_expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    add_contact(client, headers, "b@example.com")
    request = receiver.requests[-1]
    assert verified(request, new) and not verified(request, old)
    # the secret is never readable through the list, only to writers on the record
    assert "secret" in client.get(f"/api/v1/webhook/{endpoint_id}", headers=headers).get_json()[
        "result"]


def test_chat_bot_templates_and_a_test_message(hooked, receiver):
    app, client, headers = hooked
    add_endpoint(client, headers, receiver.url, kind="slack", events="contact.created",
                 template="New contact {{ event.changes.email.new }} (#{{ event.record_id }})")
    dingtalk_id, _ = add_endpoint(client, headers, receiver.url, kind="dingtalk",
                                  events="nothing.matches")
    contact_id = add_contact(client, headers)
    assert json.loads(receiver.requests[0]["body"]) == {
        "text": f"New contact ada@example.com (#{contact_id})"}
    test = client.post(f"/api/v1/webhook/{dingtalk_id}/test", headers=headers).get_json()
    assert test["ok"] is True and test["status"] == 200
    assert json.loads(receiver.requests[1]["body"]) == {
        "msgtype": "text", "text": {"content": "Trellis: integrations.test"}}
    # a template that does not parse, or that tries to escape the sandbox
    bad = client.post("/api/v1/webhook/", headers=headers, json={
        "name": "Broken", "url": receiver.url, "kind": "slack", "template": "{{ oops"})
    assert bad.status_code == 400 and "template" in bad.get_json()["message"]
    sneaky_id, _ = add_endpoint(client, headers, receiver.url, kind="custom",
                                events="contact.created",
                                template="{{ event.__class__.__mro__[1].__subclasses__() }}")
    add_contact(client, headers, "x@example.com")  # rendering fails safely: nothing sent
    assert not any(r["body"].startswith(b"[<class") for r in receiver.requests)


class TeamsConnector:
    """A throwaway plugin adding a destination through the connector hook."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict]] = []

    @hookimpl
    def trellis_manifest(self) -> Manifest:
        return Manifest(label="Teams connector (test)", depends=["integrations"])

    @hookimpl(optionalhook=True)
    def trellis_integrations_connectors(self) -> list[ConnectorSpec]:
        def send(endpoint, event):
            self.sent.append((endpoint.url, event))
            return 202

        def fetch(since):
            return [] if since else [{"type": "page_view", "email": "lead@example.com",
                                      "url": "https://shop.example.com/"}]

        return [ConnectorSpec("teams", "Microsoft Teams", send=send, fetch=fetch)]


def test_a_plugin_adds_a_destination_and_a_source(trellis_app_factory, api_login):
    connector = TeamsConnector()
    app = trellis_app_factory(plugins=["integrations"],
                              extra_plugins=[("teams", connector)])
    client = app.test_client()
    headers = api_login(client)
    add_endpoint(client, headers, "https://teams.example.com/hook", kind="teams",
                 events="contact.created")
    contact_id = add_contact(client, headers)
    assert [(url, e["type"], e["record_id"]) for url, e in connector.sent] == [
        ("https://teams.example.com/hook", "contact.created", contact_id)]
    assert deliveries(app) == [("contact.created", "delivered", 1, 202)]
    with app.app_context():
        assert execute("integrations.pull_sources", {}) == {"teams": 1}
        assert execute("integrations.pull_sources", {}) == {"teams": 0}
    page = client.get("/api/v1/webhook/_info", headers=headers)
    assert page.status_code == 200


@pytest.mark.postgres
@pytest.mark.redis
def test_retries_and_dead_letter_on_a_real_worker(worker_site, api_login, receiver):
    """Acceptance: deliveries to a local receiver are verified by signature; a
    receiver failing with 500 three times then succeeding gets the event exactly
    once more; a dead receiver ends in dead-letter."""
    from trellis.jobs import enqueue

    app, start_worker = worker_site
    allow_loopback(app, webhook_retry_base_seconds=0, webhook_max_attempts=3)
    client = app.test_client()
    headers = api_login(client)
    _, secret = add_endpoint(client, headers, receiver.url, events="contact.created")
    worker = start_worker()
    receiver.codes = [500, 500, 500]
    with app.app_context():
        from trellis.settings import update_settings

        update_settings("integrations", {"webhook_max_attempts": 4})
    add_contact(client, headers)

    def sweep_until(predicate, what):
        """Run the retry sweep (as the scheduler would) until ``predicate`` holds;
        one sweep at a time, so a slow worker is not buried under sweeps."""
        def check():
            with app.app_context():
                queue = app.extensions["trellis"].jobs.queue("default")
                if queue.count == 0:
                    enqueue("integrations.retry_deliveries")
            time.sleep(0.3)
            return predicate()
        return wait_for(check, 180, what)

    sweep_until(lambda: deliveries(app)[0][1] == "delivered", "the delivery")
    assert [r["code"] for r in receiver.requests] == [500, 500, 500, 200]
    successes = [r for r in receiver.requests if r["code"] == 200]
    assert len(successes) == 1 and verified(successes[0], secret)
    assert len({json.loads(r["body"])["id"] for r in receiver.requests}) == 1
    time.sleep(1.0)  # more sweeps change nothing: exactly once
    with app.app_context():
        enqueue("integrations.retry_deliveries")
    time.sleep(1.0)
    assert len(receiver.requests) == 4

    receiver.default = 500  # dead from now on
    with app.app_context():
        from trellis.settings import update_settings

        update_settings("integrations", {"webhook_max_attempts": 3})
    add_contact(client, headers, "grace@example.com")
    sweep_until(lambda: deliveries(app)[1][1] == "dead", "the dead-letter")
    assert deliveries(app)[1] == ("contact.created", "dead", 3, 500)
    assert len(receiver.requests) == 7
    assert worker.poll() is None


def test_call_webhook_action_queues_signed_deliveries(hooked, receiver):
    """The automation action sends records to an admin's endpoint after the commit."""
    from trellis import actions
    from trellis.actions import ActionError

    app, client, headers = hooked
    endpoint_id, secret = add_endpoint(client, headers, receiver.url, events="nothing.here")
    one = add_contact(client, headers, "one@example.com")
    two = add_contact(client, headers, "two@example.com")
    with app.app_context():
        assert [a.name for a in actions.available("contact")
                if a.name.startswith("integrations.")] == ["integrations.call_webhook"]
        summary = actions.run(db.session, "integrations.call_webhook", "contact", [one, two],
                              {"endpoint_id": endpoint_id, "event": "journey.reached"})
        assert summary == {"queued": 2}
        assert receiver.requests == []  # nothing leaves before the commit
        db.session.commit()
        with pytest.raises(ActionError) as refused:
            actions.run(db.session, "integrations.call_webhook", "contact", [one],
                        {"endpoint_id": 999})
        assert refused.value.messages == {"endpoint_id": ["No active webhook with id 999."]}
    bodies = [json.loads(r["body"]) for r in receiver.requests]
    assert [(b["type"], b["record_id"], b["data"]["email"]) for b in bodies] == [
        ("journey.reached", one, "one@example.com"), ("journey.reached", two, "two@example.com")]
    assert all(verified(r, secret) for r in receiver.requests)

"""Shared set-up of the service plugin's tests: a site with two support teams.

Not a conftest.py: plugin test folders are not packages, and two conftest
modules would clash.  Test modules import the fixture by name."""

from __future__ import annotations

import smtplib
import socket
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest

from trellis.db import db
from trellis.models import Contact, Team


def setup_site(app, make_user, api_login):
    """Agents ann, bob, cid in team Support (managed by boss); dan in team Billing;
    boss is a Service Manager.  Returns (client, headers by user, ids)."""
    ids = {name: make_user(app, name, ["Service Agent"]) for name in ("ann", "bob", "cid", "dan")}
    ids["boss"] = make_user(app, "boss", ["Service Manager"])
    with app.app_context():
        sm = app.appbuilder.sm
        ids["admin"] = sm.find_user(username="admin").id
        support = Team(name="Support", manager_id=ids["boss"],
                       members=[sm.get_user_by_id(ids[n]) for n in ("ann", "bob", "cid")])
        billing = Team(name="Billing", members=[sm.get_user_by_id(ids["dan"])])
        contact = Contact(first_name="Cora", last_name="Customer", email="cora@example.com")
        db.session.add_all([support, billing, contact])
        db.session.commit()
        ids.update(support=support.id, billing=billing.id, contact=contact.id)
    client = app.test_client()
    headers = {name: api_login(client, name, "pw-123456")
               for name in ("ann", "bob", "cid", "dan", "boss")}
    headers["admin"] = api_login(client)
    return client, headers, ids


@pytest.fixture
def site(trellis_app_factory, make_user, api_login, event_capture):
    app = trellis_app_factory(plugins=["service"], extra_plugins=[("capture", event_capture)])
    client, headers, ids = setup_site(app, make_user, api_login)
    return app, client, headers, ids, event_capture


SUPPORT = "support@desk.example"
SECRET = "inbound-secret-for-tests"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller

    class Collect:
        def __init__(self):
            self.envelopes = []

        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            self.envelopes.append(envelope)
            return "250 OK"

    handler = Collect()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, handler
    controller.stop()


@pytest.fixture
def desk(trellis_app_factory, make_user, api_login, smtp_server):
    controller, received = smtp_server
    app = trellis_app_factory(plugins=["service"], config={
        "TRELLIS_SMTP_HOST": controller.hostname, "TRELLIS_SMTP_PORT": controller.port,
        "TRELLIS_MAIL_FROM": SUPPORT, "TRELLIS_SERVICE_INBOUND_SECRET": SECRET})
    client, headers, ids = setup_site(app, make_user, api_login)
    relayed: set[int] = set()

    def customer_sends(sender, subject, body, message_id, in_reply_to=None, references=()):
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = sender, SUPPORT, subject
        msg["Message-ID"] = message_id
        if in_reply_to:
            msg["In-Reply-To"] = in_reply_to
        if references:
            msg["References"] = " ".join(references)
        msg.set_content(body)
        with smtplib.SMTP(controller.hostname, controller.port) as smtp:
            smtp.send_message(msg)
        return relay()[-1]

    def relay():
        """What the mail server's pipe does: post each new message for the desk."""
        answers = []
        for n, envelope in enumerate(received.envelopes):
            if n in relayed or SUPPORT not in envelope.rcpt_tos:
                continue
            relayed.add(n)
            answers.append(client.post("/service/inbound/email", data=envelope.content,
                                       headers={"X-Trellis-Inbound-Token": SECRET,
                                                "Content-Type": "message/rfc822"}))
        return answers

    def mailbox(address):
        return [BytesParser(policy=policy.default).parsebytes(e.content)
                for e in received.envelopes if address in e.rcpt_tos]

    return app, client, headers, ids, customer_sends, mailbox

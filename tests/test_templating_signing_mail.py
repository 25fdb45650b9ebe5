"""User-written templates in the sandbox, signed link tokens, and outgoing mail
(HTML, extra headers, threading ids) through a real SMTP server and the outbox."""

from __future__ import annotations

import email
import time

import pytest

from trellis import mail, signing, templating
from trellis.db import db
from trellis.models import Account, Contact, Tag
from trellis.testing import free_port


# ------------------------------------------------------------------ templating


def test_merge_fields_with_fallbacks_and_missing_sections_render_empty():
    source = ('Hello {{ contact.first_name | default("there") }}'
              '{% if sales.last_product %}, enjoying your {{ sales.last_product }}?{% endif %}'
              ' [{{ scoring.tier.label }}]')
    assert templating.render(source, {"contact": {"first_name": "Ana"},
                                      "sales": {"last_product": "Kettle"}}) == (
        "Hello Ana, enjoying your Kettle? []")
    assert templating.render(source, {"contact": {}}) == "Hello there []"


@pytest.mark.parametrize("attack", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ contact.__class__ }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ self._TemplateReference__context }}",
    "{% set x = contact.update({'email': 'evil'}) %}{{ x }}",
])
def test_the_sandbox_refuses_python_internals_and_mutation(attack):
    with pytest.raises(templating.RenderError):
        templating.render(attack, {"contact": {"email": "a@b.c"}})


@pytest.mark.parametrize("source, problem", [
    ("{% include '/etc/passwd' %}", "include is not allowed"),
    ("{% import 'x.html' as x %}", "import is not allowed"),
    ("{% extends 'base.html' %}", "extends is not allowed"),
    ("Hello {{ contact.first_name ", "Line 1: unexpected end of template"),
])
def test_check_names_the_problem_and_the_line(source, problem):
    problems = templating.check(source)
    assert problems and problem in problems[0]
    with pytest.raises(templating.RenderError):
        templating.render(source, {})


def test_html_templates_escape_every_value_and_output_is_capped():
    out = templating.render("<p>{{ contact.first_name }}</p>",
                            {"contact": {"first_name": "<script>alert(1)</script>"}}, html=True)
    assert out == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"
    assert templating.render("{{ x }}", {"x": "<b>"}) == "<b>"  # plain text is not escaped
    with pytest.raises(templating.RenderError, match="longer than"):
        templating.render("{% for i in range(9999) %}{{ 'x' * 200 }}{% endfor %}", {})
    assert templating.check("x" * (templating.MAX_SOURCE + 1))


def test_merge_context_collects_core_and_plugin_fields(trellis_app_factory, api_login):
    app = trellis_app_factory(plugins=["sales"])
    client = app.test_client()
    headers = api_login(client)
    with app.app_context():
        acme = Account(name="Acme", domain="acme.example")
        ana = Contact(first_name="Ana", last_name="Lopez", email="ana@acme.example",
                      account=acme, tags=[Tag(name="VIP")])
        bo = Contact(first_name="Bo", last_name="Berg")
        db.session.add_all([ana, bo])
        db.session.commit()
        ana_id, bo_id = ana.id, bo.id
    product = client.post("/api/v1/product/", headers=headers, json={
        "sku": "K-1", "name": "Kettle", "price": 30}).get_json()["id"]
    order = client.post("/api/v1/order/", headers=headers, json={
        "contact_id": ana_id, "ordered_at": "2026-03-01T10:00:00+00:00"}).get_json()["id"]
    assert client.post("/api/v1/order_line/", headers=headers, json={
        "order_id": order, "product_id": product, "quantity": 2}).status_code == 201
    with app.app_context():
        ctx = templating.merge_context(db.session, [ana_id, bo_id, 999])
    assert set(ctx) == {ana_id, bo_id}
    assert ctx[ana_id]["contact"]["name"] == "Ana Lopez"
    assert ctx[ana_id]["contact"]["tags"] == ["VIP"]
    assert ctx[ana_id]["account"]["name"] == "Acme"
    assert ctx[ana_id]["sales"] == {"orders": 1, "total_spent": 60.0,
                                    "last_order_at": "2026-03-01", "last_product": "Kettle"}
    assert "sales" not in ctx[bo_id]
    text = templating.render("{{ contact.first_name }} bought {{ sales.last_product | "
                             "default('nothing yet') }}", ctx[bo_id])
    assert text == "Bo bought nothing yet"


# ------------------------------------------------------------------ signing


def test_signed_tokens_carry_data_and_refuse_tampering_other_purposes_and_age(
        trellis_app_factory):
    app = trellis_app_factory()
    with app.test_request_context():
        token = signing.sign("unsubscribe", {"contact": 12, "campaign": 3})
        assert signing.unsign("unsubscribe", token) == {"contact": 12, "campaign": 3}
        with pytest.raises(signing.BadToken):
            signing.unsign("survey", token)  # made for another purpose
        with pytest.raises(signing.BadToken):
            signing.unsign("unsubscribe", token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1])
        time.sleep(1.1)
        with pytest.raises(signing.BadToken) as err:
            signing.unsign("unsubscribe", token, max_age=0)
        assert err.value.expired
    other = trellis_app_factory(config={"SECRET_KEY": "another-secret-key-of-enough-length"})
    with other.test_request_context(), pytest.raises(signing.BadToken):
        signing.unsign("unsubscribe", token)  # another site's key


# ------------------------------------------------------------------ mail


def test_html_alternative_headers_and_threading_reach_a_real_smtp_server(
        trellis_app_factory, smtp_server):
    controller, received = smtp_server
    app = trellis_app_factory(config={"TRELLIS_SMTP_HOST": controller.hostname,
                                      "TRELLIS_SMTP_PORT": controller.port,
                                      "TRELLIS_MAIL_FROM": "desk@example.com"})
    with app.app_context():
        assert mail.transport() == "smtp"
        assert mail.check_connection()["ok"] is True
        reply_id = mail.make_message_id()
        sent = mail.send([mail.Mail(
            to="ana@example.com", subject="Re: [#42] Broken\r\nBcc: evil@example.com",
            body="Plain text", html="<p>HTML</p>", message_id=reply_id,
            in_reply_to="<first@customer.example>",
            references=("<first@customer.example>",),
            headers={"List-Unsubscribe": "<https://crm.example/u/abc>"})])
    assert sent == 1
    assert reply_id.startswith("<") and reply_id.endswith("@example.com>")
    envelope = received.envelopes[0]
    assert envelope.rcpt_tos == ["ana@example.com"]  # the injected Bcc went nowhere
    msg = email.message_from_bytes(envelope.content)
    assert msg["Subject"] == "Re: [#42] Broken Bcc: evil@example.com"
    assert msg["Message-ID"] == reply_id
    assert msg["In-Reply-To"] == "<first@customer.example>"
    assert msg["References"] == "<first@customer.example>"
    assert msg["List-Unsubscribe"] == "<https://crm.example/u/abc>"
    assert msg["From"] == "desk@example.com"
    parts = {p.get_content_type(): p.get_payload(decode=True).decode().strip()
             for p in msg.walk() if not p.is_multipart()}
    assert parts == {"text/plain": "Plain text", "text/html": "<p>HTML</p>"}


def test_reserved_headers_cannot_be_set_and_settings_override_the_environment(
        trellis_app_factory, smtp_server, tmp_path):
    from trellis.settings import update_settings

    controller, received = smtp_server
    app = trellis_app_factory(config={"TRELLIS_MAIL_OUTBOX": str(tmp_path / "out")})
    with app.app_context():
        assert mail.transport() == "outbox"
        assert mail.send([mail.Mail("a@example.com", "s", "b", headers={"Bcc": "x@y.z"})]) == 0
        assert mail.send([mail.Mail("a@example.com", "hello", "b")]) == 1
        assert [email.message_from_bytes(p.read_bytes())["Subject"]
                for p in (tmp_path / "out").glob("*.eml")] == ["hello"]
        update_settings("core", {"smtp_host": controller.hostname, "smtp_port": controller.port,
                                 "mail_from": "crm@example.org"})
        assert mail.transport() == "smtp"
        assert mail.send([mail.Mail("b@example.com", "via settings", "b")]) == 1
    assert received.envelopes[0].mail_from == "crm@example.org"


def test_settings_refuse_a_bad_host_or_sender(trellis_app_factory, api_login):
    app = trellis_app_factory()
    client = app.test_client()
    response = client.put("/api/v1/settings/core", headers=api_login(client),
                          json={"smtp_host": "evil host\r\n", "mail_from": "nobody",
                                "smtp_port": 70000})
    assert response.status_code == 400
    assert set(response.get_json()["message"]) == {"smtp_host", "mail_from", "smtp_port"}


def test_connection_check_reports_a_dead_server(trellis_app_factory):
    app = trellis_app_factory(config={"TRELLIS_SMTP_HOST": "127.0.0.1",
                                      "TRELLIS_SMTP_PORT": free_port()})
    with app.app_context():
        result = mail.check_connection()
    assert result["ok"] is False and "127.0.0.1" in result["detail"]

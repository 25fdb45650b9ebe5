"""The example plugin's own tests: the code block of docs/plugins.md, verbatim
(tests/test_docs.py checks they stay identical)."""

from trellis.db import db
from trellis.jobs import enqueue
from trellis.models import Contact
from trellis_callnotes.models import Call


def test_calls_api_validation_and_long_call_job(trellis_app_factory, api_login):
    app = trellis_app_factory(plugins=["callnotes"])  # the core + callnotes only
    client = app.test_client()
    headers = api_login(client)  # JWT of the fixture's admin
    with app.app_context():
        contact = Contact(first_name="Ada", last_name="Lovelace")
        db.session.add(contact)
        db.session.commit()
        contact_id = contact.id

    created = client.post("/api/v1/call/", headers=headers,
                          json={"contact_id": contact_id, "subject": "Renewal", "minutes": 45})
    assert created.status_code == 201
    invalid = client.post("/api/v1/call/", headers=headers,
                          json={"contact_id": contact_id, "subject": "", "minutes": -1})
    assert invalid.status_code == 400
    assert set(invalid.get_json()["message"]) == {"subject", "minutes"}

    with app.app_context():
        enqueue("callnotes.flag_long_calls")  # no Redis: runs in-process, now
        assert db.session.get(Call, created.get_json()["id"]).long_call is True


def test_disabled_plugin_answers_404(trellis_app_factory, api_login):
    app = trellis_app_factory(plugins=["callnotes"], enable=[])  # installed, not enabled
    client = app.test_client()
    assert client.get("/api/v1/call/", headers=api_login(client)).status_code == 404

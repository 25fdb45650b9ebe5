"""Optimistic locking: two people editing the same record — the second save is
refused with what changed, in the API (ETag / If-Match, 409) and the web form."""

from __future__ import annotations

import re

import pytest

from trellis.db import db
from trellis.models import Contact, Tag
from trellis.testing import csrf_token


@pytest.fixture
def site(trellis_app_factory, api_login, make_user):
    app = trellis_app_factory()
    make_user(app, "bea", ["CRM User"])
    client = app.test_client()
    admin = api_login(client)
    contact = client.post("/api/v1/contact/", headers=admin, json={
        "first_name": "Ana", "last_name": "Lopez", "email": "ana@example.com"}).get_json()["id"]
    return app, client, {"admin": admin, "bea": api_login(client, "bea", "pw-123456")}, contact


def test_api_refuses_a_put_based_on_an_old_etag_and_says_what_changed(site):
    app, client, headers, contact = site
    first = client.get(f"/api/v1/contact/{contact}", headers=headers["admin"])
    etag = first.headers["ETag"]
    assert re.fullmatch(r'"a\d+"', etag)
    # Bea saves first, with the current version
    bea = client.put(f"/api/v1/contact/{contact}", headers={**headers["bea"], "If-Match": etag},
                     json={"title": "CFO"})
    assert bea.status_code == 200, bea.get_json()
    # the admin's copy is now stale
    stale = client.put(f"/api/v1/contact/{contact}",
                       headers={**headers["admin"], "If-Match": etag}, json={"title": "CEO"})
    assert stale.status_code == 409
    body = stale.get_json()
    assert "changed by bea" in body["message"] and "title" in body["message"]
    assert body["changes"][0]["changes"]["title"] == {"old": None, "new": "CFO"}
    assert body["current_version"] != etag.strip('"')
    with app.app_context():
        assert db.session.get(Contact, contact).title == "CFO"  # not overwritten
    fresh = client.get(f"/api/v1/contact/{contact}", headers=headers["admin"]).headers["ETag"]
    assert fresh == f'"{body["current_version"]}"'
    retry = client.put(f"/api/v1/contact/{contact}",
                       headers={**headers["admin"], "If-Match": fresh}, json={"title": "CEO"})
    assert retry.status_code == 200
    # without If-Match the API does not check (clients opt in)
    assert client.put(f"/api/v1/contact/{contact}", headers=headers["bea"],
                      json={"title": "CTO"}).status_code == 200


def test_a_model_without_audit_is_versioned_by_its_values(site):
    app, client, headers, _ = site
    tag = client.post("/api/v1/tag/", headers=headers["admin"], json={"name": "VIP"})
    tag_id = tag.get_json()["id"]
    with app.app_context():
        # tags are audited; check the value-hash path on an unaudited model directly
        from trellis import locking
        from trellis.models import Activity

        activity = Activity(type="call", subject="Hello")
        db.session.add(activity)
        db.session.commit()
        before = locking.version(db.session, activity)
        assert before.startswith("h")
        activity.subject = "Changed in memory only"
        assert locking.version(db.session, activity) == before  # the stored row counts
        db.session.commit()
        assert locking.version(db.session, activity) != before
        assert locking.conflict(db.session, activity, before)["changes"] == []
        assert db.session.get(Tag, tag_id) is not None


def test_web_form_shows_what_changed_keeps_the_input_and_saving_again_overwrites(
        site, web_login):
    app, client, headers, contact = site
    ada = app.test_client()
    web_login(ada)
    form_page = ada.get(f"/contactview/edit/{contact}").get_data(as_text=True)
    version = re.search(r'name="trellis_version"[^>]*value="([^"]+)"', form_page) or \
        re.search(r'value="([^"]+)"[^>]*name="trellis_version"', form_page)
    assert version, "the edit form carries the version"
    # meanwhile Bea changes the phone through the API
    assert client.put(f"/api/v1/contact/{contact}", headers=headers["bea"],
                      json={"phone": "+1 555 0100"}).status_code == 200
    data = {"csrf_token": csrf_token(form_page), "trellis_version": version.group(1),
            "first_name": "Ana", "last_name": "Lopez", "email": "ana@example.com",
            "phone": "", "title": "Chief of staff"}
    refused = ada.post(f"/contactview/edit/{contact}", data=data)
    html = refused.get_data(as_text=True)
    assert refused.status_code == 200 and "changed by bea" in html
    assert "bea changed phone from None to &#39;+1 555 0100&#39;" in html
    assert 'value="Chief of staff"' in html  # the input is kept
    with app.app_context():
        stored = db.session.get(Contact, contact)
        assert (stored.phone, stored.title) == ("+1 555 0100", None)
    newer = re.search(r'name="trellis_version"[^>]*value="([^"]+)"', html) or \
        re.search(r'value="([^"]+)"[^>]*name="trellis_version"', html)
    again = ada.post(f"/contactview/edit/{contact}",
                     data={**data, "trellis_version": newer.group(1), "csrf_token": csrf_token(html)})
    assert again.status_code == 302
    with app.app_context():
        stored = db.session.get(Contact, contact)
        assert (stored.phone or None, stored.title) == (None, "Chief of staff")

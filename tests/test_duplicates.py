"""Duplicate warnings on create (trellis.duplicates): REST API, check endpoint, web UI."""

from __future__ import annotations

import pytest

from trellis.db import db
from trellis.duplicates import HIDDEN_LABEL, name_variants
from trellis.models import Account, Contact
from trellis.testing import csrf_token


@pytest.fixture
def core(trellis_app_factory, api_login):
    app = trellis_app_factory()
    with app.app_context():
        acme = Account(name="Acme Inc.", domain="acme.com")
        db.session.add(acme)
        db.session.add(Contact(first_name="Nina", last_name="North", email="Nina@North.example",
                               phone="+49 (30) 1234-56", account=acme))
        db.session.commit()
        ids = {"acme": acme.id, "nina": db.session.scalar(db.select(Contact.id))}
    client = app.test_client()
    return app, client, api_login(client), ids


def dups(response):
    assert response.status_code == 201, response.get_json()
    return response.get_json()["warnings"]["duplicates"]


def test_name_variants():
    assert "acme" in name_variants("ACME, Inc.")
    assert "acme gmbh" in name_variants("Acme")
    assert name_variants("  ") == []


def test_contact_duplicates_on_create(core):
    app, client, admin, ids = core
    same_mail = client.post("/api/v1/contact/", headers=admin, json={
        "first_name": "N.", "last_name": "North", "email": "nina@north.EXAMPLE"})
    assert dups(same_mail) == [{"model": "contact", "id": ids["nina"], "label": "Nina North",
                                "reason": "same e-mail"}]
    same_phone = client.post("/api/v1/contact/", headers=admin, json={
        "first_name": "nina", "last_name": "NORTH", "phone": "49-30-123456"})
    assert dups(same_phone) == [{"model": "contact", "id": ids["nina"], "label": "Nina North",
                                 "reason": "same name and phone"}]
    same_account = client.post("/api/v1/contact/", headers=admin, json={
        "first_name": "Nina", "last_name": "North", "account_id": ids["acme"],
        "email": "NINA@north.example"})
    found = dups(same_account)
    # the earlier contact matches on both; the new ones only by name and account
    by_id = {d["id"]: d["reason"] for d in found}
    assert by_id[ids["nina"]] == "same e-mail, same name and account"
    assert by_id[same_mail.get_json()["id"]] == "same e-mail"
    # never the record itself, and a clean record gets an empty list
    assert same_account.get_json()["id"] not in by_id
    other = client.post("/api/v1/contact/", headers=admin, json={
        "first_name": "Otto", "last_name": "Other", "email": "otto@other.example"})
    assert dups(other) == []
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Contact)) == 5


def test_account_duplicates_on_create(core):
    app, client, admin, ids = core
    by_name = client.post("/api/v1/account/", headers=admin, json={"name": "ACME GmbH"})
    assert dups(by_name) == [{"model": "account", "id": ids["acme"], "label": "Acme Inc.",
                              "reason": "same name"}]
    by_domain = client.post("/api/v1/account/", headers=admin, json={
        "name": "Road Runner Supplies", "domain": "acme.com"})
    assert dups(by_domain) == [{"model": "account", "id": ids["acme"], "label": "Acme Inc.",
                                "reason": "same domain"}]
    assert dups(client.post("/api/v1/account/", headers=admin, json={"name": "Acme Two"})) == []


def test_check_before_creating(core):
    app, client, admin, ids = core
    answer = client.post("/api/v1/contact/_duplicates", headers=admin,
                         json={"email": "NINA@north.example"})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["duplicates"] == [
        {"model": "contact", "id": ids["nina"], "label": "Nina North", "reason": "same e-mail"}]
    answer = client.post("/api/v1/account/_duplicates", headers=admin,
                         json={"name": "acme", "domain": "other.example"})
    assert [d["id"] for d in answer.get_json()["duplicates"]] == [ids["acme"]]
    assert client.post("/api/v1/contact/_duplicates", headers=admin,
                       json={"first_name": "Zed"}).get_json() == {"duplicates": []}
    with app.app_context():  # nothing was saved
        assert db.session.scalar(db.select(db.func.count()).select_from(Contact)) == 1
    bad = client.post("/api/v1/contact/_duplicates", headers=admin, json={"email": "nope"})
    assert bad.status_code == 400 and "email" in bad.get_json()["message"]
    bad = client.post("/api/v1/contact/_duplicates", headers=admin, json=["x"])
    assert bad.status_code == 400
    bad = client.post("/api/v1/contact/_duplicates", headers=admin,
                      json={"account_id": 999})
    assert bad.status_code == 400 and "account_id" in bad.get_json()["message"]
    # models without a matcher have no check
    assert client.post("/api/v1/tag/_duplicates", headers=admin,
                       json={"name": "x"}).status_code == 404
    # and need the write permission, like creating
    assert client.post("/api/v1/contact/_duplicates",
                       json={"email": "nina@north.example"}).status_code == 401


def test_web_ui_flashes_a_warning_with_links(core, web_login):
    app, client, admin, ids = core
    web_login(client)
    form = client.get("/contactview/add").get_data(as_text=True)
    response = client.post("/contactview/add", data={
        "first_name": "Nina", "last_name": "N.", "email": "nina@north.example",
        "csrf_token": csrf_token(form)}, follow_redirects=True)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Possible duplicate" in page
    assert f'href="/contactview/show/{ids["nina"]}"' in page and "Nina North" in page
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Contact)) == 2
    form = client.get("/accountview/add").get_data(as_text=True)
    page = client.post("/accountview/add", data={
        "name": "Unrelated", "csrf_token": csrf_token(form)},
        follow_redirects=True).get_data(as_text=True)
    assert "Possible duplicate" not in page


# ------------------------------------------------------------------ record rules and leads


@pytest.fixture
def sales(trellis_app_factory, make_user, api_login):
    app = trellis_app_factory(plugins=["sales"])
    ids = {"rep": make_user(app, "rep", ["Sales Rep"]),
           "rep2": make_user(app, "rep2", ["Sales Rep"])}
    with app.app_context():
        northwind = Account(name="Northwind Traders", domain="northwind.example",
                            owner_id=ids["rep"])
        secret = Contact(first_name="Sina", last_name="Secret", email="sina@secret.example",
                         owner_id=ids["rep2"])
        db.session.add_all([northwind, secret])
        db.session.commit()
        ids.update(northwind=northwind.id, secret=secret.id)
    client = app.test_client()
    headers = {n: api_login(client, n, "pw-123456") for n in ("rep", "rep2")}
    headers["admin"] = api_login(client)
    return app, client, headers, ids


def test_hidden_matches_are_not_revealed(sales):
    app, client, headers, ids = sales
    created = client.post("/api/v1/contact/", headers=headers["rep"], json={
        "first_name": "S", "last_name": "Secret", "email": "SINA@secret.example"})
    assert dups(created) == [{"model": "contact", "id": None, "label": HIDDEN_LABEL,
                              "reason": "same e-mail", "hidden": True}]
    assert "Sina" not in created.get_data(as_text=True)
    check = client.post("/api/v1/contact/_duplicates", headers=headers["rep"],
                        json={"email": "sina@secret.example"}).get_json()
    assert check["duplicates"] == [
        {"model": "contact", "id": created.get_json()["id"], "label": "S Secret",
         "reason": "same e-mail"},
        {"model": "contact", "id": None, "label": HIDDEN_LABEL, "reason": "same e-mail",
         "hidden": True}]
    # rep2 sees their contact by name, and is told of rep's new copy without its name
    check = client.post("/api/v1/contact/_duplicates", headers=headers["rep2"],
                        json={"email": "sina@secret.example"}).get_json()
    assert check["duplicates"] == [
        {"model": "contact", "id": ids["secret"], "label": "Sina Secret", "reason": "same e-mail"},
        {"model": "contact", "id": None, "label": HIDDEN_LABEL, "reason": "same e-mail",
         "hidden": True}]


def test_lead_duplicates(sales):
    app, client, headers, ids = sales
    rep = headers["rep"]
    first = client.post("/api/v1/lead/", headers=rep, json={
        "first_name": "Nina", "last_name": "North", "email": "nina@northwind.example"})
    assert dups(first) == []
    second = client.post("/api/v1/lead/", headers=rep, json={
        "last_name": "North", "email": "Nina@Northwind.example", "company": "Northwind Traders Ltd"})
    assert sorted((d["model"], d["id"], d["reason"]) for d in dups(second)) == [
        ("account", ids["northwind"], "account, same company"),
        ("lead", first.get_json()["id"], "open lead, same e-mail")]
    # a lead matching a contact the rep cannot see: reported, not revealed
    third = client.post("/api/v1/lead/", headers=rep, json={
        "last_name": "Lead", "email": "sina@secret.example"})
    assert dups(third) == [{"model": "contact", "id": None, "label": HIDDEN_LABEL,
                            "reason": "contact, same e-mail", "hidden": True}]
    # disqualified leads are no longer duplicates
    for lead in (first, second):
        assert client.put(f"/api/v1/lead/{lead.get_json()['id']}", headers=rep,
                          json={"status": "disqualified"}).status_code == 200
    check = client.post("/api/v1/lead/_duplicates", headers=rep,
                        json={"email": "nina@northwind.example"})
    assert check.status_code == 200 and check.get_json() == {"duplicates": []}


def test_matching_on_postgresql(trellis_app_factory, api_login, postgres_url):
    app = trellis_app_factory(plugins=["sales"], database_url=postgres_url)
    with app.app_context():
        acme = Account(name="Acme Inc.", domain="acme.com")
        db.session.add_all([acme, Contact(first_name="Nina", last_name="North",
                                          email="nina@north.example", phone="030 1234",
                                          account=acme)])
        db.session.commit()
        acme_id = acme.id
    client = app.test_client()
    admin = api_login(client)
    found = dups(client.post("/api/v1/contact/", headers=admin, json={
        "first_name": "NINA", "last_name": "north", "email": "Nina@North.example",
        "phone": "(030) 12-34", "account_id": acme_id}))
    assert [d["reason"] for d in found] == [
        "same e-mail, same name and phone, same name and account"]
    assert dups(client.post("/api/v1/account/", headers=admin, json={
        "name": "acme, inc", "domain": "www.acme.com"})) == [
        {"model": "account", "id": acme_id, "label": "Acme Inc.",
         "reason": "same domain, same name"}]
    lead = dups(client.post("/api/v1/lead/", headers=admin, json={
        "last_name": "North", "email": "NINA@north.example", "company": "ACME"}))
    # both Acme accounts, both Ninas
    assert sorted(d["reason"] for d in lead) == ["account, same company",
                                                 "account, same company",
                                                 "contact, same e-mail", "contact, same e-mail"]

"""Saved views: a list's filters and sort saved under a name, private or shared,
pinned to the owner's menu; only list arguments are kept; others' views cannot
be changed; a shared view still shows each user only what they may see."""

from __future__ import annotations

from html import unescape

from sqlalchemy import select

from trellis.db import db
from trellis.models import Contact, SavedView
from trellis.testing import csrf_token

from tests.test_browser import browser, watched_page  # noqa: F401 - fixtures


def save(client, name, query, view="ContactView", **flags):
    page = client.get(f"/contactview/list/?{query}").get_data(as_text=True)
    data = {"csrf_token": csrf_token(page), "name": name, "view": view, "query": query,
            **{k: "y" for k, v in flags.items() if v}}
    return client.post("/savedviews/save", data=data)


def test_save_open_share_pin_and_delete(trellis_app_factory, make_user, web_login):
    app = trellis_app_factory()
    make_user(app, "ann", ["CRM User"])
    make_user(app, "bob", ["CRM User"])
    with app.app_context():
        db.session.add_all([Contact(first_name="Ada", last_name="Lovelace"),
                            Contact(first_name="Alan", last_name="Turing"),
                            Contact(first_name="Grace", last_name="Hopper")])
        db.session.commit()
    ann, bob = app.test_client(), app.test_client()
    web_login(ann, "ann", "pw-123456")
    web_login(bob, "bob", "pw-123456")

    query = "_flt_0_first_name=A&_oc_ContactView=last_name&_od_ContactView=desc&evil=1"
    answer = save(ann, "A-people", query, pinned=True)
    assert answer.status_code == 302
    with app.app_context():
        saved = db.session.scalar(select(SavedView))
        assert (saved.name, saved.view, saved.pinned, saved.shared) == (
            "A-people", "ContactView", True, False)
        assert "evil" not in saved.query and "_flt_0_first_name=A" in saved.query
    opened = ann.get(answer.headers["Location"]).get_data(as_text=True)
    assert opened.index("Turing") < opened.index("Lovelace") and "Hopper" not in opened
    home = ann.get("/contactview/list/").get_data(as_text=True)
    assert 'id="trellis-pinned-views"' in home and "A-people" in unescape(home)
    # private: bob neither sees it nor may change it
    assert "A-people" not in bob.get("/contactview/list/").get_data(as_text=True)
    token = csrf_token(bob.get("/contactview/list/").get_data(as_text=True))
    assert bob.post(f"/savedviews/{saved.id}/delete",
                    data={"csrf_token": token}).status_code == 404
    # shared: bob sees it in the list's menu, not pinned in his navbar
    save(ann, "Everyone", "_flt_0_last_name=Hopper", shared=True)
    page = bob.get("/contactview/list/").get_data(as_text=True)
    assert "Everyone" in page and 'id="trellis-pinned-views"' not in page
    token = csrf_token(ann.get("/contactview/list/").get_data(as_text=True))
    assert ann.post(f"/savedviews/{saved.id}/pin", data={"csrf_token": token}).status_code == 302
    assert 'id="trellis-pinned-views"' not in ann.get("/contactview/list/").get_data(
        as_text=True)
    mine = ann.get("/savedviews/").get_data(as_text=True)
    assert "A-people" in mine and "Everyone" in mine and mine.count("Delete</button>") == 2
    theirs = bob.get("/savedviews/").get_data(as_text=True)
    assert "Everyone" in theirs and "A-people" not in theirs and "Delete</button>" not in theirs
    assert ann.post(f"/savedviews/{saved.id}/delete",
                    data={"csrf_token": token}).status_code == 302
    with app.app_context():
        assert [s.name for s in db.session.scalars(select(SavedView))] == ["Everyone"]


def test_bad_input_is_refused_with_the_field_named(trellis_app_factory, web_login):
    app = trellis_app_factory()
    client = app.test_client()
    web_login(client)
    answer = save(client, "", "_flt_0_first_name=A")
    assert answer.status_code == 302
    flashed = unescape(client.get(answer.headers["Location"]).get_data(as_text=True))
    assert "Saved view not saved: name:" in flashed
    assert save(client, "x" * 101, "").status_code == 302
    assert save(client, "Ghost", "", view="NoSuchView").status_code == 404
    with app.app_context():
        assert db.session.scalar(select(SavedView)) is None


def test_a_user_saves_a_view_in_the_browser_and_finds_it_pinned(
        trellis_app_factory, watched_page):  # noqa: F811 - fixture
    import pytest
    from playwright.sync_api import expect

    from tests.test_browser import log_in, serve

    pytest.importorskip("playwright")
    page, watch = watched_page
    app = trellis_app_factory()
    with app.app_context():
        db.session.add_all([Contact(first_name="Ada", last_name="Lovelace"),
                            Contact(first_name="Grace", last_name="Hopper")])
        db.session.commit()
    with serve(app) as base:
        log_in(page, base)
        page.goto(f"{base}/contactview/list/?_flt_0_first_name=Grace")
        expect(page.locator("table.table-bordered")).not_to_contain_text("Lovelace")
        page.fill("#save-view input[name=name]", "Only Grace")
        page.check("#save-view input[name=pinned]")
        with page.expect_navigation():
            page.click("#save-view button[type=submit]")
        expect(page.locator(".alert")).to_contain_text("Saved the view")
        page.goto(f"{base}/contactview/list/")
        expect(page.locator("table.table-bordered")).to_contain_text("Lovelace")
        page.click("#trellis-pinned-views > a")
        with page.expect_navigation():
            page.click("#trellis-pinned-views a:has-text('Only Grace')")
        expect(page.locator("table.table-bordered")).to_contain_text("Hopper")
        expect(page.locator("table.table-bordered")).not_to_contain_text("Lovelace")
        page.click("#saved-views > button")
        expect(page.locator("#saved-views a.saved-view")).to_have_count(1)
        expect(page.locator("#saved-views a.saved-view")).to_contain_text("Only Grace")
        watch.assert_clean()

"""The pipeline board: figures, record rules, permissions, and a real browser
dragging a deal across it (Playwright + Debian's Chromium)."""

from __future__ import annotations

import re
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from trellis.db import db
from trellis.models import Account, Team

from trellis_sales import board
from trellis_sales.models import Deal, DealStageHistory, Order, Pipeline, Stage

PASSWORD = "pw-123456"


def _stage_ids(app) -> dict[str, int]:
    with app.app_context():
        return {s.name: s.id for s in db.session.scalars(
            select(Stage).join(Pipeline).where(Pipeline.is_default.is_(True)))}


def _add_deal(app, owner_id, stage_id, name, amount, currency="EUR", **extra) -> int:
    """A deal written outside a request (unrestricted), with its model rules run."""
    with app.app_context():
        deal = Deal(name=name, stage_id=stage_id, amount=Decimal(amount), currency=currency,
                    owner_id=owner_id, **extra)
        db.session.add(deal)
        db.session.commit()
        return deal.id


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sales_board(request, trellis_app_factory, make_user):
    database_url = request.getfixturevalue("postgres_url") if request.param == "postgres" \
        else None
    app = trellis_app_factory(plugins=["sales"], database_url=database_url)
    ids = {"rep": make_user(app, "rep", ["Sales Rep"]),
           "rep2": make_user(app, "rep2", ["Sales Rep"]),
           "boss": make_user(app, "boss", ["Sales Manager"]),
           "outsider": make_user(app, "outsider", ["Sales Rep"])}
    with app.app_context():
        sm = app.appbuilder.sm
        db.session.add(Team(name="EMEA", manager_id=ids["boss"],
                            members=[sm.get_user_by_id(ids["rep"]),
                                     sm.get_user_by_id(ids["rep2"])]))
        account = Account(name="Northwind", domain="northwind.example")
        db.session.add(account)
        # Reads deals (and so the board) but may not change them.
        viewer = sm.add_role("Deal Viewer")
        for perm, resource in [("can_read", "sales.Deal"), ("menu_access", "Pipeline board")]:
            sm.add_permission_role(viewer, sm.find_permission_view_menu(perm, resource))
        db.session.commit()
        account_id = account.id
    ids["viewer"] = make_user(app, "viewer", ["Deal Viewer"])
    stage = _stage_ids(app)
    deals = {
        "A1": _add_deal(app, ids["rep"], stage["Qualification"], "Alpha one", "1000.00",
                        account_id=account_id),
        # probability set by hand: the weighted total uses it, not the stage's 10 %
        "A2": _add_deal(app, ids["rep"], stage["Qualification"], "Alpha two", "2500.50",
                        probability=30),
        "A3": _add_deal(app, ids["rep"], stage["Qualification"], "Alpha three", "400",
                        currency="USD"),
        "A4": _add_deal(app, ids["rep"], stage["Proposal"], "Alpha four", "10000"),
        "B1": _add_deal(app, ids["rep2"], stage["Qualification"], "Bravo one", "7777"),
        "B2": _add_deal(app, ids["rep2"], stage["Proposal"], "Bravo two", "3000",
                        currency="GBP"),
        "C1": _add_deal(app, ids["outsider"], stage["Negotiation"], "Charlie one", "999"),
    }
    return app, ids, stage, deals


def _login(client, web_login, username):
    if username == "admin":
        web_login(client)
    else:
        web_login(client, username, PASSWORD)
    return client


def _figures(client, pipeline_id, **args):
    response = client.get(f"/sales/board/{pipeline_id}/figures", query_string=args)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return {c["stage_id"]: c for c in response.get_json()["columns"]}


def _pipeline_id(app) -> int:
    with app.app_context():
        return db.session.scalar(select(Pipeline.id).where(Pipeline.is_default.is_(True)))


def test_board_shows_only_the_reps_deals_with_figures_per_column(sales_board, web_login):
    app, ids, stage, deals = sales_board
    client = _login(app.test_client(), web_login, "rep")
    page = client.get("/sales/board/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for name in ("Alpha one", "Alpha two", "Alpha three", "Alpha four"):
        assert name in html
    for name in ("Bravo one", "Bravo two", "Charlie one"):
        assert name not in html
    assert "Northwind" in html and f"/dealview/show/{deals['A1']}" in html
    assert 'data-can-write="1"' in html and 'draggable="true"' in html
    # the stage columns, in stage order
    names = re.findall(r'data-stage-name="([^"]+)"', html)
    assert names == ["Qualification", "Needs analysis", "Proposal", "Negotiation", "Won", "Lost"]
    # menu entry in the Sales menu
    assert "Pipeline board" in html and 'href="/sales/board/"' in html

    figures = _figures(client, _pipeline_id(app))
    q = figures[stage["Qualification"]]
    assert q["count"] == 3
    # EUR: 1000.00 + 2500.50; weighted 1000.00 × 10 % + 2500.50 × 30 % = 100 + 750.15
    # USD on its own line, never added to EUR
    assert q["totals"] == [
        {"currency": "EUR", "amount": "3,500.50", "weighted": "850.15"},
        {"currency": "USD", "amount": "400.00", "weighted": "40.00"},
    ]
    assert figures[stage["Proposal"]] == {
        "stage_id": stage["Proposal"], "count": 1,
        "totals": [{"currency": "EUR", "amount": "10,000.00", "weighted": "5,000.00"}]}
    assert figures[stage["Negotiation"]]["count"] == 0
    assert figures[stage["Negotiation"]]["totals"] == []
    # the page renders the same figures
    assert re.search(r'data-stage-name="Qualification".*?board-count[^>]*>3<', html, re.S)


def test_manager_sees_the_team_and_filters_by_owner_admin_sees_all(sales_board, web_login):
    app, ids, stage, deals = sales_board
    pipeline_id = _pipeline_id(app)
    boss = _login(app.test_client(), web_login, "boss")
    html = boss.get("/sales/board/").get_data(as_text=True)
    assert "Alpha one" in html and "Bravo two" in html and "Charlie one" not in html
    assert 'id="board-owner"' in html  # the owner filter, for managers
    figures = _figures(boss, pipeline_id)
    assert figures[stage["Qualification"]]["count"] == 4
    assert figures[stage["Proposal"]]["totals"] == [
        {"currency": "EUR", "amount": "10,000.00", "weighted": "5,000.00"},
        {"currency": "GBP", "amount": "3,000.00", "weighted": "1,500.00"}]
    only_rep2 = _figures(boss, pipeline_id, owner=ids["rep2"])
    assert only_rep2[stage["Qualification"]]["count"] == 1
    html = boss.get(f"/sales/board/{pipeline_id}?owner={ids['rep2']}").get_data(as_text=True)
    assert "Bravo one" in html and "Alpha one" not in html
    # an owner outside the manager's teams, or no number at all: 400 with the field
    refused = boss.get(f"/sales/board/{pipeline_id}/figures?owner={ids['outsider']}")
    assert refused.status_code == 400
    assert refused.get_json()["message"] == {"owner": [f"No user with id {ids['outsider']}."]}
    assert boss.get(f"/sales/board/{pipeline_id}/figures?owner=x").get_json()["message"] == {
        "owner": ["Not a valid user id."]}
    page = boss.get(f"/sales/board/{pipeline_id}?owner=x")
    assert page.status_code == 400 and "Not a valid user id." in page.get_data(as_text=True)

    admin = _login(app.test_client(), web_login, "admin")
    figures = _figures(admin, pipeline_id)
    assert figures[stage["Negotiation"]]["count"] == 1
    assert sum(c["count"] for c in figures.values()) == 7
    # a rep has nobody else to filter by
    rep = _login(app.test_client(), web_login, "rep")
    assert 'id="board-owner"' not in rep.get("/sales/board/").get_data(as_text=True)


def test_moving_through_the_api_with_the_session_obeys_rules(sales_board, web_login):
    app, ids, stage, deals = sales_board
    rep = _login(app.test_client(), web_login, "rep")
    # the board's own request: the session cookie, no token, no CSRF token
    moved = rep.put(f"/api/v1/deal/{deals['A1']}", json={"stage_id": stage["Proposal"]})
    assert moved.status_code == 200, moved.get_json()
    # another rep's deal: hidden by the record rule
    assert rep.put(f"/api/v1/deal/{deals['B1']}",
                   json={"stage_id": stage["Proposal"]}).status_code == 404
    # lost without a reason: 400 with the field, nothing stored
    lost = rep.put(f"/api/v1/deal/{deals['A2']}", json={"stage_id": stage["Lost"]})
    assert lost.status_code == 400
    assert lost.get_json()["message"] == {"lost_reason": ["Required when a deal is marked lost."]}
    lost = rep.put(f"/api/v1/deal/{deals['A2']}",
                   json={"stage_id": stage["Lost"], "lost_reason": "Budget cut"})
    assert lost.status_code == 200, lost.get_json()
    with app.app_context():
        assert db.session.get(Deal, deals["B1"]).stage_id == stage["Qualification"]
        assert db.session.get(Deal, deals["A1"]).stage_id == stage["Proposal"]
        history = db.session.scalars(select(DealStageHistory.stage_id).where(
            DealStageHistory.deal_id == deals["A1"]).order_by(DealStageHistory.id)).all()
        assert history == [stage["Qualification"], stage["Proposal"]]
    figures = _figures(rep, _pipeline_id(app))
    assert figures[stage["Proposal"]]["count"] == 2
    assert figures[stage["Lost"]]["totals"] == [
        {"currency": "EUR", "amount": "2,500.50", "weighted": "0.00"}]


def test_reader_without_write_sees_the_board_but_cannot_move(sales_board, web_login):
    app, ids, stage, deals = sales_board
    viewer = _login(app.test_client(), web_login, "viewer")
    page = viewer.get("/sales/board/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Alpha one" in html  # no record-rule scope for this role: all deals
    assert 'data-can-write="0"' in html and 'draggable="true"' not in html
    assert viewer.put(f"/api/v1/deal/{deals['A1']}",
                      json={"stage_id": stage["Proposal"]}).status_code == 403


def test_anonymous_users_are_sent_to_login(sales_board):
    app, ids, stage, deals = sales_board
    client = app.test_client()
    for url in ("/sales/board/", f"/sales/board/{_pipeline_id(app)}/figures"):
        response = client.get(url)
        assert response.status_code == 302
        assert "/login/" in response.headers["Location"]
    assert client.put(f"/api/v1/deal/{deals['A1']}",
                      json={"stage_id": stage["Proposal"]}).status_code == 401


def test_columns_are_capped_with_a_link_to_the_deal_list(sales_board, web_login,
                                                         monkeypatch):
    app, ids, stage, deals = sales_board
    monkeypatch.setattr(board, "CARDS_PER_COLUMN", 2)
    pipeline_id = _pipeline_id(app)
    rep = _login(app.test_client(), web_login, "rep")
    html = rep.get("/sales/board/").get_data(as_text=True)
    column = re.search(r'data-stage-name="Qualification".*?</section>', html, re.S).group(0)
    assert column.count('class="board-card"') == 2
    more = re.search(r'class="board-more" href="([^"]+)"\s*>'
                     r'<span class="board-more-count">(\d+)</span> more', column)
    assert more and more.group(2) == "1"
    link = more.group(1).replace("&amp;", "&")
    assert link == (f"/dealview/list/?_flt_0_pipeline={pipeline_id}"
                    f"&_flt_0_stage={stage['Qualification']}")
    listed = rep.get(link).get_data(as_text=True)
    assert "Alpha one" in listed and "Alpha three" in listed and "Alpha four" not in listed
    # unknown pipeline
    assert rep.get("/sales/board/99999").status_code == 404
    assert rep.get("/sales/board/99999/figures").status_code == 404


def test_board_assets_are_served_locally(sales_board):
    app, *_ = sales_board
    client = app.test_client()
    for name in ("board.js", "board.css"):
        response = client.get(f"/sales/board/static/{name}")
        assert response.status_code == 200
        assert "http://" not in response.get_data(as_text=True)
        assert "https://" not in response.get_data(as_text=True)


# ------------------------------------------------------------------ in a real browser

# The browser, the watched page and the live server of tests/test_browser.py.
try:
    from tests import test_browser as _browser
except ImportError:  # run on its own from elsewhere: the repository root is not on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    from tests import test_browser as _browser

browser = _browser.browser
watched_page = _browser.watched_page
serve = _browser.serve


def _browser_log_in(page, base, username, password=PASSWORD):
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("input[type=submit]")
    assert not page.url.rstrip("/").endswith("/login"), "login failed"


def _column(page, stage_name):
    return page.locator(f'.board-column[data-stage-name="{stage_name}"]')


def _card(page, deal_id):
    return page.locator(f'.board-card[data-deal-id="{deal_id}"]')


def _history(app, deal_id):
    with app.app_context():
        return [(h.stage_id, h.user_id, h.left_at is not None) for h in db.session.scalars(
            select(DealStageHistory).where(DealStageHistory.deal_id == deal_id)
            .order_by(DealStageHistory.id))]


@pytest.mark.browser
def test_dragging_a_deal_across_the_board_moves_it(trellis_app_factory, make_user,
                                                   watched_page, monkeypatch, tmp_path):
    from playwright.sync_api import expect

    monkeypatch.setenv("TRELLIS_INSTANCE_PATH", str(tmp_path))
    page, watch = watched_page
    app = trellis_app_factory(plugins=["sales"])
    rep = make_user(app, "rep", ["Sales Rep"])
    rep2 = make_user(app, "rep2", ["Sales Rep"])
    stage = _stage_ids(app)
    with app.app_context():
        account = Account(name="Northwind", domain="northwind.example")
        db.session.add(account)
        db.session.commit()
        account_id = account.id
    one = _add_deal(app, rep, stage["Qualification"], "Alpha one", "1000",
                    account_id=account_id)
    two = _add_deal(app, rep, stage["Qualification"], "Alpha two", "250.50", currency="USD")
    _add_deal(app, rep2, stage["Qualification"], "Bravo one", "7777")

    with serve(app) as base:
        _browser_log_in(page, base, "rep")
        page.goto(f"{base}/sales/board/")
        expect(page.locator("h2")).to_contain_text("Pipeline board: New business")
        expect(_column(page, "Qualification").locator(".board-count")).to_have_text("2")
        expect(_column(page, "Proposal").locator(".board-count")).to_have_text("0")
        expect(page.locator(".board-card")).to_have_count(2)  # not rep2's deal
        expect(page.get_by_text("Bravo one")).to_have_count(0)
        _browser.screenshot(page, "board-before-move.png")

        # 1. Drag "Alpha one" to Proposal.
        _card(page, one).drag_to(_column(page, "Proposal"))
        expect(page.locator("#board-message")).to_have_text("Alpha one moved to Proposal.")
        expect(_column(page, "Proposal").locator(".board-count")).to_have_text("1")
        expect(_column(page, "Qualification").locator(".board-count")).to_have_text("1")
        expect(_column(page, "Proposal").locator(".board-totals")).to_contain_text(
            "1,000.00 EUR")
        expect(_column(page, "Proposal").locator(".board-totals")).to_contain_text(
            "weighted 500.00 EUR")
        expect(_column(page, "Qualification").locator(".board-totals")).not_to_contain_text(
            "EUR")
        expect(_column(page, "Proposal").locator(_card(page, one))).to_have_count(1)
        with app.app_context():
            assert db.session.get(Deal, one).stage_id == stage["Proposal"]
        assert _history(app, one) == [(stage["Qualification"], None, True),
                                      (stage["Proposal"], rep, False)]
        _browser.screenshot(page, "board-after-move.png")

        # 2. Into Lost: the reason is asked for; cancelling leaves the deal alone.
        _card(page, two).drag_to(_column(page, "Lost"))
        dialog = page.locator("#board-lost-dialog")
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text("Mark Alpha two as lost")
        dialog.get_by_role("button", name="Cancel").click()
        expect(dialog).to_be_hidden()
        expect(_column(page, "Qualification").locator(_card(page, two))).to_have_count(1)

        # ... an empty reason is refused by the server (400): shown, card goes back.
        watch.expected_error_urls.add(f"{base}/api/v1/deal/{two}")
        _card(page, two).drag_to(_column(page, "Lost"))
        expect(dialog).to_be_visible()
        dialog.get_by_role("button", name="Mark lost").click()
        expect(page.locator("#board-message")).to_have_text(
            "Alpha two was not moved. Lost reason: Required when a deal is marked lost.")
        expect(page.locator("#board-message")).to_have_class(re.compile("alert-danger"))
        expect(_column(page, "Qualification").locator(_card(page, two))).to_have_count(1)
        expect(_column(page, "Lost").locator(".board-count")).to_have_text("0")
        with app.app_context():
            assert db.session.get(Deal, two).stage_id == stage["Qualification"]

        # ... with a reason it is lost.
        _card(page, two).drag_to(_column(page, "Lost"))
        page.fill("#board-lost-reason", "Went with a competitor")
        dialog.get_by_role("button", name="Mark lost").click()
        expect(page.locator("#board-message")).to_have_text("Alpha two moved to Lost.")
        expect(_column(page, "Lost").locator(".board-count")).to_have_text("1")
        expect(_column(page, "Lost").locator(".board-totals")).to_contain_text("250.50 USD")
        expect(_column(page, "Qualification").locator(".board-count")).to_have_text("0")
        expect(_column(page, "Qualification").locator(".board-empty")).to_be_visible()
        with app.app_context():
            deal = db.session.get(Deal, two)
            assert deal.stage_id == stage["Lost"]
            assert deal.lost_reason == "Went with a competitor" and deal.lost_at is not None
        assert _history(app, two)[-1] == (stage["Lost"], rep, False)

        # 3. Into Won: the model rules close it and place the order.
        _card(page, one).drag_to(_column(page, "Won"))
        expect(page.locator("#board-message")).to_have_text("Alpha one moved to Won.")
        expect(_column(page, "Won").locator(".board-count")).to_have_text("1")
        expect(_column(page, "Won").locator(".board-totals")).to_contain_text(
            "weighted 1,000.00 EUR")
        expect(_column(page, "Proposal").locator(".board-count")).to_have_text("0")
        with app.app_context():
            deal = db.session.get(Deal, one)
            assert deal.stage_id == stage["Won"] and deal.won_at is not None
            orders = db.session.scalars(select(Order).where(Order.deal_id == one)).all()
            assert [(o.total, o.account_id) for o in orders] == [(Decimal("1000"), account_id)]
        assert [h[0] for h in _history(app, one)] == [
            stage["Qualification"], stage["Proposal"], stage["Won"]]

        # 4. After a reload the board shows what is stored.
        page.reload()
        expect(_column(page, "Won").locator(".board-count")).to_have_text("1")
        expect(_column(page, "Lost").locator(".board-count")).to_have_text("1")
        expect(_column(page, "Won").locator(_card(page, one))).to_have_count(1)
        expect(page.locator(".board-card")).to_have_count(2)

    watch.assert_clean()


@pytest.mark.browser
def test_a_reader_cannot_drag(trellis_app_factory, make_user, watched_page, monkeypatch,
                              tmp_path):
    from playwright.sync_api import expect

    monkeypatch.setenv("TRELLIS_INSTANCE_PATH", str(tmp_path))
    page, watch = watched_page
    app = trellis_app_factory(plugins=["sales"])
    with app.app_context():
        sm = app.appbuilder.sm
        role = sm.add_role("Deal Viewer")
        for perm, resource in [("can_read", "sales.Deal"), ("menu_access", "Pipeline board")]:
            sm.add_permission_role(role, sm.find_permission_view_menu(perm, resource))
    make_user(app, "viewer", ["Deal Viewer"])
    stage = _stage_ids(app)
    deal = _add_deal(app, None, stage["Qualification"], "Alpha one", "1000")

    with serve(app) as base:
        _browser_log_in(page, base, "viewer")
        page.goto(f"{base}/sales/board/")
        expect(_card(page, deal)).to_be_visible()
        expect(_card(page, deal)).not_to_have_attribute("draggable", "true")
        expect(page.locator(".board-read-only")).to_be_visible()
        _card(page, deal).drag_to(_column(page, "Proposal"))
        expect(_column(page, "Qualification").locator(_card(page, deal))).to_have_count(1)
        expect(page.locator("#board-message")).to_be_hidden()
        with app.app_context():
            assert db.session.get(Deal, deal).stage_id == stage["Qualification"]

    watch.assert_clean()

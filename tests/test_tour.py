"""The tour: each role's main journey, end to end in headless Chromium.

With every plugin and its demo data, on one server: the admin disables and
enables a plugin and creates a user; a sales rep converts a lead and drags the
deal to *Won* on the board; a marketer builds a segment, sees its count and
sends a campaign to it through a real SMTP server; an agent answers a ticket
and resolves it; a manager reads the dashboard.  In English and in Chinese
(the Chinese demo, every user's language ``zh_CN``).  Every page visited is
screenshotted into ``test-artifacts/tour/<language>/``, and the tour fails on a
JavaScript error, a request to a host other than 127.0.0.1 (``Watch``), a link
on a visited page that answers an error (:class:`Links`) or, in Chinese, an
untranslated string: a message looked up without a translation
(``X-Trellis-Untranslated``) or English prose on the page
(:func:`trellis.i18n.latin_text`).
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Any, Iterator
from urllib.parse import urldefrag, urlsplit

import pytest
from sqlalchemy import func, select

from tests.test_browser import (ARTIFACTS, HOST, PLUGINS, browser, row, serve,  # noqa: F401
                                watched_page)
from trellis.db import db
from trellis.i18n import MISSING_HEADER, latin_text
from trellis.testing import ADMIN

pytestmark = pytest.mark.browser
PW = "pw-123456"

#: English a Chinese page may show (as tests/test_i18n.py): the rule builder's
#: operators, FAB printing an empty cell as "None", "LDAP" in FAB's own Chinese for
#: the user form (a protocol's name, as the allowed "SQL"), and the plugins' identifiers
#: (``<code>scoring</code>`` beside the translated label on the plugins page: what
#: an admin types in ``trellis plugins enable`` and ``TRELLIS_PLUGINS``).  A label
#: looked up without a translation is still reported by ``X-Trellis-Untranslated``.
ALLOWED = ["AND", "OR", "NOT", "None", "LDAP", "core", *PLUGINS]
#: Links the checker does not follow: they change state or leave the session.
SKIP_LINK = re.compile(r"/logout|/lang/|/action|/delete/|/download|/export|/unsubscribe|"
                       r"/swagger|/api/v1/_openapi")


#: What the tour types, in the language of the tour (a Chinese user types Chinese),
#: and the sales menu the new user sees: no language chosen yet, so the browser's
#: (English).
TEXT = {
    "en": {"first_name": "Tia", "last_name": "Tour", "role": "Sales Rep", "sales_menu": "Sales",
           "deal": "Tour deal", "segment": "Tour segment", "campaign": "Tour campaign",
           "reply": "Thanks for waiting: this is fixed now."},
    "zh_CN": {"first_name": "婷", "last_name": "陶", "role": "销售代表", "sales_menu": "Sales",
              "deal": "巡览商机", "segment": "巡览细分", "campaign": "巡览营销活动",
              "reply": "感谢您的耐心等待：问题已经解决。"},
}


class Links:
    """Every same-host link on the pages of the tour, fetched once with the
    browser's session: none may answer 404 or 5xx."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.seen: set[str] = set()
        self.broken: list[str] = []

    def check(self, where: str) -> None:
        hrefs = self.page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
        for href in hrefs:
            url = urldefrag(href).url
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or parts.hostname != HOST:
                continue
            if url in self.seen or SKIP_LINK.search(parts.path):
                continue
            self.seen.add(url)
            status = self.page.request.get(url, max_redirects=5).status
            if status == 404 or status >= 500:
                self.broken.append(f"{url} -> {status} (linked from {where})")

    def assert_clean(self) -> None:
        assert not self.broken, "broken links:\n" + "\n".join(self.broken)


class Untranslated:
    """In a Chinese tour: messages the server looked up without a translation
    (every response's ``X-Trellis-Untranslated``) and English left on a page."""

    def __init__(self, page: Any) -> None:
        self.found: list[str] = []
        page.on("response", self.on_response)

    def on_response(self, response: Any) -> None:
        missing = response.headers.get(MISSING_HEADER.lower())
        if missing:
            self.found.append(f"{response.url}: {missing}")

    def check_page(self, page: Any, where: str) -> None:
        english = latin_text(page.content(), ALLOWED)
        if english:
            self.found.append(f"{where}: {english}")

    def assert_clean(self) -> None:
        assert not self.found, "untranslated:\n" + "\n".join(self.found)


class Tour:
    """The page, the server's base URL and what every step must leave clean."""

    def __init__(self, page: Any, base: str, lang: str) -> None:
        self.page, self.base, self.lang = page, base, lang
        self.text = TEXT[lang]
        self.links = Links(page)
        self.untranslated = Untranslated(page) if lang != "en" else None
        self.shots = 0

    def go(self, path: str) -> Any:
        response = self.page.goto(self.base + path)
        assert response is not None and response.status == 200, (path, response and
                                                                  response.status)
        return response

    def shot(self, name: str) -> None:
        """A screenshot of the page, then its links checked."""
        self.shots += 1
        folder = ARTIFACTS / "tour" / self.lang
        folder.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(folder / f"{self.shots:02d}-{name}.png"), full_page=True)
        where = f"{name} ({urlsplit(self.page.url).path})"
        self.links.check(where)
        if self.untranslated is not None:
            self.untranslated.check_page(self.page, where)

    @contextmanager
    def as_user(self, username: str, password: str = PW) -> Iterator[None]:
        page = self.page
        page.goto(f"{self.base}/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        with page.expect_navigation():
            page.click("input[type=submit]")
        assert urlsplit(page.url).path != "/login/", f"{username} could not log in"
        try:
            yield
        finally:
            page.goto(f"{self.base}/logout/")


#: Both languages walk every journey; the Chinese one also fails on any English left
#: (``Untranslated``): flash messages, the JavaScript's words, FAB's forms, coded
#: values, role and activity type names, and the data the tour types are Chinese.
@pytest.fixture(params=["en", "zh_CN"])
def demo(request, trellis_app_factory, smtp_server, monkeypatch, tmp_path):
    """Every plugin with its demo data and demo users in one language (each demo
    user's language too); e-mail to a real SMTP server."""
    lang = request.param
    controller, collector = smtp_server
    monkeypatch.setenv("TRELLIS_INSTANCE_PATH", str(tmp_path))
    app = trellis_app_factory(plugins=PLUGINS, config={
        "TRELLIS_SMTP_HOST": controller.hostname, "TRELLIS_SMTP_PORT": controller.port,
        "TRELLIS_I18N_REPORT_MISSING": lang != "en"})
    with app.app_context():
        from trellis.demo import load_demo

        load_demo(contacts=60, users_password=PW, locale=lang)
        if lang != "en":
            admin = app.appbuilder.sm.find_user(username=ADMIN[0])
            admin.first_name, admin.last_name = "安", "管理员"
            db.session.commit()
    return app, collector, lang


def _admin(tour: Tour, app: Any) -> None:
    """Disable and enable a plugin; create a user, who can then log in."""
    from playwright.sync_api import expect

    page = tour.page
    with tour.as_user(*ADMIN):
        tour.go("/plugins/")
        expect(row(page, "scoring")).to_have_count(1)
        tour.shot("admin-plugins")
        ext = app.extensions["trellis"]
        for enabled in (False, True):  # the row's one button: Disable, then Enable
            with page.expect_navigation():
                row(page, "scoring").locator("button[type=submit]").click()
            with app.app_context():
                assert ext.is_enabled("scoring", fresh=True) is enabled
        tour.go("/users/add")
        page.fill("#first_name", tour.text["first_name"])
        page.fill("#last_name", tour.text["last_name"])
        page.fill("#username", "tia.tour")
        page.fill("#email", "tia.tour@example.com")
        page.select_option("#roles", label=tour.text["role"])
        page.fill("#password", PW)
        page.fill("#conf_password", PW)
        tour.shot("admin-new-user")
        with page.expect_navigation():
            page.locator("form button[type=submit], form input[type=submit]").last.click()
        expect(page.locator(".alert-success")).to_have_count(1)
        tour.shot("admin-users")
    with tour.as_user("tia.tour"):
        expect(page.locator(".navbar")).to_contain_text(tour.text["sales_menu"])


def _rep(tour: Tour, app: Any) -> None:
    """Convert one of the rep's leads into a deal and win it on the board."""
    from playwright.sync_api import expect
    from trellis_sales.models import Deal, Lead, Stage
    from flask_appbuilder.security.sqla.models import User

    page = tour.page
    with app.app_context():
        won = db.session.scalar(select(Stage.name).where(Stage.is_won.is_(True))
                                .order_by(Stage.id))
        anna = db.session.scalar(select(User.id).where(User.username == "anna.rep"))
        lead = db.session.scalar(select(Lead).where(
            Lead.owner_id == anna, Lead.status.in_(("new", "contacted", "qualified")))
            .order_by(Lead.id))
        assert lead is not None, "the demo has no open lead for anna.rep"
        lead_id = lead.id
    with tour.as_user("anna.rep"):
        tour.go("/leadview/list/")
        tour.shot("rep-leads")
        tour.go(f"/leadview/show/{lead_id}")
        page.locator("[id$='-convert_lead']").click()  # an <a href="#">: JS posts the action
        page.wait_for_url(f"**/leadconvert/convert/{lead_id}")
        page.fill("#deal_name", tour.text["deal"])
        page.fill("#amount", "12000")
        tour.shot("rep-convert")
        with page.expect_navigation():
            page.click("#convert-lead-form button[type=submit]")
        expect(page.locator(".alert-success")).to_contain_text(tour.text["deal"])
        tour.shot("rep-contact")
        with app.app_context():
            deal_id = db.session.scalar(select(Deal.id).where(Deal.name == tour.text["deal"]))
        tour.go("/sales/board/")
        card = page.locator(f'.board-card[data-deal-id="{deal_id}"]')
        expect(card).to_have_count(1)
        card.drag_to(page.locator(f'.board-column[data-stage-name="{won}"]'))
        expect(page.locator("#board-message")).to_contain_text(tour.text["deal"])
        tour.shot("rep-board")
    with app.app_context():
        deal = db.session.get(Deal, deal_id)
        assert deal.won_at is not None and deal.owner_id == anna


def _marketer(tour: Tour, app: Any, smtp: Any) -> None:
    """Build a segment in the rule builder, then send a campaign to it."""
    from playwright.sync_api import expect
    from trellis.models import Contact, Tag, contact_tag
    from trellis_marketing.models import Campaign, EmailTemplate, Segment

    page = tour.page
    with app.app_context():
        tag = db.session.scalar(
            select(Tag.name).join(contact_tag, contact_tag.c.tag_id == Tag.id)
            .join(Contact, Contact.id == contact_tag.c.contact_id)
            .where(Contact.email.is_not(None))
            .group_by(Tag.name).order_by(func.count().desc(), Tag.name))
        template = db.session.scalar(select(EmailTemplate.name).order_by(EmailTemplate.id))
    with tour.as_user("mara.marketer"):
        tour.go("/marketing/segments/builder/")
        expect(page.locator("#segment-builder")).to_have_attribute("data-ready", "1")
        first = page.locator("#rules-root > .rule-group > .group-children > .rule-row").first
        first.locator("[data-key=type]").select_option("tag")
        first.locator("[data-key=tag]").fill(tag)
        page.click("#preview-button")
        expect(page.locator("#preview-count")).to_have_text(re.compile(r"\d"))
        page.fill("#segment-name", tour.text["segment"])
        page.click("#save-button")
        expect(page.locator("#save-result")).to_have_attribute("data-id", re.compile(r"\d"))
        tour.shot("marketer-segment")
        tour.go("/campaignview/add")
        page.fill("#name", tour.text["campaign"])
        page.select_option("#segment", label=tour.text["segment"])
        page.select_option("#template", label=template)
        with page.expect_navigation():
            page.locator("form button[type=submit], form input[type=submit]").last.click()
        expect(page.locator(".alert-success")).to_have_count(1)
        with app.app_context():
            campaign_id = db.session.scalar(select(Campaign.id)
                                            .where(Campaign.name == tour.text["campaign"]))
        tour.go(f"/campaignview/show/{campaign_id}")
        page.click("#btn-action-CampaignView\\.action-send_now")
        page.click("#modal-confirm-ok")  # an <a href="#">: JS posts the action
        expect(page.locator(".alert-info")).to_contain_text("1")
        tour.shot("marketer-campaign")
    with app.app_context():
        from trellis_marketing import segments
        from trellis_marketing.models import Message

        segment = db.session.scalar(select(Segment).where(
            Segment.name == tour.text["segment"]))
        members = set(db.session.scalars(segments.members(segment)))
        sent = db.session.execute(select(Message.contact_id, Message.email).where(
            Message.campaign_id == campaign_id, Message.status == "sent")).all()
    # consent and bounces may hold some members back; nobody else gets it
    assert sent and {contact for contact, _ in sent} <= members
    delivered = [rcpt for envelope in smtp.envelopes for rcpt in envelope.rcpt_tos]
    assert all(delivered.count(email) >= 1 for _, email in sent)


def _agent(tour: Tour, app: Any) -> None:
    """Answer a ticket assigned to the agent and resolve it."""
    from playwright.sync_api import expect
    from flask_appbuilder.security.sqla.models import User
    from trellis_service.models import Ticket, TicketMessage

    page = tour.page
    with app.app_context():
        sam = db.session.scalar(select(User.id).where(User.username == "sam.agent"))
        ticket_id = db.session.scalar(select(Ticket.id).where(
            Ticket.assignee_id == sam, Ticket.status.in_(("new", "open"))).order_by(Ticket.id))
        assert ticket_id is not None, "the demo has no open ticket for sam.agent"
    with tour.as_user("sam.agent"):
        tour.go("/ticketview/list/")
        tour.shot("agent-tickets")
        tour.go(f"/ticketview/show/{ticket_id}")
        tour.shot("agent-ticket")
        tour.go(f"/ticketmessageview/add?_flt_0_ticket={ticket_id}")
        page.select_option("#kind", "reply")
        page.fill("#body", tour.text["reply"])
        with page.expect_navigation():
            page.locator("form button[type=submit], form input[type=submit]").last.click()
        tour.go(f"/ticketview/edit/{ticket_id}")
        page.fill("#status", "resolved")
        with page.expect_navigation():
            page.locator("form button[type=submit], form input[type=submit]").last.click()
        expect(page.locator(".alert-danger")).to_have_count(0)
        tour.go(f"/ticketview/show/{ticket_id}")
        tour.shot("agent-resolved")
    with app.app_context():
        ticket = db.session.get(Ticket, ticket_id)
        assert ticket.status == "resolved" and ticket.resolved_at is not None
        replies = db.session.scalars(select(TicketMessage.body).where(
            TicketMessage.ticket_id == ticket_id, TicketMessage.kind == "reply")).all()
        assert tour.text["reply"] in replies


def _manager(tour: Tour, app: Any) -> None:
    """The dashboard with every widget drawn, then the pipeline board."""
    from playwright.sync_api import expect

    page = tour.page
    with tour.as_user("max.manager"):
        tour.go("/dashboard/")
        expect(page.locator(".tr-widget").first).to_be_visible()
        expect(page.locator(".tr-error")).to_have_count(0)
        charts = page.locator(".tr-chart")
        expect(page.locator(".tr-chart[data-drawn='1']")).to_have_count(charts.count())
        tour.shot("manager-dashboard")
        tour.go("/sales/board/")
        tour.shot("manager-board")


def test_tour(demo, watched_page):
    app, smtp, lang = demo
    page, watch = watched_page
    with serve(app) as base:
        tour = Tour(page, base, lang)
        _admin(tour, app)
        _rep(tour, app)
        _marketer(tour, app, smtp)
        _agent(tour, app)
        _manager(tour, app)
    watch.assert_clean()
    tour.links.assert_clean()
    if tour.untranslated is not None:
        tour.untranslated.assert_clean()
    assert len(tour.links.seen) > 50  # the menus' pages, the records' links

"""English and Simplified Chinese: complete and compiled catalogs of the core and
the five plugins, pages rendered for a Chinese user without English left in
them, the language preference that follows a user across sessions, locale
formatting of money, numbers and dates, Chinese demo data, and the detector of
untranslated strings the browser tour reuses."""

from __future__ import annotations

import shutil
from datetime import date
from decimal import Decimal
from urllib.parse import unquote

import pytest
from babel.messages.pofile import read_po, write_po
from flask import g, render_template_string
from flask.cli import ScriptInfo
from sqlalchemy import select

from trellis.cli import main
from trellis.db import db
from trellis.i18n import (MISSING_HEADER, format_day, format_money, format_number,
                          latin_text, person_name)
from trellis.i18n_catalogs import check, compile_catalogs, distributions, extract, po_path
from trellis.i18n_catalogs import runtime_strings
from trellis.testing import ADMIN, build_app, csrf_token, dispose

from tests.conftest import ALL_PLUGINS
from tests.test_browser import browser, watched_page  # noqa: F401 - fixtures

PW = "pw-123456"
DISTRIBUTIONS = ["core", *ALL_PLUGINS]
#: Pages checked for English left over, with Chinese each must show.
PAGES = {
    "/dashboard/": ["仪表板", "调整组件", "各阶段销售管道", "工单积压"],
    "/contactview/list/": ["联系人", "名", "姓", "保存此视图"],
    "/dealview/list/": ["商机", "阶段", "金额", "预计成交日期"],
    "/sales/board/": ["销售管道看板", "按赢率加权", "负责人"],
    "/leadview/list/": ["线索", "来源", "状态"],
    "/ticketview/list/": ["工单", "优先级", "渠道", "处理中"],
    "/segmentview/list/": ["细分", "动态"],
    "/marketing/segments/builder/": ["细分构建器", "保存细分"],
    "/preferences/": ["偏好设置", "语言", "时区"],
    "/notifications/": ["通知"],
}
#: The top menu's categories a Chinese manager sees.
MENU = ["仪表板", "报表", "客户管理", "销售", "客户服务", "市场营销", "评分", "集成", "我的",
        "系统管理"]
#: English a Chinese page may show: operators of the rule builder, a person's name
#: that is not Chinese, and FAB printing an empty cell as "None".
ALLOWED = ["AND", "OR", "NOT", "None"]


@pytest.fixture(scope="module")
def catalog_app(tmp_path_factory):
    """Every plugin booted (no database needed: catalogs come from code and views)."""
    from trellis.app import create_app

    folder = tmp_path_factory.mktemp("catalogs")
    return create_app(config={"TESTING": True, "TRELLIS_INSTANCE_PATH": str(folder),
                              "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/none.db",
                              "SECRET_KEY": "test-secret-key-of-sufficient-length"},
                      plugins=ALL_PLUGINS)


@pytest.fixture(scope="module")
def zh_app(tmp_path_factory):
    """Every plugin, the Chinese demo (every user's language: zh_CN), report mode on."""
    from trellis.demo import load_demo

    app = build_app(tmp_path_factory.mktemp("i18n"), ALL_PLUGINS,
                    config={"TRELLIS_I18N_REPORT_MISSING": True})
    with app.app_context():
        load_demo(contacts=30, users_password=PW, locale="zh_CN")
        admin = app.appbuilder.sm.find_user(username=ADMIN[0])
        admin.first_name, admin.last_name = "安", "管理员"  # a Chinese administrator
        db.session.commit()
    yield app
    dispose(app)


def login(client, username: str, password: str = PW, **headers):
    token = csrf_token(client.get("/login/", headers=headers).get_data(as_text=True))
    answer = client.post("/login/", data={"username": username, "password": password,
                                          "csrf_token": token}, headers=headers)
    assert answer.status_code == 302, answer.get_data(as_text=True)[:300]
    return client


def missing(response) -> list[str]:
    return [unquote(m) for m in response.headers.get(MISSING_HEADER, "").split(",") if m]


# ------------------------------------------------------------------ catalogs


def test_every_catalog_is_complete_and_compiled(catalog_app):
    app = catalog_app
    folders = distributions(app)
    runtime = runtime_strings(app)
    assert set(DISTRIBUTIONS) <= set(folders)
    for name in DISTRIBUTIONS:
        template = extract(folders[name], runtime.get(name))
        assert len(template) > 50, name  # the source and its runtime labels were found
        assert check(folders[name], template) == [], name
    # labels that are not in the source are in the catalogs: menus, FAB's column
    # labels, widgets, coded values
    assert {"Contacts", "First Name", "New contacts per month"} <= set(runtime["core"])
    assert {"Pipeline board", "open", "urgent"} <= set(runtime["sales"]) | set(runtime["service"])


def test_check_finds_a_missing_translation_and_a_stale_mo(tmp_path, catalog_app):
    source = distributions(catalog_app)["sales"]
    folder = tmp_path / "trellis_sales"
    shutil.copytree(source / "translations", folder / "translations")
    po = po_path(folder, "zh_CN")
    with po.open("rb") as fh:
        catalog = read_po(fh, locale="zh_CN")
    catalog["Pipeline board"].string = "管道看板（改）"
    catalog["Leads"].string = ""
    with po.open("wb") as fh:
        write_po(fh, catalog)
    problems = check(folder)
    assert any("'Leads' has no translation" in p for p in problems)
    assert any("out of date with its .po" in p for p in problems)
    catalog["Leads"].string = "线索"
    with po.open("wb") as fh:
        write_po(fh, catalog)
    compile_catalogs(folder)
    assert check(folder) == []
    # a string the source has and the .po lacks
    template = extract(source)
    template.add("A brand-new label")
    assert any("'A brand-new label' is not in the catalog" in p
               for p in check(folder, template))


def cli(app, *args):
    return app.test_cli_runner().invoke(main, list(args), obj=ScriptInfo(create_app=lambda: app))


def test_cli_check(catalog_app):
    answer = cli(catalog_app, "i18n", "check", *DISTRIBUTIONS)
    assert answer.exit_code == 0 and "catalogs complete" in answer.output, answer.output
    answer = cli(catalog_app, "i18n", "check", "nosuchplugin")
    assert answer.exit_code != 0 and "not a loaded plugin: nosuchplugin" in answer.output


# ------------------------------------------------------------------ pages in Chinese


def test_pages_for_a_chinese_user_are_chinese(zh_app):
    client = login(zh_app.test_client(), *ADMIN)
    for url, expected in PAGES.items():
        answer = client.get(url)
        html = answer.get_data(as_text=True)
        assert answer.status_code == 200, url
        for text in expected:
            assert text in html, (url, text)
        assert missing(answer) == [], (url, missing(answer))
        assert latin_text(html, ALLOWED) == [], (url, latin_text(html, ALLOWED))
    home = client.get("/dashboard/").get_data(as_text=True)
    navbar = home[home.index("navbar-collapse"):home.index("navbar-form")]
    for entry in MENU:
        assert entry in navbar, entry
    # the same pages for an English user are English
    from trellis.notification_views import save_preferences

    en_client = login(zh_app.test_client(), "max.manager")
    with zh_app.app_context():
        manager = zh_app.appbuilder.sm.find_user(username="max.manager").id
        save_preferences(manager, {"locale": "en"})
    try:
        page = en_client.get("/ticketview/list/").get_data(as_text=True)
        assert "Priority" in page and "优先级" not in page
    finally:
        with zh_app.app_context():
            save_preferences(manager, {"locale": "zh_CN"})


def test_chinese_demo_data(zh_app):
    from trellis.models import Account, Contact, UserPreference
    from trellis_sales.models import Deal, Stage
    from trellis_service.models import Ticket

    with zh_app.app_context():
        contact = db.session.scalars(select(Contact)).first()
        assert contact.name == f"{contact.last_name}{contact.first_name}"  # 王伟
        assert all("\u4e00" <= ch <= "\u9fff" for ch in contact.name)
        assert contact.email.isascii()
        assert "有限公司" in db.session.scalars(select(Account.name)).first() or \
            db.session.scalars(select(Account.name)).first().endswith("社")
        assert {"资格确认", "赢单", "输单"} <= set(db.session.scalars(select(Stage.name)))
        assert any(s in (db.session.scalars(select(Deal.name)).first())
                   for s in ("推广项目", "续约", "扩容", "试点"))
        assert db.session.scalars(select(Ticket.subject)).first() in {
            "无法登录", "打印机报错", "发票金额似乎有误", "如何导出我的数据？", "无法识别扫描枪",
            "退款申请", "页面加载缓慢", "修改账单地址"}
        prefs = db.session.scalars(select(UserPreference)).all()
        assert prefs and {p.locale for p in prefs} == {"zh_CN"}


def test_demo_refuses_an_unknown_locale(trellis_app_factory):
    from trellis.demo import load_demo

    app = trellis_app_factory()
    with app.app_context():
        with pytest.raises(ValueError, match="locale"):
            load_demo(contacts=2, locale="xx")
    answer = cli(app, "demo", "--contacts", "2", "--locale", "xx")
    assert answer.exit_code != 0 and "--locale" in answer.output


# ------------------------------------------------------------------ the language of a user


def test_language_follows_the_user_and_falls_back_to_the_browser(
        trellis_app_factory, make_user):
    app = trellis_app_factory(config={"TRELLIS_I18N_REPORT_MISSING": True})
    make_user(app, "lin", ["CRM User"])
    # no preference: the browser's Accept-Language, else English
    chinese_browser = login(app.test_client(), "lin", **{"Accept-Language": "zh-CN,zh;q=0.9"})
    page = chinese_browser.get("/contactview/list/",
                               headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert "联系人" in page.get_data(as_text=True)
    assert "用户名" in app.test_client().get("/login/", headers={
        "Accept-Language": "zh"}).get_data(as_text=True)  # FAB's own page, its catalog
    plain = login(app.test_client(), "lin")
    assert "First Name" in plain.get("/contactview/list/").get_data(as_text=True)
    # chosen on My preferences: stored, and every new session (another device) has it
    form = plain.get("/preferences/").get_data(as_text=True)
    assert 'value="zh_CN"' in form
    answer = plain.post("/preferences/", data={"csrf_token": csrf_token(form),
                                               "locale": "zh_CN", "timezone": ""})
    assert answer.status_code == 302
    other_device = login(app.test_client(), "lin", **{"Accept-Language": "en"})
    page = other_device.get("/contactview/list/", headers={"Accept-Language": "en"})
    html = page.get_data(as_text=True)
    assert "名" in html and "First Name" not in html and missing(page) == []
    # the navbar's language menu shows the stored choice, and stores a new one
    assert 'flag cn' in html
    other_device.get("/lang/en")
    assert "First Name" in login(app.test_client(), "lin").get(
        "/contactview/list/").get_data(as_text=True)
    # a language that is not offered: the field is named, nothing stored
    api = app.test_client()
    login(api, "lin")
    bad = api.put("/api/v1/preferences/", json={"locale": "klingon"})
    assert bad.status_code == 400 and "locale" in bad.get_json()["message"]
    assert api.get("/api/v1/preferences/").get_json()["result"]["locale"] == "en"


# ------------------------------------------------------------------ formatting


def test_money_numbers_and_dates_follow_the_locale(trellis_app_factory):
    app = trellis_app_factory()
    day = date(2026, 12, 2)
    with app.test_request_context("/", headers={"Accept-Language": "zh-CN"}):
        assert format_money(Decimal("1234.5"), "CNY") == "¥1,234.50"
        assert format_number(Decimal("1234.5"), 2) == "1,234.50"
        assert format_day(day) == "2026年12月2日"
        assert render_template_string("{{ 1234.5|money('CNY') }} {{ d|day }} {{ _('Save') }}",
                                      d=day) == "¥1,234.50 2026年12月2日 保存"
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        assert format_money(Decimal("1234.5"), "EUR") == "€1,234.50"
        assert format_day(day) == "Dec 2, 2026"
        assert render_template_string("{{ 1234.5|money('USD') }}") == "$1,234.50"
    with app.app_context():  # no request: English, and the company currency by default
        assert format_money(10) == "€10.00"
    assert person_name("伟", "王") == "王伟" and person_name("Ada", "Lovelace") == "Ada Lovelace"


# ------------------------------------------------------------------ the detector


def test_untranslated_strings_are_reported(trellis_app_factory):
    app = trellis_app_factory(config={"TRELLIS_I18N_REPORT_MISSING": True})

    @app.route("/i18n-probe")
    def probe():
        return render_template_string(
            "<p>{{ _('Save') }}</p><p>{{ _('A label nobody translated') }}</p>"
            "<p>Hard-coded English</p><script>var x = 'code';</script>"
            "<p>wang.wei@example.com /shop/cart deal.created</p>")

    answer = app.test_client().get("/i18n-probe", headers={"Accept-Language": "zh-CN"})
    assert missing(answer) == ["A label nobody translated"]
    assert latin_text(answer.get_data(as_text=True)) == [
        "A label nobody translated", "Hard-coded English"]
    english = app.test_client().get("/i18n-probe", headers={"Accept-Language": "en"})
    assert MISSING_HEADER not in english.headers  # English is the source language
    with app.test_request_context("/", headers={"Accept-Language": "zh-CN"}):
        render_template_string("{{ _('Save') }}")
        assert not g.get("trellis_untranslated")


# ------------------------------------------------------------------ in a browser


def test_a_chinese_user_sees_a_chinese_menu_and_list_in_the_browser(
        zh_app, watched_page):  # noqa: F811 - fixture
    from playwright.sync_api import expect

    from tests.test_browser import serve

    page, watch = watched_page
    with serve(zh_app) as base:
        page.goto(f"{base}/login/")
        page.fill("input[name=username]", "anna.rep")
        page.fill("input[name=password]", PW)
        with page.expect_navigation():
            page.click("input[type=submit]")
        expect(page.locator(".navbar")).to_contain_text("销售")
        expect(page.locator(".navbar")).to_contain_text("客户管理")
        page.click(".navbar a.dropdown-toggle:has-text('销售')")
        expect(page.locator(".navbar .dropdown-menu:visible")).to_contain_text("线索")
        with page.expect_navigation():
            page.click(".navbar .dropdown-menu:visible a:has-text('商机')")
        table = page.locator("table.table-bordered")
        expect(table).to_contain_text("阶段")
        expect(table).to_contain_text("金额")
        html = page.content()
        assert latin_text(html, ALLOWED) == [], latin_text(html, ALLOWED)
        with page.expect_navigation():
            page.goto(f"{base}/sales/board/")
        expect(page.locator("#pipeline-board")).to_contain_text("资格确认")
        expect(page.locator("#pipeline-board")).to_contain_text("加权")
        watch.assert_clean()

"""Realistic, seeded demo data: accounts, contacts, notes and timelines."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any, Callable

from flask import current_app
from sqlalchemy import func, insert, select

from trellis.db import db, utcnow
from trellis.extension import current_trellis
from trellis.models import Account, Activity, Contact, Note, SavedReport, Tag

FIRST = ["Anna", "Ben", "Chloé", "David", "Elif", "Farah", "Gustav", "Hana", "Ivan", "Julia",
         "Kenji", "Lena", "Mateo", "Nora", "Omar", "Priya", "Quentin", "Rosa", "Sven", "Tariq",
         "Uma", "Viktor", "Wei", "Xenia", "Yusuf", "Zoe", "Li", "Mei", "Jun", "Ying"]
LAST = ["Andersen", "Bauer", "Chen", "Dubois", "Eriksen", "Fischer", "García", "Hoffmann",
        "Ito", "Jensen", "Kowalski", "Larsen", "Müller", "Novak", "Okafor", "Patel", "Rossi",
        "Schmidt", "Tanaka", "Wang", "Zhang", "Liu", "Nguyen", "Silva", "Kim"]
COMPANIES = [("Northwind Traders", "northwind.example", "Retail", "US"),
             ("Contoso Pharma", "contoso.example", "Healthcare", "DE"),
             ("Fabrikam Motors", "fabrikam.example", "Manufacturing", "JP"),
             ("Tailspin Air", "tailspin.example", "Aviation", "GB"),
             ("Wingtip Toys", "wingtip.example", "Retail", "FR"),
             ("Adventure Works", "adventure-works.example", "Sports", "US"),
             ("Litware Software", "litware.example", "Software", "IN"),
             ("Proseware Labs", "proseware.example", "Biotech", "CH"),
             ("Blue Yonder Logistics", "blueyonder.example", "Logistics", "NL"),
             ("Coho Vineyard", "coho.example", "Food & Beverage", "IT"),
             ("Lucerne Publishing", "lucerne.example", "Media", "CN"),
             ("Margie's Travel", "margies.example", "Travel", "ES")]
TITLES = ["CEO", "CTO", "Head of Purchasing", "Operations Manager", "Marketing Lead",
          "Office Manager", "IT Director", "Sales Director", "Procurement Specialist"]
TAGS = [("VIP", "#c62828"), ("Newsletter", "#1565c0"), ("Partner", "#2e7d32"),
        ("Prospect", "#f9a825")]
ACTIVITIES = [("email", "Sent product brochure"), ("call", "Discovery call"),
              ("meeting", "On-site visit"), ("email", "Follow-up on quote"),
              ("call", "Support check-in")]
NOTE = "{first} prefers e-mail in the morning."
REPORT = "New contacts by month"

#: The same demo in Simplified Chinese (``trellis demo --locale zh_CN``): names as
#: (characters, pinyin for the e-mail address), Chinese companies, titles, tags...
FIRST_ZH = [("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"),
            ("强", "qiang"), ("磊", "lei"), ("洋", "yang"), ("艳", "yan"), ("勇", "yong"),
            ("军", "jun"), ("杰", "jie"), ("娟", "juan"), ("涛", "tao"), ("明", "ming"),
            ("超", "chao"), ("秀英", "xiuying"), ("建华", "jianhua"), ("晓东", "xiaodong"),
            ("丽娟", "lijuan"), ("志强", "zhiqiang"), ("海燕", "haiyan"), ("子涵", "zihan"),
            ("雨桐", "yutong"), ("浩然", "haoran"), ("欣怡", "xinyi")]
LAST_ZH = [("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"),
           ("杨", "yang"), ("黄", "huang"), ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"),
           ("徐", "xu"), ("孙", "sun"), ("马", "ma"), ("朱", "zhu"), ("胡", "hu"),
           ("郭", "guo"), ("何", "he"), ("林", "lin"), ("罗", "luo"), ("高", "gao")]
COMPANIES_ZH = [("北风贸易有限公司", "beifeng.example", "零售", "CN"),
                ("康泰医药股份有限公司", "kangtai.example", "医疗健康", "CN"),
                ("华锐汽车制造有限公司", "huarui.example", "制造业", "CN"),
                ("云翔航空服务有限公司", "yunxiang.example", "航空", "CN"),
                ("童趣玩具有限公司", "tongqu.example", "零售", "CN"),
                ("远途运动用品有限公司", "yuantu.example", "体育用品", "CN"),
                ("智软信息技术有限公司", "zhiruan.example", "软件", "CN"),
                ("博研生物科技有限公司", "boyan.example", "生物技术", "CN"),
                ("蓝海物流有限公司", "lanhai.example", "物流", "CN"),
                ("青山酒业有限公司", "qingshan.example", "食品饮料", "CN"),
                ("文澜出版社", "wenlan.example", "传媒", "CN"),
                ("畅游国际旅行社", "changyou.example", "旅游", "CN")]
TITLES_ZH = ["总经理", "技术总监", "采购主管", "运营经理", "市场负责人", "行政经理", "IT 总监",
             "销售总监", "采购专员"]
TAGS_ZH = [("重要客户", "#c62828"), ("订阅电子报", "#1565c0"), ("合作伙伴", "#2e7d32"),
           ("潜在客户", "#f9a825")]
ACTIVITIES_ZH = [("email", "发送产品手册"), ("call", "需求沟通电话"), ("meeting", "上门拜访"),
                 ("email", "报价跟进"), ("call", "客服回访")]
NOTE_ZH = "{name}喜欢上午通过邮件联系。"
REPORT_ZH = "每月新增联系人"
#: ``trellis demo --locale``: the languages the demo data comes in.
DEMO_LOCALES = ("en", "zh_CN")


def demo_text(locale: str, table: dict[str, str]) -> Callable[[str], str]:
    """For a plugin's demo data: ``table``'s Chinese for an English text when the
    demo is in Chinese (``locale`` ``zh_CN``), else the text itself."""
    if not locale.startswith("zh"):
        return lambda text: text
    return lambda text: table.get(text, text)


def _people(locale: str) -> dict[str, Any]:
    """The demo's names, companies, titles, tags, activities in ``locale``."""
    if locale.startswith("zh"):
        return {"first": FIRST_ZH, "last": LAST_ZH, "companies": COMPANIES_ZH,
                "titles": TITLES_ZH, "tags": TAGS_ZH, "activities": ACTIVITIES_ZH,
                "note": NOTE_ZH, "report": REPORT_ZH, "phone": "+86 1{}",
                "manager": ("思远", "马")}
    return {"first": [(n, n) for n in FIRST], "last": [(n, n) for n in LAST],
            "companies": COMPANIES, "titles": TITLES, "tags": TAGS, "activities": ACTIVITIES,
            "note": NOTE, "report": REPORT, "phone": "+1 555 {}", "manager": ("Max", "Manager")}


def load_demo(contacts: int = 200, seed: int = 7,
              users_password: str | None = None, locale: str = "en") -> dict[str, int]:
    """Create demo records (idempotent: does nothing if contacts already exist).

    With ``users_password``, plugins may add demo users who log in with it.
    ``locale`` ``zh_CN`` makes every name, company and subject Chinese and sets
    every user's language preference to it."""
    if locale not in DEMO_LOCALES:
        raise ValueError(f"locale: use one of {', '.join(DEMO_LOCALES)}")
    if db.session.scalar(select(func.count()).select_from(Contact)):
        return {"contacts (already present)": db.session.scalar(
            select(func.count()).select_from(Contact))}
    rng = random.Random(seed)
    data = _people(locale)
    tags = [Tag(name=n, color=c) for n, c in data["tags"]]
    accounts = [Account(name=n, domain=d, industry=i, country=c)
                for n, d, i, c in data["companies"]]
    db.session.add_all(tags + accounts)
    db.session.flush()
    now = utcnow()
    people = []
    for i in range(contacts):
        (first, first_ascii), (last, last_ascii) = (rng.choice(data["first"]),
                                                    rng.choice(data["last"]))
        account = rng.choice(accounts)
        person = Contact(first_name=first, last_name=last, title=rng.choice(data["titles"]),
                         email=f"{first_ascii}.{last_ascii}.{i}@{account.domain}".lower(),
                         phone=data["phone"].format(rng.randint(1000000, 9999999)),
                         account=account,
                         created_on=now - timedelta(days=rng.randint(1, 720)))
        person.tags = rng.sample(tags, rng.randint(0, 2))
        people.append(person)
    db.session.add_all(people)
    db.session.flush()
    activity_rows = []
    for person in people:
        for _ in range(rng.randint(1, 6)):
            kind, subject = rng.choice(data["activities"])
            activity_rows.append({
                "type": kind, "subject": subject, "contact_id": person.id,
                "account_id": person.account_id, "plugin": "core",
                "occurred_at": now - timedelta(days=rng.randint(0, 365), hours=rng.randint(0, 23)),
            })
    db.session.execute(insert(Activity), activity_rows)
    notes = [Note(body=data["note"].format(first=p.first_name, name=p.name), contact=p)
             for p in people[: contacts // 5]]
    db.session.add_all(notes)
    # a shared report of the report builder, ready to put on a dashboard
    db.session.add(SavedReport(name=data["report"], shared=True, definition={
        "model": "contact", "group_by": [{"field": "created_on", "bucket": "month"}],
        "measures": [{"op": "count"}], "chart": "series"}))
    if users_password:  # a CRM-wide manager: the full dashboard
        sm = current_app.appbuilder.sm
        if sm.find_user(username="max.manager") is None and sm.find_role("Manager"):
            sm.add_user("max.manager", *data["manager"], "max.manager@example.com",
                        sm.find_role("Manager"), users_password)
    counts = {"accounts": len(accounts), "contacts": len(people),
              "activities": len(activity_rows), "notes": len(notes), "reports": 1}
    ids = [p.id for p in people]
    ext = current_trellis()
    for plugin in ext.plugins.loaded():
        if ext.is_enabled(plugin.name):
            result = ext.plugins.call_one(plugin.name, "trellis_demo_data", session=db.session,
                                          rng=rng, contact_ids=ids,
                                          users_password=users_password, locale=locale)
            counts.update(result or {})
    if locale != "en":  # every user, the demo's included, sees the demo's language
        _prefer_locale(locale)
    db.session.commit()
    return counts


def _prefer_locale(locale: str) -> None:
    """Set ``locale`` as the language of every user who has not chosen one."""
    from flask_appbuilder.security.sqla.models import User

    from trellis.models import UserPreference

    users = set(db.session.scalars(select(User.id)))
    prefs = {p.user_id: p for p in db.session.scalars(select(UserPreference))}
    for user_id in sorted(users):
        pref = prefs.get(user_id)
        if pref is None:
            db.session.add(UserPreference(user_id=user_id, email_notifications=False,
                                          locale=locale))
        elif not pref.locale:
            pref.locale = locale

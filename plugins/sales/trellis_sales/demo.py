"""Realistic sales demo data: a sales team, products, leads, deals that moved
through the pipeline over months, orders with repeat customers, tasks and quotas,
so the board, the forecast and every report have something to show."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import select, update

from trellis.db import utcnow
from trellis.demo import demo_text
from trellis.models import Activity, Contact, ExchangeRate, Team
from trellis_sales.behaviour import default_pipeline
from trellis_sales.models import (
    Deal,
    DealLine,
    DealStageHistory,
    FollowUpPlan,
    FollowUpStep,
    Lead,
    Order,
    OrderLine,
    Product,
    Quota,
    Task,
)

PRODUCTS = [("TRL-STARTER", "Starter licence", "490"), ("TRL-PRO", "Professional licence", "1490"),
            ("TRL-ENT", "Enterprise licence", "4900"), ("SVC-ONBOARD", "Onboarding package", "2500"),
            ("SVC-TRAIN", "Training day", "1200"), ("SUP-PREM", "Premium support (year)", "3600"),
            ("HW-SCAN", "Barcode scanner", "189"), ("HW-TERM", "Point-of-sale terminal", "899")]
LEADS = [("Lena", "Vogel", "Vogel Bau", "Construction", "DE"),
         ("Marco", "Bianchi", "Bianchi Foods", "Food & Beverage", "IT"),
         ("Aiko", "Sato", "Sato Robotics", "Manufacturing", "JP"),
         ("Chen", "Wei", "Wei Trading", "Retail", "CN"),
         ("Sofia", "Lopez", "Lopez Viajes", "Travel", "ES"),
         ("Oliver", "Smith", "Smith & Sons", "Logistics", "GB"),
         ("Emma", "Dubois", "Atelier Dubois", "Retail", "FR"),
         ("Noah", "Jensen", "Jensen Energi", "Energy", "DK")]
SOURCES = ["web_form", "campaign", "referral", "event", "import", "manual"]
STATUSES = ["new", "new", "contacted", "contacted", "qualified", "disqualified"]
LOST_REASONS = ["Price", "Went with a competitor", "No budget", "Timing", "No decision"]
#: (username, first name, last name, role); the manager leads the team of reps.
USERS = [("anna.rep", "Anna", "Berg", "Sales Rep"), ("ben.rep", "Ben", "Okafor", "Sales Rep"),
         ("mia.manager", "Mia", "Larsen", "Sales Manager")]
#: The Chinese demo (``trellis demo --locale zh_CN``).
ZH = {"Starter licence": "入门版许可", "Professional licence": "专业版许可",
      "Enterprise licence": "企业版许可", "Onboarding package": "上线实施服务包",
      "Training day": "培训日", "Premium support (year)": "高级支持（年）",
      "Barcode scanner": "条码扫描枪", "Point-of-sale terminal": "收银终端",
      "Price": "价格", "Went with a competitor": "选择了竞争对手", "No budget": "没有预算",
      "Timing": "时机不合适", "No decision": "未作决定", "Sales team": "销售团队",
      "New lead cadence": "新线索跟进节奏",
      "Call, then e-mail, then meet within a week.": "一周内先电话、再邮件、再见面。",
      "Intro call": "初次电话", "Send case studies": "发送客户案例", "Demo meeting": "产品演示会",
      "rollout": "推广项目", "renewal": "续约", "expansion": "扩容", "pilot": "试点",
      "Follow up on {}": "跟进：{}", "Sales pipeline": "销售管道",
      "Qualification": "资格确认", "Needs analysis": "需求分析", "Proposal": "方案报价",
      "Negotiation": "商务谈判", "Won": "赢单", "Lost": "输单", "New business": "新业务",
      "Anna": "安娜", "Berg": "王", "Ben": "斌", "Okafor": "李", "Mia": "米娅", "Larsen": "张"}
#: Leads of the Chinese demo: (given name, surname, company, industry, country, pinyin).
LEADS_ZH = [("静", "王", "王氏建筑", "建筑", "CN", "wang"),
            ("磊", "李", "李记食品", "食品饮料", "CN", "li"),
            ("敏", "张", "张江机器人", "制造业", "CN", "zhang"),
            ("伟", "陈", "陈氏贸易", "零售", "CN", "chen"),
            ("芳", "刘", "刘家旅行社", "旅游", "CN", "liu"),
            ("强", "赵", "赵氏物流", "物流", "CN", "zhao"),
            ("娜", "周", "周记服饰", "零售", "CN", "zhou"),
            ("杰", "吴", "吴越能源", "能源", "CN", "wu")]
#: Value of one unit in the company currency (EUR by default), from a year ago.
RATES = {"USD": Decimal("0.92"), "GBP": Decimal("1.17")}


def _users(session: Any, password: str | None, t: Any = lambda text: text) -> list[int]:
    """Demo reps and their manager in one team; the reps' ids ([] without a password)."""
    if not password:
        return []
    sm = current_app.appbuilder.sm
    users = {}
    for username, first, last, role in USERS:
        user = sm.find_user(username=username) or sm.add_user(
            username, t(first), t(last), f"{username}@example.com", sm.find_role(role),
            password)
        users[username] = user
    session.add(Team(name=t("Sales team"), manager_id=users["mia.manager"].id,
                     members=[users["anna.rep"], users["ben.rep"]]))
    return [users["anna.rep"].id, users["ben.rep"].id]


def _backdate(session: Any, deal: Deal, rng: Any) -> None:
    """Spread a deal's stage history from its creation date to a few weeks ago."""
    rows = session.scalars(select(DealStageHistory).where(DealStageHistory.deal_id == deal.id)
                           .order_by(DealStageHistory.id)).all()
    at = deal.created_on
    for i, row in enumerate(rows):
        row.entered_at = at
        if i < len(rows) - 1:
            at = min(at + timedelta(days=rng.randint(3, 21), hours=rng.randint(0, 8)),
                     utcnow() - timedelta(hours=len(rows) - i))
            row.left_at = at
    closed = {"won_at": at} if deal.stage.is_won else {"lost_at": at} if deal.stage.is_lost else {}
    session.execute(update(Deal).where(Deal.id == deal.id).values(last_activity_at=at, **closed))
    session.execute(update(Order).where(Order.deal_id == deal.id).values(ordered_at=at))
    session.execute(update(Activity).where(Activity.plugin == "sales",
                                           Activity.contact_id == deal.contact_id)
                    .values(occurred_at=at))


def _repeat_orders(session: Any, rng: Any, contacts: list[Contact], products: list[Product],
                   owners: list[int | None]) -> int:
    """Past purchases: some customers buy once, some again and again."""
    now, count = utcnow(), 0
    for contact in rng.sample(contacts, len(contacts) // 3):
        for _ in range(rng.choice([1, 1, 2, 3, 4])):
            order = Order(contact=contact, account=contact.account, owner_id=rng.choice(owners),
                          ordered_at=now - timedelta(days=rng.randint(10, 700)))
            for product in rng.sample(products, rng.randint(1, 2)):
                order.lines.append(OrderLine(product=product, quantity=rng.randint(1, 5),
                                             unit_price=product.price))
            session.add(order)
            count += 1
    return count


def load(session: Any, rng: Any, contact_ids: list[int],
         users_password: str | None = None, locale: str = "en") -> dict[str, int]:
    pipeline = default_pipeline(session)
    if pipeline is None:
        return {}
    t = demo_text(locale, ZH)
    if locale != "en":  # the default pipeline's names in the demo's language
        pipeline.name = t(pipeline.name)
        for stage in pipeline.stages:
            stage.name = t(stage.name)
    reps = _users(session, users_password, t)
    owners: list[int | None] = list(reps) or [None]
    today = date.today()
    for currency, rate in RATES.items():
        if not session.scalar(select(ExchangeRate.id).where(ExchangeRate.currency == currency)):
            session.add(ExchangeRate(currency=currency, rate=rate,
                                     valid_from=today - timedelta(days=365)))
    products = [Product(sku=s, name=t(n), price=Decimal(p)) for s, n, p in PRODUCTS]
    session.add_all(products)
    if not session.scalar(select(FollowUpPlan.id).limit(1)):
        session.add(FollowUpPlan(name=t("New lead cadence"),
                                 description=t("Call, then e-mail, then meet within a week."),
                                 steps=[FollowUpStep(day=1, kind="call", subject=t("Intro call")),
                                        FollowUpStep(day=3, kind="email",
                                                     subject=t("Send case studies")),
                                        FollowUpStep(day=7, kind="meeting",
                                                     subject=t("Demo meeting"))]))
    now = utcnow()
    leads = []
    for i in range(40):
        if locale == "en":
            first, last, company, industry, country = rng.choice(LEADS)
            host, person = company.split()[0].lower(), f"{first}.{last}"
        else:
            first, last, company, industry, country, host = rng.choice(LEADS_ZH)
            person = f"lead.{host}"
        leads.append(Lead(first_name=first, last_name=last, company=f"{company} {i}",
                          email=f"{person}.{i}@{host}{i}.example".lower(),
                          industry=industry, country=country, source=rng.choice(SOURCES),
                          status=rng.choice(STATUSES), owner_id=rng.choice(owners),
                          created_on=now - timedelta(hours=rng.randint(1, 24 * 90))))
    session.add_all(leads)
    session.flush()
    contacts = session.scalars(select(Contact).where(Contact.id.in_(contact_ids))).all()
    stages = pipeline.stages
    deals = tasks = 0
    for contact in rng.sample(contacts, min(60, len(contacts))):
        target = rng.choices(stages, weights=[5, 4, 4, 3, 4, 2])[0]
        deal = Deal(name=f"{contact.account.name if contact.account else contact.name} "
                         f"{t(rng.choice(['rollout', 'renewal', 'expansion', 'pilot']))}",
                    contact=contact, account=contact.account, pipeline=pipeline, stage=stages[0],
                    currency=rng.choice(["EUR", "EUR", "EUR", "USD", "GBP"]),
                    expected_close=(now + timedelta(days=rng.randint(-30, 120))).date(),
                    owner_id=rng.choice(owners),
                    created_on=now - timedelta(days=rng.randint(30, 300)))
        amount = Decimal("0")
        for product in rng.sample(products, rng.randint(1, 3)):
            quantity = rng.randint(1, 20)
            deal.lines.append(DealLine(product=product, quantity=quantity,
                                       unit_price=product.price))
            amount += product.price * quantity
        deal.amount = amount
        session.add(deal)
        session.flush()
        # walk the pipeline stage by stage, as a rep would, so the history is real
        path = [s for s in stages if not (s.is_won or s.is_lost)]
        if target.is_won or target.is_lost:
            path = path[:rng.randint(2, len(path))] + [target]
        else:
            path = path[:path.index(target) + 1]
        for stage in path[1:]:
            deal.stage = stage
            if stage.is_lost:
                deal.lost_reason = t(rng.choice(LOST_REASONS))
            session.flush()
        _backdate(session, deal, rng)
        if not (target.is_won or target.is_lost):
            session.add(Task(kind=rng.choice(["call", "email", "meeting"]),
                             subject=t("Follow up on {}").format(deal.name), deal=deal,
                             owner_id=deal.owner_id,
                             due_at=now + timedelta(days=rng.randint(-3, 14))))
            tasks += 1
        deals += 1
    orders = _repeat_orders(session, rng, contacts, products, owners)
    quarter = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    for rep in reps:
        for start in (date(quarter.year - (quarter.month == 1), (quarter.month - 4) % 12 + 1, 1),
                      quarter):
            end = date(start.year + (start.month == 10), (start.month + 2) % 12 + 1, 1)
            session.add(Quota(user_id=rep, period_start=start,
                              period_end=end - timedelta(days=1), amount=Decimal("60000")))
    session.flush()
    return {"sales users": len(USERS) if reps else 0, "products": len(products),
            "follow-up plans": 1,
            "leads": len(leads), "deals": deals, "orders": orders, "tasks": tasks}

"""Service demo data (``trellis demo``): SLA policies, categories, a support team
(with ``--users-password``), knowledge-base articles, and tickets with threads
and survey answers spread over the last weeks, so lists and reports have
something to show."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select

from trellis.db import utcnow
from trellis.demo import demo_text
from trellis.models import Contact, Team
from trellis_service.models import (
    Article,
    Category,
    SlaPolicy,
    Survey,
    Ticket,
    TicketMessage,
)

USERS = [("sam.agent", "Sam", "Agent", "Service Agent"),
         ("kim.agent", "Kim", "Agent", "Service Agent"),
         ("lee.lead", "Lee", "Lead", "Service Manager")]
POLICIES = [("low", 16, 80), ("normal", 8, 40), ("high", 4, 16), ("urgent", 1, 8)]
ARTICLES = [
    ("Resetting your password", "Use the 'Forgot password' link on the sign-in page. "
     "The e-mail arrives within five minutes; check your spam folder.", "Account"),
    ("Printing receipts", "Open Settings, choose the printer and print a test receipt. "
     "If the paper jams, open the tray and remove crumpled paper.", "Hardware"),
    ("Understanding your invoice", "Invoices list every licence and the billing period. "
     "Refunds appear as a credit note on the next invoice.", "Billing"),
]
#: The Chinese demo (``trellis demo --locale zh_CN``).
ZH = {
    "Resetting your password": "重置密码",
    "Use the 'Forgot password' link on the sign-in page. The e-mail arrives within five "
    "minutes; check your spam folder.": "在登录页点击“忘记密码”链接。邮件会在五分钟内送达；"
                                          "请同时检查垃圾邮件文件夹。",
    "Printing receipts": "打印小票",
    "Open Settings, choose the printer and print a test receipt. If the paper jams, open the "
    "tray and remove crumpled paper.": "打开“设置”，选择打印机并打印一张测试小票。如果卡纸，"
                                       "请打开纸仓取出褶皱的纸张。",
    "Understanding your invoice": "看懂您的发票",
    "Invoices list every licence and the billing period. Refunds appear as a credit note on "
    "the next invoice.": "发票列出每个许可和计费周期。退款会以红字发票的形式出现在下一张发票中。",
    "Account": "账户", "Hardware": "硬件", "Billing": "账单",
    "Cannot sign in": "无法登录", "Printer shows an error": "打印机报错",
    "Invoice amount looks wrong": "发票金额似乎有误", "How do I export my data?": "如何导出我的数据？",
    "Scanner not recognised": "无法识别扫描枪", "Refund request": "退款申请",
    "Slow page loads": "页面加载缓慢", "Change billing address": "修改账单地址",
    "Please help.": "请帮忙处理。", "We are looking into it.": "我们正在处理。",
    "Support team": "客服团队",
}
#: The demo users' names in the Chinese demo: username -> (given name, surname).
USERS_ZH = {"sam.agent": ("山", "陈"), "kim.agent": ("金", "刘"), "lee.lead": ("立", "赵")}
SUBJECTS = ["Cannot sign in", "Printer shows an error", "Invoice amount looks wrong",
            "How do I export my data?", "Scanner not recognised", "Refund request",
            "Slow page loads", "Change billing address"]


def load(session: Any, rng: Any, contact_ids: list[int],
         users_password: str | None = None, locale: str = "en") -> dict[str, int]:
    t = demo_text(locale, ZH)
    for priority, first, resolution in POLICIES:
        if session.scalar(select(SlaPolicy.id).where(SlaPolicy.priority == priority,
                                                     SlaPolicy.tier.is_(None))) is None:
            session.add(SlaPolicy(priority=priority, first_response_hours=first,
                                  resolution_hours=resolution))
    team = None
    agents: list[int] = []
    if users_password:
        sm = current_app.appbuilder.sm
        names = {u: USERS_ZH[u] if locale != "en" else (first, last)
                 for u, first, last, _role in USERS}
        users = {u: sm.find_user(username=u) or sm.add_user(
            u, *names[u], f"{u}@example.com", sm.find_role(role), users_password)
            for u, _first, _last, role in USERS}
        team = Team(name=t("Support team"), manager_id=users["lee.lead"].id,
                    members=[users["sam.agent"], users["kim.agent"]])
        session.add(team)
        agents = [users["sam.agent"].id, users["kim.agent"].id]
    categories = {}
    for name in ("Account", "Hardware", "Billing"):
        categories[name] = session.scalar(select(Category).where(Category.name == t(name))) or \
            Category(name=t(name), team=team)
        session.add(categories[name])
    for title, body, category in ARTICLES:
        session.add(Article(title=t(title), body=t(body), category=t(category),
                            status="published"))
    session.flush()
    emails = dict(session.execute(select(Contact.id, Contact.email)
                                  .where(Contact.id.in_(contact_ids))).all())
    now = utcnow()
    tickets = surveys = 0
    for contact_id in rng.sample(contact_ids, min(len(contact_ids), 40)):
        created = now - timedelta(days=rng.randint(0, 40), hours=rng.randint(0, 23))
        status = rng.choice(["new", "open", "pending", "resolved", "resolved", "closed"])
        ticket = Ticket(subject=t(rng.choice(SUBJECTS)), description=t("Please help."),
                        contact_id=contact_id, email=emails.get(contact_id),
                        channel=rng.choice(["email", "email", "web_form", "phone", "chat"]),
                        priority=rng.choice(["low", "normal", "normal", "high", "urgent"]),
                        category=rng.choice(list(categories.values())), created_on=created,
                        status=status)
        session.add(ticket)
        if status != "new":
            session.add(TicketMessage(ticket=ticket, kind="reply", body=t("We are looking into it."),
                                      created_on=created + timedelta(hours=rng.randint(1, 30))))
        if status in ("resolved", "closed"):
            ticket.resolved_at = created + timedelta(days=rng.randint(1, 5))
            if rng.random() < 0.6:
                session.add(Survey(ticket=ticket, contact_id=contact_id,
                                   agent_id=rng.choice(agents) if agents else None, team=team,
                                   sent_at=ticket.resolved_at, rating=rng.choice([2, 3, 4, 4, 5, 5]),
                                   answered_at=ticket.resolved_at + timedelta(hours=3)))
                surveys += 1
        tickets += 1
    return {"tickets": tickets, "kb_articles": len(ARTICLES), "surveys": surveys}

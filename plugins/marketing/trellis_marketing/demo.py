"""Demo data of the marketing plugin (``trellis demo``): segments, templates, a
draft campaign, the "viewed, not bought" journey, product views on the timeline
and, with a password, a Marketer user ``mara.marketer``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app

from trellis.db import utcnow
from trellis.demo import demo_text
from trellis.models import Activity
from trellis_marketing import segments
from trellis_marketing.models import Campaign, EmailTemplate, Journey, Segment


#: The Chinese demo (``trellis demo --locale zh_CN``).
ZH = {
    "Everyone with an e-mail address": "所有有邮箱的联系人",
    "Viewed a product this week": "本周浏览过产品",
    "Spent 1,000 or more": "消费满 1,000",
    "Monthly newsletter": "每月电子报",
    "News for {{ contact.first_name | default('you', true) }}":
        "{{ contact.first_name | default('亲爱的客户', true) }}，本月新闻",
    "Hello {{ contact.first_name | default('there', true) }},\n\nwhat's new this month at "
    "{{ account.name | default('our shop', true) }}.\n":
        "{{ contact.first_name | default('尊敬的客户', true) }}，您好：\n\n"
        "{{ account.name | default('本店', true) }}本月新鲜事。\n",
    "<p>Hello {{ contact.first_name | default('there', true) }},</p>"
    "<p><a href=\"https://www.example.com/news\">Read the news</a></p>":
        "<p>{{ contact.first_name | default('尊敬的客户', true) }}，您好：</p>"
        "<p><a href=\"https://www.example.com/news\">阅读新闻</a></p>",
    "Coupon: still thinking?": "优惠券：还在犹豫吗？",
    "10% off, {{ contact.first_name }}": "{{ contact.first_name }}，九折优惠",
    "Still thinking about it? Use the code WELCOME10 this week.\n":
        "还在犹豫吗？本周使用优惠码 WELCOME10 即可享受优惠。\n",
    "Viewed, not bought: coupon": "浏览未购买：发送优惠券",
    "Viewed a product": "浏览了产品",
}


def load(session: Any, rng: Any, contact_ids: list[int],
         users_password: str | None, locale: str = "en") -> dict[str, int]:
    t = demo_text(locale, ZH)
    if users_password:
        sm = current_app.appbuilder.sm
        if sm.find_user(username="mara.marketer") is None:
            first, last = ("玛拉", "孙") if locale != "en" else ("Mara", "Marketer")
            sm.add_user("mara.marketer", first, last, "mara.marketer@example.com",
                        sm.find_role("Marketer"), users_password)
    everyone = Segment(name=t("Everyone with an e-mail address"), kind="dynamic",
                       rules={"type": "field", "field": "email", "op": "is_not_empty"})
    viewers = Segment(name=t("Viewed a product this week"), kind="dynamic",
                      rules={"and": [{"type": "activity", "activity_type": "product.viewed",
                                      "within_days": 7},
                                     {"not": {"type": "purchase", "measure": "count",
                                              "op": "gte", "value": 1, "within_days": 7}}]})
    big = Segment(name=t("Spent 1,000 or more"), kind="static",
                  rules={"type": "purchase", "measure": "total", "op": "gte", "value": 1000})
    newsletter = EmailTemplate(
        name=t("Monthly newsletter"),
        subject=t("News for {{ contact.first_name | default('you', true) }}"),
        text_body=t("Hello {{ contact.first_name | default('there', true) }},\n\nwhat's new "
                    "this month at {{ account.name | default('our shop', true) }}.\n"),
        html_body=t("<p>Hello {{ contact.first_name | default('there', true) }},</p>"
                    "<p><a href=\"https://www.example.com/news\">Read the news</a></p>"))
    coupon = EmailTemplate(
        name=t("Coupon: still thinking?"), subject=t("10% off, {{ contact.first_name }}"),
        text_body=t("Still thinking about it? Use the code WELCOME10 this week.\n"))
    session.add_all([everyone, viewers, big, newsletter, coupon])
    session.flush()
    segments.snapshot(session, big)
    session.add(Campaign(name=t("Monthly newsletter"), segment_id=everyone.id,
                         template_id=newsletter.id, status="draft", cost=50,
                         ab_metric="opened", ab_test_percent=20, ab_wait_hours=4,
                         conversion_days=7))
    session.add(Journey(name=t("Viewed, not bought: coupon"), trigger_kind="activity",
                        trigger_activity_type="product.viewed", active=True,
                        allow_reentry=False, cursor_activity_id=0, cost=0,
                        conversion_days=7,
                        steps=[{"type": "wait_until", "until": "purchase",
                                "product": "$trigger.product_id", "hours": 24,
                                "then": "exit"},
                               {"type": "send_email", "template_id": coupon.id},
                               {"type": "action", "action": "core.add_tag",
                                "params": {"tag": "coupon-sent"}}]))
    now = utcnow()
    views = 0
    for contact_id in rng.sample(contact_ids, min(len(contact_ids), max(1, len(contact_ids) // 10))):
        session.add(Activity(type="product.viewed", subject=t("Viewed a product"),
                             contact_id=contact_id, plugin="marketing",
                             occurred_at=now - timedelta(hours=rng.randint(1, 72)),
                             payload={"product_id": rng.randint(1, 5)}))
        views += 1
    return {"segments": 3, "email_templates": 2, "campaigns": 1, "journeys": 1,
            "product_views": views}

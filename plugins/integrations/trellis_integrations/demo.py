"""Demo data: a tracking site with a few weeks of visits (some visitors identified),
a webhook endpoint with deliveries, duplicate contacts to review, a finished import."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import insert

from trellis.db import utcnow
from trellis.demo import demo_text
from trellis.models import Activity, Contact

from trellis_integrations.models import (
    DuplicateCandidate,
    ImportRun,
    TrackingSite,
    WebEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)

PAGES = ["/", "/pricing", "/features", "/blog/crm-tips", "/contact", "/shop", "/shop/cart"]
PRODUCTS = [("Starter plan", Decimal("29.00")), ("Team plan", Decimal("99.00")),
            ("Onboarding package", Decimal("499.00"))]


#: The Chinese demo (``trellis demo --locale zh_CN``).
ZH = {"Starter plan": "入门套餐", "Team plan": "团队套餐", "Onboarding package": "上线实施服务包",
      "Company website": "公司官网", "Data warehouse": "数据仓库", "Home": "首页",
      "Pricing": "价格", "Features": "功能", "Blog/Crm-Tips": "博客：CRM 技巧", "Contact": "联系我们",
      "Shop": "商城", "Shop/Cart": "购物车", "same e-mail": "邮箱相同",
      "similar name at the same company": "同一公司中姓名相似"}


def load(session: Any, rng: Any, contact_ids: list[int], locale: str = "en") -> dict[str, int]:
    t = demo_text(locale, ZH)
    site = TrackingSite(name=t("Company website"), site_key="ts_demo_website",
                        allowed_origins="https://www.example.com")
    session.add(site)
    session.flush()
    now = utcnow()
    events: list[dict[str, Any]] = []
    known = rng.sample(contact_ids, min(15, len(contact_ids)))
    for n in range(120):
        visitor = f"demo-visitor-{n}"
        contact = known[n] if n < len(known) else None
        for s in range(rng.randint(1, 3)):
            session_id = f"{visitor}-s{s}"
            start = now - timedelta(days=rng.randint(0, 29), minutes=rng.randint(0, 1440))
            for p, path in enumerate(rng.sample(PAGES, rng.randint(1, 4))):
                events.append({"site_id": site.id, "visitor_id": visitor,
                               "session_id": session_id, "type": "page_view",
                               "url": f"https://www.example.com{path}", "path": path,
                               "title": t(path.strip("/").title() or "Home"),
                               "occurred_at": start + timedelta(minutes=p),
                               "contact_id": contact})
            if rng.random() < 0.4:
                product, price = rng.choice(PRODUCTS)
                product = t(product)
                events.append({"site_id": site.id, "visitor_id": visitor,
                               "session_id": session_id, "type": "product_view",
                               "product": product, "occurred_at": start + timedelta(minutes=5),
                               "contact_id": contact})
                if rng.random() < 0.5:
                    events.append({"site_id": site.id, "visitor_id": visitor,
                                   "session_id": session_id, "type": "purchase",
                                   "product": product, "value": price, "currency": "EUR",
                                   "occurred_at": start + timedelta(minutes=9),
                                   "contact_id": contact})
    session.execute(insert(WebEvent), events)
    timeline = [{"type": f"web.{e['type']}", "subject": e.get("title") or e.get("product")
                 or e["type"], "occurred_at": e["occurred_at"], "contact_id": e["contact_id"],
                 "plugin": "integrations", "payload": {"url": e.get("url")}}
                for e in events if e["contact_id"]]
    if timeline:
        session.execute(insert(Activity), timeline)
    hook = WebhookEndpoint(name=t("Data warehouse"), url="https://hooks.example.com/trellis",
                           events="contact.*, deal.won", kind="webhook",
                           secret="whsec_demo_secret_do_not_use")
    session.add(hook)
    session.flush()
    for i, status in enumerate(["delivered", "delivered", "retrying", "dead"]):
        delivery = WebhookDelivery(endpoint_id=hook.id, event_id=f"demo{i:028d}",
                                   event_name="contact.created", status=status,
                                   attempts=1 if status == "delivered" else 3,
                                   payload=json.dumps({"id": f"demo{i}", "type":
                                                       "contact.created"}),
                                   last_status_code=200 if status == "delivered" else 500,
                                   next_attempt_at=now + timedelta(minutes=5)
                                   if status == "retrying" else None)
        session.add(delivery)
        session.flush()
        session.add(WebhookAttempt(delivery_id=delivery.id, status_code=delivery.last_status_code,
                                   duration_ms=rng.randint(20, 400)))
    # two pairs of look-alike contacts for the duplicate review
    pairs = 0
    for cid in rng.sample(contact_ids, min(2, len(contact_ids))):
        original = session.get(Contact, cid)
        if original is None or not original.email:
            continue
        local, _, host = original.email.partition("@")
        twin = Contact(first_name=original.first_name, last_name=original.last_name,
                       email=f"{local}+news@{host}", account_id=original.account_id,
                       owner_id=original.owner_id)
        session.add(twin)
        session.flush()
        session.add(DuplicateCandidate(model="contact", a_id=original.id, b_id=twin.id,
                                       score=0.98, reasons=[t("same e-mail"),
                                                            t("similar name at the same company")]))
        pairs += 1
    session.add(ImportRun(model="contact", filename="trade-fair-leads.csv", status="done",
                          total_rows=42, processed_rows=42, created_count=30, updated_count=9,
                          unchanged_count=1, error_count=2, mapping={"E-mail": "email"},
                          message="30 created, 9 updated, 1 unchanged, 0 skipped, 2 rejected.",
                          finished_at=now))
    return {"web events": len(events), "webhooks": 1, "duplicate pairs": pairs}

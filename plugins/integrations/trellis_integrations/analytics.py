"""Behaviour analytics from the web events, in SQL (one grouped query per figure).

Over a period (the last ``days`` days, default 30) and optionally one site:

* **visitors**: distinct visitor ids (events without one — server events named
  by contact — count by contact);
* **page views**: ``page_view`` events;
* **sessions**: distinct session ids;
* **bounce rate**: sessions with exactly one event (a single page view and
  nothing else) ÷ sessions;
* **conversion rate**: visitors with at least one ``purchase`` ÷ visitors;
* **top pages**: page views per path; **top products**: views, adds to cart
  and purchases per product.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import String, case, cast, distinct, func, literal, select

from trellis.db import db, utcnow
from trellis.i18n import format_number

from trellis_integrations.models import WebEvent


def _scope(stmt: Any, days: int, site_id: int | None) -> Any:
    stmt = stmt.where(WebEvent.occurred_at >= utcnow() - timedelta(days=days))
    return stmt.where(WebEvent.site_id == site_id) if site_id is not None else stmt


def _who() -> Any:
    return func.coalesce(WebEvent.visitor_id,
                         literal("contact:") + cast(WebEvent.contact_id, String))


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def summary(days: int = 30, site_id: int | None = None) -> dict[str, Any]:
    """Visitors, page views, sessions, bounce and conversion rates."""
    who = _who()
    row = db.session.execute(_scope(select(
        func.count(distinct(who)),
        func.count(case((WebEvent.type == "page_view", 1))),
        func.count(distinct(WebEvent.session_id)),
        func.count(distinct(case((WebEvent.type == "purchase", who)))),
    ), days, site_id)).one()
    visitors, page_views, sessions, buyers = row
    per_session = _scope(select(WebEvent.session_id, func.count().label("n"))
                         .where(WebEvent.session_id.is_not(None))
                         .group_by(WebEvent.session_id), days, site_id).subquery()
    bounced = db.session.scalar(select(func.count()).select_from(per_session)
                                .where(per_session.c.n == 1)) or 0
    return {"days": days, "site_id": site_id, "visitors": visitors, "page_views": page_views,
            "sessions": sessions, "bounced_sessions": bounced,
            "bounce_rate": _pct(bounced, sessions), "converted_visitors": buyers,
            "conversion_rate": _pct(buyers, visitors)}


def top_pages(days: int = 30, site_id: int | None = None, limit: int = 10) -> list[dict]:
    views = func.count().label("views")
    stmt = _scope(select(WebEvent.path, views, func.count(distinct(_who())).label("visitors"))
                  .where(WebEvent.type == "page_view", WebEvent.path.is_not(None))
                  .group_by(WebEvent.path).order_by(views.desc(), WebEvent.path).limit(limit),
                  days, site_id)
    return [{"path": p, "views": v, "visitors": u} for p, v, u in db.session.execute(stmt)]


def top_products(days: int = 30, site_id: int | None = None, limit: int = 10) -> list[dict]:
    def n(kind: str) -> Any:
        return func.count(case((WebEvent.type == kind, 1)))

    views, carts, buys = n("product_view"), n("add_to_cart"), n("purchase")
    revenue = func.sum(case((WebEvent.type == "purchase", WebEvent.value)))
    stmt = _scope(select(WebEvent.product, views.label("views"), carts.label("carts"),
                         buys.label("purchases"), revenue.label("revenue"))
                  .where(WebEvent.product.is_not(None)).group_by(WebEvent.product)
                  .order_by(views.desc(), buys.desc(), WebEvent.product).limit(limit),
                  days, site_id)
    return [{"product": p, "views": v, "add_to_cart": c, "purchases": b,
             "revenue": str(r) if r is not None else None}
            for p, v, c, b, r in db.session.execute(stmt)]


# ------------------------------------------------------------------ dashboard widgets


def widget_visitors() -> dict[str, Any]:
    s = summary()
    return {"value": format_number(s["visitors"]),
            "note": _("%(views)s page views, bounce rate %(rate)s %% (30 days)",
                      views=format_number(s["page_views"]), rate=s["bounce_rate"])}


def widget_conversion() -> dict[str, Any]:
    s = summary()
    return {"value": f"{s['conversion_rate']}", "unit": "%",
            "note": _("%(converted)s of %(visitors)s visitors purchased (30 days)",
                      converted=s["converted_visitors"], visitors=s["visitors"])}


def widget_top_pages() -> dict[str, Any]:
    return {"bars": [{"label": p["path"], "value": p["views"], "display": format_number(p["views"])}
                     for p in top_pages(limit=8)],
            "unit": _("Page views (30 days)"), "x_label": _("Page"), "y_label": _("Page views")}


def widget_top_products() -> dict[str, Any]:
    return {"columns": [_("Product"), _("Views"), _("Added to cart"), _("Purchases")],
            "rows": [[p["product"], p["views"], p["add_to_cart"], p["purchases"]]
                     for p in top_products(limit=8)]}


# ------------------------------------------------------------------ customer features


def _per_contact(value: Any, days: int | None = None, kind: str | None = None) -> Any:
    stmt = select(WebEvent.contact_id.label("contact_id"), value.label("value")).where(
        WebEvent.contact_id.is_not(None))
    if days is not None:
        stmt = stmt.where(WebEvent.occurred_at >= utcnow() - timedelta(days=days))
    if kind is not None:
        stmt = stmt.where(WebEvent.type == kind)
    return stmt.group_by(WebEvent.contact_id)


def features() -> list[Any]:
    """``trellis_customer_features``: website behaviour per contact, for lead scoring,
    segments and journeys (one grouped query each)."""
    from trellis.specs import FeatureSpec

    return [
        FeatureSpec("web_page_views_30d", "Website page views (30 days)",
                    lambda: _per_contact(func.count(), 30, "page_view")),
        FeatureSpec("web_visits_30d", "Website visits (30 days)",
                    lambda: _per_contact(func.count(distinct(WebEvent.session_id)), 30),
                    description="Sessions: a visit ends after 30 minutes without activity."),
        FeatureSpec("web_cart_adds_30d", "Products added to the cart (30 days)",
                    lambda: _per_contact(func.count(), 30, "add_to_cart")),
        FeatureSpec("last_web_visit_at", "Last website visit",
                    lambda: _per_contact(func.max(WebEvent.occurred_at)), kind="date"),
    ]

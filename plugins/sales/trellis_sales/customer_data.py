"""What the sales plugin tells the rest of Trellis about customers, through core
hooks: purchase lines (``trellis_purchase_lines``), purchase features
(``trellis_customer_features``), merge fields for templates
(``trellis_merge_fields``) and the ``sales.create_task`` action
(``trellis_actions``).  Scoring and marketing read these without importing
this plugin."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from marshmallow import Schema, fields, validate
from sqlalchemy import Integer, Select, String, exists, func, literal, null, select, union_all

from trellis.actions import contact_ids
from trellis.currency import in_company_currency
from trellis.db import utcnow
from trellis.specs import ActionSpec, FeatureSpec
from trellis.sqlfuncs import days_between
from trellis_sales.models import TASK_KINDS, Order, OrderLine, Product, Task


def purchase_lines() -> Any:
    """One row per order line, plus one per order without lines (its total, no
    product), amounts in the company currency at the rate of the order's day."""
    with_lines = (
        select(Order.contact_id.label("contact_id"), Order.account_id.label("account_id"),
               Order.id.label("order_id"), Order.ordered_at.label("ordered_at"),
               OrderLine.product_id.label("product_id"), Product.name.label("product_name"),
               OrderLine.quantity.label("quantity"),
               in_company_currency(OrderLine.total, Order.currency,
                                   Order.ordered_at).label("amount"))
        .join(OrderLine, OrderLine.order_id == Order.id)
        .join(Product, Product.id == OrderLine.product_id))
    without_lines = (
        select(Order.contact_id.label("contact_id"), Order.account_id.label("account_id"),
               Order.id.label("order_id"), Order.ordered_at.label("ordered_at"),
               null().cast(Integer).label("product_id"),
               null().cast(String).label("product_name"),
               literal(1).label("quantity"),
               in_company_currency(Order.total, Order.currency,
                                   Order.ordered_at).label("amount"))
        .where(~exists().where(OrderLine.order_id == Order.id)))
    return union_all(with_lines, without_lines)


def _orders_per_contact() -> Any:
    return (select(Order.contact_id.label("contact_id"),
                   func.count(Order.id).label("orders"),
                   func.sum(in_company_currency(Order.total, Order.currency,
                                                Order.ordered_at)).label("spent"),
                   func.max(Order.ordered_at).label("last_at"),
                   func.min(Order.ordered_at).label("first_at"))
            .where(Order.contact_id.is_not(None))
            .group_by(Order.contact_id))


def _feature(column: str) -> Any:
    def query() -> Select:
        sub = _orders_per_contact().subquery()
        return select(sub.c.contact_id.label("contact_id"), sub.c[column].label("value"))
    return query


def days_since_last_purchase() -> Select:
    sub = _orders_per_contact().subquery()
    return select(sub.c.contact_id.label("contact_id"),
                  days_between(sub.c.last_at, utcnow()).label("value"))


def spent_last_365d() -> Select:
    since = utcnow() - timedelta(days=365)
    return (select(Order.contact_id.label("contact_id"),
                   func.sum(in_company_currency(Order.total, Order.currency,
                                                Order.ordered_at)).label("value"))
            .where(Order.contact_id.is_not(None), Order.ordered_at >= since)
            .group_by(Order.contact_id))


def features() -> list[FeatureSpec]:
    return [
        FeatureSpec("purchase_count", "Orders placed", _feature("orders")),
        FeatureSpec("purchase_total", "Total spent (company currency)", _feature("spent"),
                    description="Orders in another currency count at the rate of their "
                                "day; without a rate they are left out."),
        FeatureSpec("purchase_total_365d", "Spent in the last 365 days", spent_last_365d),
        FeatureSpec("last_purchase_at", "Last purchase", _feature("last_at"), kind="date"),
        FeatureSpec("first_purchase_at", "First purchase", _feature("first_at"), kind="date"),
        FeatureSpec("days_since_last_purchase", "Days since the last purchase",
                    days_since_last_purchase),
    ]


def merge_fields(session: Any, ids: list[int]) -> dict[int, dict[str, Any]]:
    """``sales.orders``, ``sales.total_spent``, ``sales.last_order_at`` and
    ``sales.last_product`` (the product of the latest order line) per contact."""
    out: dict[int, dict[str, Any]] = {}
    totals = _orders_per_contact().where(Order.contact_id.in_(ids))
    for cid, orders, spent, last_at, _ in session.execute(totals):
        out[cid] = {"orders": orders, "total_spent": float(spent) if spent is not None else None,
                    "last_order_at": last_at.date().isoformat() if last_at else None,
                    "last_product": None}
    ranked = (select(Order.contact_id.label("contact_id"), Product.name.label("name"),
                     func.row_number().over(partition_by=Order.contact_id,
                                            order_by=(Order.ordered_at.desc(),
                                                      OrderLine.id.desc())).label("n"))
              .join(OrderLine, OrderLine.order_id == Order.id)
              .join(Product, Product.id == OrderLine.product_id)
              .where(Order.contact_id.in_(ids))).subquery()
    for cid, name in session.execute(select(ranked.c.contact_id, ranked.c.name)
                                     .where(ranked.c.n == 1)):
        out.setdefault(cid, {"orders": 0, "total_spent": None, "last_order_at": None})
        out[cid]["last_product"] = name
    return out


# ------------------------------------------------------------------ actions


class CreateTaskParams(Schema):
    kind = fields.String(load_default="todo", validate=validate.OneOf(
        TASK_KINDS, error=f"Must be one of: {', '.join(TASK_KINDS)}."))
    subject = fields.String(required=True, validate=validate.Length(min=1, max=200))
    due_in_days = fields.Integer(load_default=1, validate=validate.Range(min=0, max=365))
    owner_id = fields.Integer(load_default=None, allow_none=True,
                              metadata={"description": "empty: the contact's owner"})


def create_task(session: Any, model: str, ids: list[int], params: dict[str, Any]) -> dict[str, int]:
    """One follow-up task per record: on the deal for deals, on the lead for
    leads, otherwise on the record's contact; owned by ``owner_id`` or the
    record's (contact's) owner."""
    from trellis.extension import current_trellis
    from trellis.models import Contact

    due = utcnow() + timedelta(days=params["due_in_days"])
    entry = current_trellis().registry.get(model)
    if model in ("deal", "lead"):
        records = session.execute(select(entry.model.id, entry.model.owner_id)
                                  .where(entry.model.id.in_(ids))).all()
        rows = [{f"{model}_id": rid, "owner_id": params["owner_id"] or owner}
                for rid, owner in records]
    else:
        targets = contact_ids(session, model, ids)
        owners = dict(session.execute(select(Contact.id, Contact.owner_id)
                                      .where(Contact.id.in_(targets))).all())
        rows = [{"contact_id": cid, "owner_id": params["owner_id"] or owners.get(cid)}
                for cid in targets]
    for row in rows:  # the ORM, so task rules, audit and events apply
        session.add(Task(kind=params["kind"], subject=params["subject"], due_at=due,
                         origin="automation", **row))
    session.flush()
    return {"tasks": len(rows)}


def actions() -> list[ActionSpec]:
    return [ActionSpec("sales.create_task", "Create a follow-up task", CreateTaskParams,
                       create_task, models=("contact", "deal", "lead", "order"),
                       description="One task per record, due in N days.")]

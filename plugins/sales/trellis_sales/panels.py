"""The sales panel on the contact and account pages: open deals, recent orders
and open follow-ups of that customer, under the user's record rules."""

from __future__ import annotations

from typing import Any

from flask import render_template
from sqlalchemy import select

from trellis import rules
from trellis.db import db
from trellis.models import Contact
from trellis.specs import PanelSpec
from trellis_sales.models import Deal, Order, Stage, Task

LIMIT = 10


def _customer_filter(model: type, record: Any) -> Any:
    if isinstance(record, Contact):
        return model.contact_id == record.id
    return model.account_id == record.id


def customer_panel(record: Any) -> str | None:
    deals = db.session.execute(rules.restrict(
        select(Deal, Stage.name).join(Stage, Stage.id == Deal.stage_id)
        .where(_customer_filter(Deal, record), Deal.won_at.is_(None), Deal.lost_at.is_(None))
        .order_by(Deal.expected_close.is_(None), Deal.expected_close, Deal.id)
        .limit(LIMIT), Deal)).all()
    orders = db.session.scalars(rules.restrict(
        select(Order).where(_customer_filter(Order, record))
        .order_by(Order.ordered_at.desc(), Order.id.desc()).limit(LIMIT), Order)).all()
    tasks = []
    if isinstance(record, Contact):
        tasks = db.session.scalars(rules.restrict(
            select(Task).where(Task.contact_id == record.id, Task.done_at.is_(None))
            .order_by(Task.due_at.is_(None), Task.due_at).limit(LIMIT), Task)).all()
    if not (deals or orders or tasks):
        return None
    return render_template("sales/customer_panel.html", deals=deals, orders=orders,
                           tasks=tasks)


def panels() -> list[PanelSpec]:
    return [PanelSpec("customer", "Sales: open deals, orders and follow-ups", customer_panel,
                      models=("contact", "account"), permission=("can_read", "sales.Deal"),
                      order=20)]

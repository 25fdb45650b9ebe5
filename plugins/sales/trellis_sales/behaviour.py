"""What happens when sales records are saved: stage history, probabilities,
won/lost, orders, timeline entries and events.  Called by the core at flush
time (``ModelSpec.before_save`` / ``validate``), whatever path the write took."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from flask_babel import gettext, lazy_gettext
from sqlalchemy import func, inspect, select
from sqlalchemy.orm import object_session

from trellis.context import current_actor
from trellis.db import utcnow
from trellis.events import queue
from trellis.models import Activity
from trellis.settings import get_settings
from trellis_sales import sla
from trellis_sales import reminders
from trellis_sales.models import (
    LEAD_SOURCES,
    LEAD_STATUSES,
    TASK_KINDS,
    Deal,
    DealStageHistory,
    Lead,
    Order,
    OrderLine,
    Pipeline,
    Product,
    Stage,
    Task,
)

PLUGIN = "sales"
#: The timeline's activity types this plugin writes: msgids of its catalog (the
#: customer page shows a type translated).  Their subjects are written in the
#: language of the user whose action wrote them (English outside a request).
ACTIVITY_TYPES = (lazy_gettext("deal.created"), lazy_gettext("deal.stage_changed"),
                  lazy_gettext("lead.converted"), lazy_gettext("order.placed"),
                  lazy_gettext("task.done"))
CURRENCY = re.compile(r"^[A-Z]{3}$")
COUNTRY = re.compile(r"^[A-Z]{2}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _changed(obj: Any, attr: str) -> bool:
    return inspect(obj).attrs[attr].history.has_changes()


def _old(obj: Any, attr: str) -> Any:
    hist = inspect(obj).attrs[attr].history
    return hist.deleted[0] if hist.deleted else None


def _actor_id() -> int | None:
    actor = current_actor()
    return actor.user_id if actor else None


def _timeline(session: Any, kind: str, subject: str, contact: Any, account: Any,
              payload: dict[str, Any], occurred_at: Any = None) -> None:
    """An Activity on the customer's timeline; contact/account given as ids or objects;
    ``occurred_at`` defaults to now."""
    if contact is None and account is None:
        return
    contact_obj = None if contact is None or isinstance(contact, int) else contact
    account_obj = None if account is None or isinstance(account, int) else account
    activity = Activity(type=kind, subject=subject[:255], plugin=PLUGIN, user_id=_actor_id(),
                        payload=payload, occurred_at=occurred_at or utcnow())
    # by object when not flushed yet (no id), by id otherwise; never both
    if contact_obj is not None:
        activity.contact = contact_obj
    elif contact is not None:
        activity.contact_id = contact
    if account_obj is not None:
        activity.account = account_obj
    elif account is not None:
        activity.account_id = account
    session.add(activity)


def default_pipeline(session: Any) -> Pipeline | None:
    with session.no_autoflush:
        return session.scalars(select(Pipeline).order_by(Pipeline.is_default.desc(),
                                                         Pipeline.id)).first()


# ------------------------------------------------------------------ deals


def deal_before_save(session: Any, deal: Deal, action: str) -> None:
    if action == "deleted":
        return
    reminders.deal_touched(deal, action)  # any change is activity (stale-deal follow-ups)
    deal.currency = deal.currency or get_settings(PLUGIN)["company_currency"]
    if deal.amount is None:
        deal.amount = Decimal("0")
    with session.no_autoflush:
        if deal.stage_id is None and deal.stage is None:
            pipeline = (session.get(Pipeline, deal.pipeline_id) if deal.pipeline_id
                        else default_pipeline(session))
            if pipeline is None or not pipeline.stages:
                return  # validate() reports the missing stage
            deal.stage = pipeline.stages[0]
        stage = deal.stage if deal.stage is not None else session.get(Stage, deal.stage_id)
        if stage is None:
            return
        if deal.pipeline_id is None and deal.pipeline is None:
            deal.pipeline_id = stage.pipeline_id
        stage_changed = action == "created" or _changed(deal, "stage_id") or _changed(deal,
                                                                                      "stage")
        probability_set = deal.probability is not None and (
            action == "created" or _changed(deal, "probability"))
        if stage.is_won:
            deal.probability = 100
        elif stage.is_lost:
            deal.probability = 0
        elif probability_set:
            deal.probability_overridden = deal.probability != stage.probability
        elif stage_changed and not deal.probability_overridden:
            deal.probability = stage.probability
        if deal.probability is None:
            deal.probability = stage.probability
        if not stage_changed:
            return
        now = utcnow()
        old_stage = None
        if action == "updated":
            old_id = _old(deal, "stage_id")
            old_stage = session.get(Stage, old_id) if old_id else None
            for row in session.scalars(select(DealStageHistory).where(
                    DealStageHistory.deal_id == deal.id, DealStageHistory.left_at.is_(None))):
                row.left_at = now
        session.add(DealStageHistory(deal=deal, stage_id=stage.id, entered_at=now,
                                     user_id=_actor_id()))
        deal.won_at = now if stage.is_won else None
        deal.lost_at = now if stage.is_lost else None
        if old_stage is not None and old_stage.is_lost and not stage.is_lost:
            deal.lost_reason = None  # reopened: the old reason no longer applies
    if action == "created":
        _timeline(session, "deal.created",
                  gettext("Deal %(deal)s opened in %(stage)s", deal=deal.name, stage=stage.name),
                  deal.contact or deal.contact_id, deal.account or deal.account_id,
                  {"stage": stage.name})
    else:
        data = {"deal_id": deal.id, "from_stage": old_stage.name if old_stage else None,
                "to_stage": stage.name, "amount": str(deal.amount or 0),
                "currency": deal.currency}
        _timeline(session, "deal.stage_changed",
                  gettext("Deal %(deal)s: %(old)s → %(new)s", deal=deal.name,
                          old=data["from_stage"], new=stage.name),
                  deal.contact or deal.contact_id, deal.account or deal.account_id, data)
        queue(session, "deal.stage_changed", data, plugin=PLUGIN)
    if stage.is_won:
        queue(session, "deal.won", lambda: {"deal_id": deal.id, "amount": str(deal.amount),
                                            "currency": deal.currency}, plugin=PLUGIN)
        if get_settings(PLUGIN)["create_order_on_won"] and (
                _points(deal, "contact") or _points(deal, "account")):
            _order_from_deal(session, deal)
    elif stage.is_lost:
        queue(session, "deal.lost", lambda: {"deal_id": deal.id, "reason": deal.lost_reason},
              plugin=PLUGIN)


def _points(obj: Any, relation: str) -> bool:
    """Whether ``obj.relation`` is set, by object or by id."""
    return getattr(obj, relation) is not None or getattr(obj, f"{relation}_id") is not None


def _copy_ref(source: Any, target: Any, relation: str) -> None:
    """Point ``target.relation`` where ``source.relation`` points: by object while
    it may not be flushed yet, else by id (never both: a None object wins at flush)."""
    if getattr(source, relation) is not None:
        setattr(target, relation, getattr(source, relation))
    elif getattr(source, f"{relation}_id") is not None:
        setattr(target, f"{relation}_id", getattr(source, f"{relation}_id"))


def _order_from_deal(session: Any, deal: Deal) -> None:
    with session.no_autoflush:
        if deal.id is not None and session.scalar(
                select(func.count()).select_from(Order).where(Order.deal_id == deal.id)):
            return  # won before, reopened, won again: one order
        order = Order(deal=deal, owner_id=deal.owner_id, currency=deal.currency)
        _copy_ref(deal, order, "contact")
        _copy_ref(deal, order, "account")
        for line in deal.lines:
            copy = OrderLine(quantity=line.quantity, unit_price=line.unit_price,
                             total=line.total)
            _copy_ref(line, copy, "product")
            order.lines.append(copy)
        if not deal.lines:
            order.total = deal.amount or Decimal("0")
    session.add(order)


def deal_validate(deal: Deal) -> dict[str, list[str]]:
    session = object_session(deal)
    errors: dict[str, list[str]] = {}
    if deal.amount is not None and Decimal(deal.amount) < 0:
        errors["amount"] = ["Must not be negative."]
    if deal.probability is not None and not 0 <= deal.probability <= 100:
        errors["probability"] = ["Must be between 0 and 100."]
    if deal.currency and not CURRENCY.match(deal.currency):
        errors["currency"] = ["Use an ISO 4217 code, e.g. EUR."]
    with session.no_autoflush:
        stage = deal.stage if deal.stage is not None else (
            session.get(Stage, deal.stage_id) if deal.stage_id else None)
        if stage is None:
            errors["stage_id"] = ["Choose a stage: the pipeline has none."]
            return errors
        pipeline_id = deal.pipeline.id if deal.pipeline is not None else deal.pipeline_id
        if pipeline_id != stage.pipeline_id:
            pipeline = session.get(Pipeline, pipeline_id)
            errors["stage_id"] = [f"Stage {stage.name!r} belongs to pipeline "
                                  f"{stage.pipeline.name!r}, not "
                                  f"{pipeline.name if pipeline else pipeline_id!r}."]
        if stage.is_lost and not (deal.lost_reason or "").strip():
            errors["lost_reason"] = ["Required when a deal is marked lost."]
    return errors


# ------------------------------------------------------------------ leads


def lead_before_save(session: Any, lead: Lead, action: str) -> None:
    if action == "deleted":
        return
    lead.status = lead.status or "new"
    lead.source = lead.source or "manual"
    sla.lead_saved(session, lead, action)  # first-response SLA: due time, first contact
    if action == "created" and lead.owner_id is None:
        from trellis_sales.assignment import assign

        if assign(session, lead) is not None:
            queue(session, "lead.assigned", lambda: {"lead_id": lead.id,
                                                     "owner_id": lead.owner_id}, plugin=PLUGIN)
    if lead.email:
        lead.email = lead.email.strip()
    if _changed(lead, "status") and lead.status == "qualified":
        queue(session, "lead.qualified", lambda: {"lead_id": lead.id}, plugin=PLUGIN)


def lead_validate(lead: Lead) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if lead.status not in LEAD_STATUSES:
        errors["status"] = [f"Must be one of: {', '.join(LEAD_STATUSES)}."]
    if lead.source not in LEAD_SOURCES:
        errors["source"] = [f"Must be one of: {', '.join(LEAD_SOURCES)}."]
    if lead.email and not EMAIL.match(lead.email):
        errors["email"] = ["Not a valid e-mail address."]
    if lead.country and not COUNTRY.match(lead.country):
        errors["country"] = ["Use a two-letter ISO country code, e.g. DE."]
    if not (lead.last_name or "").strip():
        errors["last_name"] = ["Must not be empty."]
    return errors


# ------------------------------------------------------------------ orders, lines, tasks


def line_before_save(session: Any, line: Any, action: str) -> None:
    if action == "deleted":
        order = getattr(line, "order", None)
        if order is not None:
            order.total = sum((Decimal(l.total or 0) for l in order.lines if l is not line),
                              Decimal("0"))
        return
    if line.quantity is None:
        line.quantity = 1
    with session.no_autoflush:
        if line.unit_price is None and line.product_id is not None:
            product = line.product or session.get(Product, line.product_id)
            line.unit_price = product.price if product else Decimal("0")
        line.total = (Decimal(line.quantity or 0) * Decimal(line.unit_price or 0)).quantize(
            Decimal("0.01"))
        order = getattr(line, "order", None)
        if order is None and getattr(line, "order_id", None):
            order = session.get(Order, line.order_id)
        if order is not None:
            order.total = sum((Decimal(l.total or 0) for l in order.lines if l is not line),
                              Decimal("0")) + line.total


def line_validate(line: Any) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if line.quantity is not None and line.quantity <= 0:
        errors["quantity"] = ["Must be at least 1."]
    if line.unit_price is not None and Decimal(line.unit_price) < 0:
        errors["unit_price"] = ["Must not be negative."]
    return errors


def order_before_save(session: Any, order: Order, action: str) -> None:
    if action == "deleted":
        return
    order.currency = order.currency or get_settings(PLUGIN)["company_currency"]
    if order.total is None:
        order.total = Decimal("0")
    if action != "created":
        return
    if order.lines:
        order.total = sum((Decimal(l.total or 0) for l in order.lines), Decimal("0"))
    _timeline(session, "order.placed", gettext("Order of %(total)s %(currency)s",
                                               total=order.total, currency=order.currency),
              order.contact or order.contact_id, order.account or order.account_id,
              {"total": str(order.total), "currency": order.currency},
              occurred_at=order.ordered_at)  # a back-dated order sits at its day
    queue(session, "order.placed", lambda: {
        "order_id": order.id, "deal_id": order.deal_id, "contact_id": order.contact_id,
        "account_id": order.account_id, "total": str(order.total), "currency": order.currency},
        plugin=PLUGIN)


def order_validate(order: Order) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if order.total is not None and Decimal(order.total) < 0:
        errors["total"] = ["Must not be negative."]
    if order.currency and not CURRENCY.match(order.currency):
        errors["currency"] = ["Use an ISO 4217 code, e.g. EUR."]
    if all(v is None for v in (order.contact_id, order.contact, order.account_id,
                               order.account)):
        errors["contact_id"] = ["An order needs a contact or an account."]
    return errors


def task_before_save(session: Any, task: Task, action: str) -> None:
    if action == "deleted":
        return
    task.kind = task.kind or "todo"
    sla.task_saved(session, task, action)  # a call/e-mail/meeting done contacts its lead
    reminders.task_touched(session, task, action)  # a task created or done: deal activity
    if task.done_at is not None and (action == "created" or _changed(task, "done_at")) \
            and _old(task, "done_at") is None:
        with session.no_autoflush:
            deal = task.deal
        contact_id = task.contact or task.contact_id or (
            (deal.contact or deal.contact_id) if deal else None)
        account_id = (deal.account or deal.account_id) if deal else None
        _timeline(session, "task.done", gettext("%(kind)s done: %(subject)s",
                                                kind=gettext(task.kind).title(),
                                                subject=task.subject),
                  contact_id, account_id, {"task_id": task.id, "kind": task.kind})
        queue(session, "task.done", lambda: {"task_id": task.id}, plugin=PLUGIN)


def task_validate(task: Task) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if task.kind not in TASK_KINDS:
        errors["kind"] = [f"Must be one of: {', '.join(TASK_KINDS)}."]
    if not any(_points(task, r) for r in ("lead", "contact", "deal")):
        errors["deal_id"] = ["Link the task to a lead, a contact or a deal."]
    return errors

"""Follow-up reminders: due and overdue tasks, and deals that went quiet.

Two periodic jobs, both set-based (a handful of statements whatever the number
of rows) and safe to run twice or at the same time:

* ``sales.remind_tasks``: a task due within the hour notifies its owner once
  ("due soon", ``reminder_sent_at``); an overdue one once more ("overdue",
  ``overdue_sent_at``) and fires ``task.overdue`` for other plugins.
* ``sales.stale_deals``: an open deal without activity for ``stale_deal_days``
  and without an open task gets one follow-up task (``origin="stale"``).

Each job first *claims* its rows with one ``UPDATE … WHERE <not yet done>``
stamped with the run's time, so two runs never handle the same row; then it
notifies with :func:`trellis.notifications.notify_from_select` and commits.
Events and the e-mail job go out after that commit.

``Deal.last_activity_at`` is kept current by :func:`deal_touched` and
:func:`task_touched`, called from the model rules in ``behaviour.py``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, and_, cast, exists, func, inspect, insert, literal, select, update

from trellis.db import db, utcnow
from trellis.events import emit
from trellis.jobs import enqueue
from trellis.notifications import EMAIL_JOB, notify_from_select
from trellis.settings import get_settings
from trellis_sales.models import Deal, Stage, Task

PLUGIN = "sales"
#: A task is "due soon" this long before its due time.
DUE_SOON = timedelta(hours=1)
#: How long after the stale-deal job runs its follow-up task is due.
STALE_TASK_DUE = timedelta(days=1)


# ------------------------------------------------------------------ last activity


def deal_touched(deal: Deal, action: str) -> None:
    """``Deal`` before_save: any change to a deal is activity on it."""
    if action != "deleted":
        deal.last_activity_at = utcnow()


def task_touched(session: Any, task: Task, action: str) -> None:
    """``Task`` before_save: a task created for a deal, or one marked done, is
    activity on its deal.  One UPDATE of that column only: no audit row or
    ``deal.updated`` event for the bookkeeping."""
    if action == "deleted":
        return
    done_now = task.done_at is not None and inspect(task).attrs["done_at"].history.has_changes()
    if action != "created" and not done_now:
        return
    with session.no_autoflush:
        deal = task.deal
    if deal is not None and deal.id is None:
        deal.last_activity_at = utcnow()  # a new deal, inserted in this flush
        return
    deal_id = deal.id if deal is not None else task.deal_id
    if deal_id is not None:
        session.execute(update(Deal).where(Deal.id == deal_id).values(last_activity_at=utcnow()),
                        execution_options={"synchronize_session": False})


# ------------------------------------------------------------------ jobs


def _task_link() -> Any:
    return literal("/taskview/show/") + cast(Task.id, String)


def _claim(column: Any, condition: Any, stamp: datetime) -> list[int]:
    """Set ``column`` to ``stamp`` on the open tasks matching ``condition`` that
    have it unset; the ids of the tasks this run claimed."""
    rows = db.session.execute(
        update(Task).where(condition, column.is_(None), Task.done_at.is_(None))
        .values({column.key: stamp}).returning(Task.id),
        execution_options={"synchronize_session": False})
    return [row[0] for row in rows]


def remind_tasks() -> dict[str, int]:
    """Job ``sales.remind_tasks``: notify owners of tasks due soon and overdue,
    each once, and fire ``task.overdue`` per newly overdue task."""
    now = utcnow()
    session = db.session
    due_soon = _claim(Task.reminder_sent_at,
                      and_(Task.due_at > now, Task.due_at <= now + DUE_SOON), now)
    overdue = _claim(Task.overdue_sent_at, Task.due_at <= now, now)
    notified = 0
    if due_soon:
        notified += notify_from_select(session, select(
            Task.owner_id.label("user_id"),
            func.substr(literal("Due soon: ") + Task.subject, 1, 255).label("subject"),
            (literal("This ") + Task.kind + literal(" is due within the hour.")).label("body"),
            _task_link().label("link"),
            (literal("sales.task.due:") + cast(Task.id, String)).label("dedupe_key"),
        ).where(Task.reminder_sent_at == now), kind="task.due", plugin=PLUGIN)
    if overdue:
        notified += notify_from_select(session, select(
            Task.owner_id.label("user_id"),
            func.substr(literal("Overdue: ") + Task.subject, 1, 255).label("subject"),
            (literal("This ") + Task.kind + literal(" is past its due time.")).label("body"),
            _task_link().label("link"),
            (literal("sales.task.overdue:") + cast(Task.id, String)).label("dedupe_key"),
        ).where(Task.overdue_sent_at == now), kind="task.overdue", plugin=PLUGIN)
        details = session.execute(select(Task.id, Task.owner_id, Task.deal_id, Task.lead_id,
                                         Task.contact_id, Task.due_at)
                                  .where(Task.overdue_sent_at == now)
                                  .order_by(Task.id)).all()
    session.commit()
    if overdue:
        for task_id, owner_id, deal_id, lead_id, contact_id, due_at in details:
            emit("task.overdue", {"task_id": task_id, "owner_id": owner_id,
                                  "deal_id": deal_id, "lead_id": lead_id,
                                  "contact_id": contact_id,
                                  "due_at": due_at.isoformat() if due_at else None},
                 plugin=PLUGIN)
    if notified:
        enqueue(EMAIL_JOB)
    return {"due_soon": len(due_soon), "overdue": len(overdue), "notified": notified}


def stale_deals() -> dict[str, int]:
    """Job ``sales.stale_deals``: one follow-up task for each open deal quiet for
    ``stale_deal_days`` and with no open task; its owner is told."""
    now = utcnow()
    session = db.session
    cutoff = now - timedelta(days=get_settings(PLUGIN)["stale_deal_days"])
    open_stage = select(Stage.id).where(Stage.is_won.is_(False), Stage.is_lost.is_(False))
    open_task = exists().where(Task.deal_id == Deal.id, Task.done_at.is_(None))
    # Claim: the follow-up task about to be created is itself activity on the deal.
    claimed = session.execute(
        update(Deal).where(Deal.stage_id.in_(open_stage),
                           func.coalesce(Deal.last_activity_at, Deal.created_on) < cutoff,
                           ~open_task)
        .values(last_activity_at=now).returning(Deal.id),
        execution_options={"synchronize_session": False}).all()
    if not claimed:
        session.commit()
        return {"tasks": 0, "notified": 0}
    due = literal(now + STALE_TASK_DUE, type_=Task.due_at.type)
    created = session.execute(insert(Task).from_select(
        ["kind", "subject", "due_at", "owner_id", "deal_id", "contact_id", "origin"],
        select(literal("todo"), func.substr(literal("Follow up: ") + Deal.name, 1, 200), due,
               Deal.owner_id, Deal.id, Deal.contact_id, literal("stale"))
        .where(Deal.last_activity_at == now, ~open_task)).returning(Task.id)).all()
    created = len(created)  # (rowcount of INSERT … SELECT is -1 under psycopg)
    notified = notify_from_select(session, select(
        Task.owner_id.label("user_id"),
        func.substr(literal("Deal gone quiet: ") + Deal.name, 1, 255).label("subject"),
        literal("No activity for a while; a follow-up task was created.").label("body"),
        _task_link().label("link"),
        (literal("sales.task.stale:") + cast(Task.id, String)).label("dedupe_key"),
    ).join(Deal, Deal.id == Task.deal_id).where(
        Deal.last_activity_at == now, Task.origin == "stale", Task.done_at.is_(None)),
        kind="deal.stale", plugin=PLUGIN)
    session.commit()
    if notified:
        enqueue(EMAIL_JOB)
    return {"tasks": created, "notified": notified}

"""Satisfaction surveys: when a ticket is resolved the customer gets an e-mail
with a signed link (:mod:`trellis.signing`, purpose ``service.survey``, valid
30 days) to a public page asking for a rating 1–5, a comment and optionally
NPS 0–10.  The answer attaches to the ticket, the agent and team who had it,
and the contact; :func:`satisfaction_feature` offers the average rating per
contact to other plugins (``trellis_customer_features``), and :func:`csat`
reports it by agent or team."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, render_template, request
from sqlalchemy import Float, case, cast, func, select

from trellis import mail, rules
from trellis.db import db
from trellis.events import Event, emit
from trellis.models import Activity, Team
from trellis.settings import get_settings
from trellis.signing import BadToken, sign, unsign
from trellis_service import sla
from trellis_service.models import Survey, Ticket

PURPOSE = "service.survey"
MAX_AGE = 30 * 24 * 3600
HERE = Path(__file__).resolve().parent

survey_pages = Blueprint("service_survey", __name__, url_prefix="/service/survey",
                         template_folder=str(HERE / "templates"))


def link(survey_id: int) -> str:
    """The absolute survey link (``TRELLIS_BASE_URL`` + path)."""
    token = sign(PURPOSE, {"s": survey_id})
    return f"{current_app.config.get('TRELLIS_BASE_URL') or ''}/service/survey/{token}"


def on_resolved(event: Event) -> None:
    """Handler of ``ticket.resolved``: one survey per ticket, e-mailed once."""
    if not get_settings("service")["survey_on_resolve"]:
        return
    ticket = db.session.get(Ticket, event.data.get("ticket_id"))
    if ticket is None:
        return
    to = ticket.email or (ticket.contact.email if ticket.contact is not None else None)
    if not to:
        return
    survey = db.session.scalar(select(Survey).where(Survey.ticket_id == ticket.id))
    if survey is None:
        survey = Survey(ticket_id=ticket.id, contact_id=ticket.contact_id,
                        agent_id=ticket.assignee_id, team_id=ticket.team_id)
        db.session.add(survey)
        db.session.commit()
    if survey.sent_at is not None or not mail.configured():
        return
    body = (f"Your request \"{ticket.subject}\" {ticket.reference} has been resolved.\n\n"
            f"How satisfied are you with our help? Tell us in one click:\n{link(survey.id)}\n")
    if mail.send([mail.Mail(to=to, subject=f"How did we do? {ticket.reference}", body=body)]):
        survey.sent_at = sla.clock()
        db.session.commit()


def _load(token: str) -> tuple[Survey | None, str | None]:
    try:
        data = unsign(PURPOSE, token, max_age=MAX_AGE)
    except BadToken as exc:
        return None, str(exc)
    survey = db.session.get(Survey, data.get("s")) if isinstance(data, dict) else None
    return (survey, None) if survey is not None else (None, "This link is not valid.")


def _int(errors: dict[str, list[str]], name: str, low: int, high: int,
         required: bool) -> int | None:
    raw = (request.form.get(name) or "").strip()
    if not raw:
        if required:
            errors[name] = [f"Choose a value from {low} to {high}."]
        return None
    if not raw.isdigit() or not low <= int(raw) <= high:
        errors[name] = [f"Must be a whole number from {low} to {high}."]
        return None
    return int(raw)


@survey_pages.route("/<token>", methods=["GET", "POST"])
def answer(token: str) -> Any:
    """The survey form; a POST records the answer once."""
    survey, problem = _load(token[:500])
    if survey is None:
        return render_template("service/survey.html", problem=problem, survey=None), 404
    if survey.answered_at is not None:
        return render_template("service/survey.html", survey=survey, done=True,
                               problem="You have already answered this survey. Thank you!"), \
            409 if request.method == "POST" else 200
    if request.method == "GET":
        return render_template("service/survey.html", survey=survey, errors={},
                               rating=request.args.get("rating", ""))
    errors: dict[str, list[str]] = {}
    rating = _int(errors, "rating", 1, 5, required=True)
    nps = _int(errors, "nps", 0, 10, required=False)
    comment = (request.form.get("comment") or "").strip()
    if len(comment) > 2000:
        errors["comment"] = ["At most 2000 characters."]
    if errors:
        return render_template("service/survey.html", survey=survey, errors=errors,
                               rating=request.form.get("rating", ""), comment=comment), 400
    survey.rating, survey.nps, survey.comment = rating, nps, comment or None
    survey.answered_at = sla.clock()
    ticket = survey.ticket
    if ticket.contact_id is not None or ticket.account_id is not None:
        db.session.add(Activity(type="ticket.rated", subject=f"Rated ticket #{ticket.id}: "
                                f"{rating}/5", contact_id=ticket.contact_id,
                                account_id=ticket.account_id, plugin="service",
                                payload={"ticket_id": ticket.id, "rating": rating, "nps": nps}))
    emit("ticket.rated", {"ticket_id": ticket.id, "rating": rating, "nps": nps,
                          "agent_id": survey.agent_id}, plugin="service")
    db.session.commit()
    return render_template("service/survey.html", survey=survey, done=True,
                           problem="Thank you for your feedback!")


# ------------------------------------------------------------------ figures


def satisfaction_feature() -> Any:
    """``satisfaction``: the contact's average rating (1–5) over answered surveys."""
    return (select(Survey.contact_id.label("contact_id"),
                   func.avg(cast(Survey.rating, Float)).label("value"))
            .where(Survey.rating.is_not(None), Survey.contact_id.is_not(None))
            .group_by(Survey.contact_id))


def csat(session: Any, by: str = "agent") -> list[dict[str, Any]]:
    """CSAT per agent or team, under the user's record rules: answered surveys,
    the average rating, and CSAT % (the share rating 4 or 5), in one query."""
    from flask_appbuilder.security.sqla.models import User

    key = Survey.agent_id if by == "agent" else Survey.team_id
    label = (User.username if by == "agent" else Team.name).label("label")
    satisfied = func.sum(case((Survey.rating >= 4, 1), else_=0))
    stmt = (select(key.label("key"), label, func.count().label("responses"),
                   func.avg(cast(Survey.rating, Float)).label("average"),
                   satisfied.label("satisfied"))
            .select_from(Survey)
            .outerjoin(User if by == "agent" else Team,
                       (User.id == Survey.agent_id) if by == "agent" else
                       (Team.id == Survey.team_id))
            .where(Survey.rating.is_not(None)).group_by(key, label).order_by(label))
    stmt = rules.restrict(stmt, Survey)
    return [{"id": row.key, "label": row.label, "responses": row.responses,
             "average": round(float(row.average), 2),
             "csat_pct": round(100.0 * row.satisfied / row.responses, 1)}
            for row in session.execute(stmt)]

"""The customer portal at ``/portal/``: a contact signs in with a link e-mailed
to their address (no password; separate from staff accounts), then follows
their tickets, reads the public thread (internal notes and call logs never appear), replies,
and opens new tickets.

* ``POST /portal/login`` (rate-limited, ``SERVICE_PORTAL_RATE_LIMIT``, default
  ``5 per minute``) always answers the same page, so it does not reveal which
  addresses are customers; a known contact gets a link signed with
  :mod:`trellis.signing` (purpose ``service.portal``, valid 1 hour).
* Following the link stores the contact id in the session under its own key
  (staff sign-in is untouched, and a staff session does not open the portal).
* The portal's own forms carry a per-session CSRF token (public blueprints
  are exempt from the core's CSRF protection).
* Every page shows only the signed-in contact's tickets (others answer 404).
"""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, current_app, redirect, render_template, request, session
from sqlalchemy import func, select

from trellis import mail
from trellis.context import acting_as
from trellis.db import db
from trellis.models import Contact
from trellis.signing import BadToken, sign, unsign
from trellis.validation import RecordInvalid
from trellis_service.models import Ticket, TicketMessage

HERE = Path(__file__).resolve().parent
PURPOSE = "service.portal"
KEY = "service_portal_contact"
CSRF = "service_portal_csrf"
MAX_AGE = 3600

portal = Blueprint("service_portal", __name__, url_prefix="/portal",
                   template_folder=str(HERE / "templates"))
portal_login = Blueprint("service_portal_login", __name__, url_prefix="/portal",
                         template_folder=str(HERE / "templates"))


def _csrf() -> str:
    if CSRF not in session:
        session[CSRF] = secrets.token_urlsafe(24)
    return session[CSRF]


def _check_csrf() -> None:
    sent = request.form.get("csrf_token", "")
    if not sent or not hmac.compare_digest(sent, session.get(CSRF, "")):
        abort(400, description="The form expired; reload the page and try again.")


def _contact() -> Contact | None:
    contact_id = session.get(KEY)
    return db.session.get(Contact, contact_id) if isinstance(contact_id, int) else None


def _render(template: str, status: int = 200, **context: Any) -> Any:
    return render_template(f"service/{template}", csrf_token=_csrf(), **context), status


@portal_login.route("/login", methods=["POST"])
def request_link() -> Any:
    """E-mail a sign-in link to a known contact; the same answer for anyone."""
    email = (request.form.get("email") or "").strip().lower()[:255]
    if "@" not in email:
        return _render("portal_login.html", 400, errors={"email": ["Enter your e-mail address."]})
    contact = db.session.scalar(select(Contact).where(func.lower(Contact.email) == email)
                                .order_by(Contact.id).limit(1))
    if contact is not None and mail.configured():
        base = current_app.config.get("TRELLIS_BASE_URL") or ""
        link = f"{base}/portal/login/{sign(PURPOSE, {'c': contact.id})}"
        mail.send([mail.Mail(to=contact.email, subject="Your sign-in link",
                             body=f"Sign in to the support portal (valid for one hour):\n{link}\n")])
    return _render("portal_login.html", sent=True, errors={})


@portal.route("/", methods=["GET"])
def home() -> Any:
    contact = _contact()
    if contact is None:
        return _render("portal_login.html", errors={})
    tickets = db.session.scalars(select(Ticket).where(Ticket.contact_id == contact.id)
                                 .order_by(Ticket.id.desc()).limit(200)).all()
    return _render("portal_home.html", contact=contact, tickets=tickets, errors={}, values={})


@portal.route("/login/<token>", methods=["GET"])
def login(token: str) -> Any:
    try:
        data = unsign(PURPOSE, token[:500], max_age=MAX_AGE)
    except BadToken as exc:
        return _render("portal_login.html", 400, errors={"link": [str(exc)]})
    contact = db.session.get(Contact, data.get("c")) if isinstance(data, dict) else None
    if contact is None:
        return _render("portal_login.html", 400, errors={"link": ["This link is not valid."]})
    session[KEY] = contact.id
    session[CSRF] = secrets.token_urlsafe(24)
    return redirect("/portal/")


@portal.route("/logout", methods=["POST"])
def logout() -> Any:
    _check_csrf()
    session.pop(KEY, None)
    return redirect("/portal/")


def _own_ticket(contact: Contact, ticket_id: int) -> Ticket:
    ticket = db.session.get(Ticket, ticket_id) if ticket_id < 2**31 else None
    if ticket is None or ticket.contact_id != contact.id:
        abort(404)
    return ticket


@portal.route("/tickets", methods=["POST"])
def new_ticket() -> Any:
    contact = _contact()
    if contact is None:
        return redirect("/portal/")
    _check_csrf()
    values = {k: (request.form.get(k) or "").strip() for k in ("subject", "description")}
    errors: dict[str, list[str]] = {}
    if not values["subject"] or len(values["subject"]) > 200:
        errors["subject"] = ["Give a subject of 1 to 200 characters."]
    if not values["description"] or len(values["description"]) > 10_000:
        errors["description"] = ["Describe the problem (up to 10,000 characters)."]
    if not errors:
        with acting_as(None, "portal", "job"):
            try:
                ticket = Ticket(subject=values["subject"], description=values["description"],
                                channel="web_form", contact_id=contact.id,
                                account_id=contact.account_id, email=contact.email)
                db.session.add(ticket)
                db.session.commit()
                return redirect(f"/portal/tickets/{ticket.id}")
            except RecordInvalid as exc:
                db.session.rollback()
                errors = exc.messages
    tickets = db.session.scalars(select(Ticket).where(Ticket.contact_id == contact.id)
                                 .order_by(Ticket.id.desc()).limit(200)).all()
    return _render("portal_home.html", 400, contact=contact, tickets=tickets, errors=errors,
                   values=values)


@portal.route("/tickets/<int:ticket_id>", methods=["GET", "POST"])
def ticket_page(ticket_id: int) -> Any:
    contact = _contact()
    if contact is None:
        return redirect("/portal/")
    ticket = _own_ticket(contact, ticket_id)
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        _check_csrf()
        body = (request.form.get("body") or "").strip()
        if not body or len(body) > 10_000:
            errors["body"] = ["Write a message (up to 10,000 characters)."]
            status = 400
        else:
            with acting_as(None, "portal", "job"):
                db.session.add(TicketMessage(ticket=ticket, kind="customer", body=body,
                                             from_email=contact.email))
                if ticket.status in ("pending", "resolved", "closed"):
                    ticket.status = "open"
                db.session.commit()
            return redirect(f"/portal/tickets/{ticket.id}")
    thread = db.session.scalars(select(TicketMessage).where(
        TicketMessage.ticket_id == ticket.id, TicketMessage.kind.in_(("customer", "reply")))
        .order_by(TicketMessage.id)).all()
    return _render("portal_ticket.html", status, contact=contact, ticket=ticket, thread=thread,
                   errors=errors)


def limit(app: Any) -> None:
    """Rate-limit sign-in link requests per client address."""
    limiter = getattr(app.appbuilder.sm, "limiter", None)
    if limiter is not None:
        limiter.limit(app.config.get("SERVICE_PORTAL_RATE_LIMIT", "5 per minute"),
                      methods=["POST"])(portal_login)

"""Duplicate warnings: "a contact with this e-mail already exists".

A model opts in with ``ModelSpec.duplicates(session, obj)``, returning a
``select()`` (or a ``union_all`` of several) of candidate rows labelled
``model`` (registry name), ``id``, ``label`` and ``reason`` — or ``None``
when ``obj`` has nothing to match on.  ``obj`` may be saved (its own row must
then be left out: :func:`not_self`) or a would-be record that is not in the
session.  The match runs in the database (no records are loaded into Python)
and at most :data:`LIMIT` candidates are looked at.

:func:`find_duplicates` runs a model's matcher and applies the record rules:
a match the user may not see is reported without its id or name ("a record you
cannot see matches").  The REST API adds ``"warnings": {"duplicates": [...]}``
to create responses and answers ``POST /api/v1/<resource>/_duplicates`` (the
check before creating); the web UI flashes a warning with links after adding.
Warnings never block the save.

The core matches contacts (same e-mail ignoring case; same first and last
name with the same phone or account) and accounts (same domain; same name,
ignoring case and legal suffixes such as "Inc." or "GmbH").
"""

from __future__ import annotations

import logging
import re
from typing import Any, Sequence

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import String, and_, func, literal, select, union_all

from trellis import rules

log = logging.getLogger(__name__)

__all__ = ["find_duplicates", "candidates", "not_self", "name_variants", "digits",
           "combine", "contact_duplicates", "account_duplicates", "HIDDEN_LABEL"]

#: Candidates looked at per check.
LIMIT = 10
HIDDEN_LABEL = "A record you cannot see matches"
#: Legal-form suffixes ignored when comparing company names.
LEGAL_SUFFIXES = ("inc", "inc.", "llc", "ltd", "ltd.", "limited", "corp", "corp.",
                  "corporation", "co", "co.", "company", "gmbh", "ag", "sa", "s.a.", "sarl",
                  "bv", "b.v.", "nv", "plc", "oy", "ab", "as", "kg", "se", "srl", "spa",
                  "s.p.a.", "pty", "pty ltd", "gmbh & co. kg")


def candidates(model: str, id_col: Any, label: Any, reason: str) -> Any:
    """A ``select()`` of candidate rows in the shape :func:`find_duplicates` reads."""
    return select(literal(model, String).label("model"), id_col.label("id"),
                  label.label("label"), literal(reason, String).label("reason"))


def not_self(stmt: Any, id_col: Any, obj: Any) -> Any:
    """Leave the record itself out (when it has been saved already)."""
    own = getattr(obj, "id", None)
    return stmt if own is None else stmt.where(id_col != own)


def combine(selects: Sequence[Any]) -> Any:
    """One statement from several candidate selects (``None`` when there are none)."""
    selects = [s for s in selects if s is not None]
    if not selects:
        return None
    return selects[0] if len(selects) == 1 else union_all(*selects)


def _clean(value: Any) -> str:
    return re.sub(r"\s+", " ", str(value or "")).strip().lower()


def name_variants(name: str | None) -> list[str]:
    """Lower-cased spellings of a company name that count as the same:
    ``"Acme, Inc."`` -> ``["acme", "acme inc", "acme, inc.", ...]``."""
    base = _clean(name)
    if not base:
        return []
    stripped = base
    for suffix in sorted(LEGAL_SUFFIXES, key=len, reverse=True):
        for sep in (", ", " "):
            if stripped.endswith(sep + suffix):
                stripped = stripped[: -len(sep + suffix)].strip(" ,")
                break
    stripped = stripped.strip(" ,.")
    if not stripped:
        return [base]
    variants = {base, stripped}
    for suffix in LEGAL_SUFFIXES:
        variants.update({f"{stripped} {suffix}", f"{stripped}, {suffix}"})
    return sorted(variants)


def digits(column: Any) -> Any:
    """A phone column without spaces and punctuation, in SQL (SQLite and PostgreSQL)."""
    expr = column
    for char in (" ", "-", "(", ")", "/", ".", "+"):
        expr = func.replace(expr, char, "")
    return expr


def phone_digits(value: str | None) -> str:
    return re.sub(r"[\s\-()/.+]", "", value or "")


# ------------------------------------------------------------------ the core's matchers


def contact_duplicates(session: Any, contact: Any) -> Any:
    """Contacts with the same e-mail (ignoring case), or the same first and last
    name and the same phone number or account."""
    from trellis.models import Contact

    label = Contact.first_name + literal(" ") + Contact.last_name
    selects = []
    email = _clean(contact.email)
    if email:
        selects.append(not_self(candidates("contact", Contact.id, label, "same e-mail")
                                .where(func.lower(Contact.email) == email), Contact.id, contact))
    first, last = _clean(contact.first_name), _clean(contact.last_name)
    same_name = and_(func.lower(Contact.last_name) == last,
                     func.lower(Contact.first_name) == first)
    phone = phone_digits(contact.phone)
    if first and last and phone:
        selects.append(not_self(candidates("contact", Contact.id, label,
                                           "same name and phone")
                                .where(same_name, digits(Contact.phone) == phone),
                                Contact.id, contact))
    account_id = contact.account.id if getattr(contact, "account", None) is not None \
        else contact.account_id
    if first and last and account_id is not None:
        selects.append(not_self(candidates("contact", Contact.id, label,
                                           "same name and account")
                                .where(same_name, Contact.account_id == account_id),
                                Contact.id, contact))
    return combine(selects)


def normal_domain(value: str | None) -> str:
    domain = _clean(value)
    domain = re.sub(r"^[a-z]+://", "", domain).split("/")[0]
    return domain[4:] if domain.startswith("www.") else domain


def account_duplicates(session: Any, account: Any) -> Any:
    """Accounts with the same domain, or the same name (ignoring case and legal form)."""
    from trellis.models import Account

    selects = []
    domain = normal_domain(account.domain)
    if domain:
        selects.append(not_self(candidates("account", Account.id, Account.name, "same domain")
                                .where(Account.domain.in_([domain, f"www.{domain}"])),
                                Account.id, account))
    names = name_variants(account.name)
    if names:
        selects.append(not_self(candidates("account", Account.id, Account.name, "same name")
                                .where(func.lower(Account.name).in_(names)),
                                Account.id, account))
    return combine(selects)


# ------------------------------------------------------------------ running a check


def find_duplicates(session: Any, obj: Any, limit: int = LIMIT) -> list[dict[str, Any]]:
    """Possible duplicates of ``obj`` (saved or not) under its model's matcher.

    Returns ``[{"model", "id", "label", "reason"}]``; a match the current user
    may not see has ``id`` and ``label`` hidden (``"hidden": true``), one entry
    per model and reason.  ``[]`` when the model has no matcher.
    """
    registry = current_app.extensions["trellis"].registry
    entry = registry.for_class(type(obj))
    if entry is None or entry.spec.duplicates is None:
        return []
    with session.no_autoflush:
        stmt = entry.spec.duplicates(session, obj)
        if stmt is None:
            return []
        rows = session.execute(stmt.limit(limit)).mappings().all()
        visible: dict[str, set[Any]] = {}
        for name in {r["model"] for r in rows}:
            model = registry.get(name).model
            key = model.__mapper__.primary_key[0]
            ids = [r["id"] for r in rows if r["model"] == name]
            visible[name] = set(session.scalars(rules.restrict(
                select(key).where(key.in_(ids)), model)))
    found: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        if row["id"] in visible[row["model"]]:
            key = (row["model"], row["id"])
            if key in found:
                if row["reason"] not in found[key]["reason"].split(", "):
                    found[key]["reason"] += f", {row['reason']}"
                continue
            found[key] = {"model": row["model"], "id": row["id"],
                          "label": str(row["label"] or ""), "reason": row["reason"]}
        else:
            found.setdefault(("hidden", row["model"], row["reason"]), {
                "model": row["model"], "id": None, "label": HIDDEN_LABEL,
                "reason": row["reason"], "hidden": True})
    return sorted(found.values(), key=lambda d: (d.get("hidden", False), d["model"],
                                                 d["id"] or 0, d["reason"]))


def warnings_for(session: Any, obj: Any) -> list[dict[str, Any]]:
    """:func:`find_duplicates` for a record that has just been saved: a failing
    matcher is logged and warns of nothing, it never fails the save's answer."""
    try:
        return find_duplicates(session, obj)
    except Exception:  # noqa: BLE001 - a warning must not turn a saved record into a 500
        log.exception("duplicate check of %r failed", obj)
        session.rollback()
        return []


def has_matcher(model: type) -> bool:
    entry = current_app.extensions["trellis"].registry.for_class(model)
    return entry is not None and entry.spec.duplicates is not None


def show_url(model_name: str, pk: Any) -> str | None:
    """The show page of a record, through the first admin view of its model."""
    from flask import url_for
    from flask_appbuilder import ModelView

    model = current_app.extensions["trellis"].registry.get(model_name).model
    for view in current_app.appbuilder.baseviews:
        if isinstance(view, ModelView) and getattr(view.datamodel, "obj", None) is model:
            return url_for(f"{view.endpoint}.show", pk=pk)
    return None


def flash_duplicates(obj: Any) -> None:
    """After adding a record in the web UI: a warning linking to its matches."""
    from flask import flash
    from markupsafe import Markup, escape

    from trellis.db import db

    found = warnings_for(db.session, obj)
    if not found:
        return
    items = []
    for match in found:
        url = None if match.get("hidden") else show_url(match["model"], match["id"])
        text = escape(match["label"])
        link = Markup('<a href="{}">{}</a>').format(url, text) if url else text
        items.append(Markup("{} ({})").format(link, escape(match["reason"])))
    flash(Markup(escape(_("Possible duplicate: this record matches %(matches)s. It was saved "
                                 "anyway; check and merge if needed."))).replace(
        "%(matches)s", Markup("; ").join(items)), "warning")

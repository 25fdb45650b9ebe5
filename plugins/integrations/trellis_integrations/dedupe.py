"""Finding duplicate contacts and accounts, and merging them (through ``trellis.merge``).

The job ``integrations.find_duplicates`` looks for candidate pairs in SQL: it
groups records by a key and keeps the keys that occur more than once (one
scan and sort per key, no pairwise comparison of the table), then pairs the
members of each group:

=================================  ===========================================  ======
Reason                             Key                                          Weight
=================================  ===========================================  ======
same e-mail (+tags and case)       ``lower(email)`` without ``+tag``            0.9
same phone                         the phone's digits (at least 6)              0.7
similar name at the same company   contact: ``account_id`` + ``lower(last       0.8 ×
                                   name)``, then first names compared           similarity
                                   (``difflib`` ratio ≥ 0.75, or an initial)
same domain (accounts)             ``lower(domain)`` without ``www.``           0.9
similar name (accounts)            first 4 letters, then names compared         0.7 ×
                                   without legal form (``Inc``, ``GmbH``…)      similarity
=================================  ===========================================  ======

A pair's score is ``1 - Π(1 - weight)`` over its reasons (two independent
hints make a stronger case than either).  Candidates are kept in
:class:`~trellis_integrations.models.DuplicateCandidate`; a dismissed pair is
not proposed again, an open one is refreshed.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from itertools import combinations
from typing import Any

from sqlalchemy import String, func, literal, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from trellis import merge as core_merge
from trellis.db import db, utcnow
from trellis.duplicates import digits, name_variants
from trellis.models import Account, Contact

from trellis_integrations.models import DuplicateCandidate

PLUGIN = "integrations"
MODELS = ("contact", "account")
WEIGHTS = {"same e-mail": 0.9, "same phone": 0.7, "similar name at the same company": 0.8,
           "same domain": 0.9, "similar name": 0.7}
#: Members looked at per key (a key shared by thousands is not a duplicate hint).
GROUP_CAP = 50


class email_base(FunctionElement):  # noqa: N801 - used like a SQL function
    """``lower(email)`` without a ``+tag`` in the local part."""

    type = String()
    inherit_cache = True
    name = "email_base"


@compiles(email_base, "postgresql")
def _email_base_pg(element: Any, compiler: Any, **kw: Any) -> str:
    return "lower(regexp_replace(%s, '\\+[^@]*@', '@'))" % compiler.process(element.clauses, **kw)


@compiles(email_base, "sqlite")
def _email_base_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    col = compiler.process(element.clauses, **kw)
    return (f"lower(CASE WHEN instr({col}, '+') > 0 AND instr({col}, '+') < instr({col}, '@') "
            f"THEN substr({col}, 1, instr({col}, '+') - 1) || substr({col}, instr({col}, '@')) "
            f"ELSE {col} END)")


def _groups(key: Any, id_col: Any, where: Any = None) -> dict[Any, list[int]]:
    """Records sharing ``key`` with at least one other: ``{key: [ids]}``."""
    dup = select(key.label("k")).group_by(key).having(func.count() > 1)
    if where is not None:
        dup = dup.where(where)
    dup_keys = dup.subquery()
    stmt = select(key, id_col).where(key.in_(select(dup_keys.c.k))).order_by(key, id_col)
    if where is not None:
        stmt = stmt.where(where)
    out: dict[Any, list[int]] = defaultdict(list)
    for k, record_id in db.session.execute(stmt):
        if len(out[k]) < GROUP_CAP:
            out[k].append(record_id)
    return out


def similarity(a: str, b: str) -> float:
    a, b = a.strip().lower(), b.strip().lower()
    if not a or not b:
        return 0.0
    if a == b:
        return 1.0
    if (len(a) <= 2 or len(b) <= 2) and a[0] == b[0]:  # "J." and "John"
        return 0.8
    return difflib.SequenceMatcher(None, a, b).ratio()


def _company_name(name: str) -> str:
    variants = name_variants(name)
    return min(variants, key=len) if variants else ""


def contact_pairs() -> dict[tuple[int, int], dict[str, float]]:
    pairs: dict[tuple[int, int], dict[str, float]] = defaultdict(dict)
    for ids in _groups(email_base(Contact.email), Contact.id,
                       Contact.email.is_not(None)).values():
        for a, b in combinations(ids, 2):
            pairs[(a, b)]["same e-mail"] = WEIGHTS["same e-mail"]
    phone = digits(Contact.phone)
    for ids in _groups(phone, Contact.id, func.length(phone) >= 6).values():
        for a, b in combinations(ids, 2):
            pairs[(a, b)]["same phone"] = WEIGHTS["same phone"]
    block = Contact.account_id.cast(String) + literal("|") + func.lower(Contact.last_name)
    groups = _groups(block, Contact.id, Contact.account_id.is_not(None))
    if groups:
        ids = [i for members in groups.values() for i in members]
        first = dict(db.session.execute(select(Contact.id, Contact.first_name)
                                        .where(Contact.id.in_(ids))).all())
        for members in groups.values():
            for a, b in combinations(members, 2):
                ratio = similarity(first.get(a) or "", first.get(b) or "")
                if ratio >= 0.75:
                    pairs[(a, b)]["similar name at the same company"] = round(
                        WEIGHTS["similar name at the same company"] * ratio, 3)
    return pairs


def account_pairs() -> dict[tuple[int, int], dict[str, float]]:
    pairs: dict[tuple[int, int], dict[str, float]] = defaultdict(dict)
    domain = func.lower(Account.domain)
    bare = func.replace(domain, "www.", "")
    for ids in _groups(bare, Account.id, Account.domain.is_not(None)).values():
        for a, b in combinations(ids, 2):
            pairs[(a, b)]["same domain"] = WEIGHTS["same domain"]
    block = func.substr(func.lower(Account.name), 1, 4)
    groups = _groups(block, Account.id)
    if groups:
        ids = [i for members in groups.values() for i in members]
        names = {i: _company_name(n) for i, n in db.session.execute(
            select(Account.id, Account.name).where(Account.id.in_(ids)))}
        for members in groups.values():
            for a, b in combinations(members, 2):
                ratio = similarity(names[a], names[b])
                if ratio >= 0.85:
                    pairs[(a, b)]["similar name"] = round(WEIGHTS["similar name"] * ratio, 3)
    return pairs


def score(reasons: dict[str, float]) -> float:
    remaining = 1.0
    for weight in reasons.values():
        remaining *= 1.0 - weight
    return round(1.0 - remaining, 3)


def find_duplicates(model: str | None = None) -> dict[str, int]:
    """Job: refresh the duplicate candidates of contacts and accounts."""
    out = {}
    for name in ([model] if model else MODELS):
        found = contact_pairs() if name == "contact" else account_pairs()
        existing = {(c.a_id, c.b_id): c for c in db.session.scalars(
            select(DuplicateCandidate).where(DuplicateCandidate.model == name))}
        added = 0
        for (a, b), reasons in found.items():
            candidate = existing.get((a, b))
            labels = sorted(reasons, key=lambda r: -reasons[r])
            if candidate is None:
                db.session.add(DuplicateCandidate(model=name, a_id=a, b_id=b,
                                                  score=score(reasons), reasons=labels))
                added += 1
            elif candidate.status == "open":
                candidate.score, candidate.reasons, candidate.found_on = \
                    score(reasons), labels, utcnow()
        db.session.commit()
        out[name] = added
    return out


# ------------------------------------------------------------------ merge support


def close_candidates(session: Any, model: str, winner_id: int, loser_ids: list[int]) -> None:
    """``trellis_before_merge``: candidates about the losers are settled (journaled,
    so undoing the merge reopens them)."""
    if model not in MODELS:
        return
    table = DuplicateCandidate.__table__
    involved = (table.c.model == model) & (table.c.status == "open") & (
        table.c.a_id.in_(loser_ids) | table.c.b_id.in_(loser_ids))
    core_merge.update_rows(session, table, table.c.status, involved, "merged")


def label_of(model: str, record: Any) -> str:
    if record is None:
        return "(deleted)"
    return str(record)


def record_fields(model: str) -> list[str]:
    """Fields offered on the review screen."""
    if model == "contact":
        return ["first_name", "last_name", "email", "phone", "title", "account_id", "owner_id"]
    return ["name", "domain", "industry", "phone", "country", "owner_id"]


def model_class(model: str) -> type:
    return Contact if model == "contact" else Account

"""Benchmark the sales reports and the pipeline board against hand-written SQL.

    .venv/bin/python bench/sales_reports.py --deals 1000000

1. makes sure ``trellis_bench_sales_<deals>`` holds the generated data
   (generate_sales.py);
2. starts two gunicorn servers on 127.0.0.1 with the same worker count:
   Trellis (``trellis.app:create_app()``) and the baseline of this file
   (``sales_reports:create_baseline_app()``: bare Flask + raw SQL, no login);
3. logs in to Trellis as ``admin`` and as the Sales Rep ``rep01`` (JWT for the
   report API, a session cookie for the board pages);
4. checks that Trellis and the baseline give the same figures for every case
   (an assertion: a fast but wrong baseline must not flatter the ratio);
5. times each case one request at a time, ``--rounds`` times per server,
   alternating which server goes first, after one unmeasured warm-up request;
6. prints a table (median ms, Trellis ÷ baseline, CPU per request) and writes
   ``bench/results/<UTC timestamp>-sales.json``; stops both servers.

``--explain`` instead runs every report in-process (Flask test request as
admin), captures the SQL Trellis sends and prints ``EXPLAIN (ANALYZE,
BUFFERS)`` of each statement: where the time goes inside PostgreSQL.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import re
import shlex
import signal
import sys
import time
import urllib.parse
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from statistics import median

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
sys.path.insert(0, str(BENCH))

import generate  # noqa: E402
import generate_sales  # noqa: E402

HOST = "127.0.0.1"
AS_OF_DAY = "2026-11-01"          # generate_sales.NOW: the data's "today"
VELOCITY_AS_OF = "2026-10-31"     # window 2025-11-01 .. 2026-10-31
REPORT = "/api/v1/sales_report/"

# report -> its query (the same for both servers) and what the check compares:
# (the row key, the fields compared in every row)
CASES: dict[str, dict] = {
    "forecast": {"path": f"forecast?group=month&as_of={AS_OF_DAY}",
                 "check": ("month", ["open_deals", "weighted", "best_case", "committed", "won"])},
    "win_rate": {"path": "win_rate?group=owner",
                 "check": ("owner", ["won", "lost", "win_rate", "won_amount", "lost_amount"])},
    "funnel": {"path": "funnel?group=month",
               "check": ("month", ["leads", "by_status", "converted", "deals", "won"])},
    "sales_cycle": {"path": "sales_cycle?group=owner",
                    "check": ("owner", ["won_deals", "avg_days", "min_days", "max_days"])},
    "time_in_stage": {"path": f"time_in_stage?as_of={AS_OF_DAY}T00:00:00Z",
                      "check": ("stage_id", ["stints", "open_stints", "avg_days"])},
    "lost_reasons": {"path": "lost_reasons",
                     "check": ("reason", ["deals", "amount"])},
    "pipeline_velocity": {"path": f"pipeline_velocity?as_of={VELOCITY_AS_OF}",
                          "check": (None, ["open_deals", "won", "lost", "avg_won_amount",
                                           "avg_cycle_days", "velocity_per_day"])},
    "repeat_purchase": {"path": "repeat_purchase?group=year",
                        "check": ("year", ["customers", "repeat_customers", "orders"])},
    "quota_attainment": {"path": "quota_attainment",
                         "check": ("quota_id", ["won_deals", "won", "attainment"])},
}
REPORT_CASES = list(CASES)
BOARD_CASES = ["board_figures", "board_page"]
REP_CASES = ["rep:forecast", "rep:win_rate", "rep:time_in_stage", "rep:board_figures"]
ALL_CASES = REPORT_CASES + BOARD_CASES + REP_CASES


# ------------------------------------------------------------------ the baseline

RATES = """rates AS (
    SELECT currency, rate, valid_from,
           lead(valid_from, 1, date 'infinity') OVER (PARTITION BY currency
                                                      ORDER BY valid_from) AS valid_to
    FROM trellis_exchange_rate)"""


def _day(col: str) -> str:
    return f"CAST(timezone('UTC', {col}) AS date)"


def _conv(day: str) -> str:
    """LEFT JOIN to the rate valid on ``day`` and the converted amount ``c.conv``."""
    return (f"LEFT JOIN rates r ON r.currency = d.currency AND r.valid_from <= {day} "
            f"AND {day} < r.valid_to CROSS JOIN LATERAL (SELECT CASE WHEN d.currency = "
            f":company THEN d.amount ELSE d.amount * r.rate END AS conv) c")


B_FORECAST_OPEN = f"""WITH {RATES}
SELECT to_char(d.expected_close, 'YYYY-MM'), d.currency, count(*),
       count(*) FILTER (WHERE c.conv IS NULL),
       sum(c.conv * d.probability / 100.0), sum(c.conv),
       sum(c.conv) FILTER (WHERE d.probability >= :commit),
       sum(d.amount * d.probability / 100.0) FILTER (WHERE c.conv IS NULL),
       sum(d.amount) FILTER (WHERE c.conv IS NULL),
       sum(d.amount) FILTER (WHERE c.conv IS NULL AND d.probability >= :commit)
FROM sales_deal d JOIN sales_stage s ON s.id = d.stage_id
{_conv('CAST(:as_of AS date)')}
WHERE NOT s.is_won AND NOT s.is_lost {{owner}}
GROUP BY 1, 2"""

B_FORECAST_WON = f"""WITH {RATES}
SELECT to_char(d.won_at, 'YYYY-MM'), d.currency, sum(c.conv),
       sum(d.amount) FILTER (WHERE c.conv IS NULL), count(*) FILTER (WHERE c.conv IS NULL)
FROM sales_deal d JOIN sales_stage s ON s.id = d.stage_id
{_conv(_day('d.won_at'))}
WHERE d.won_at IS NOT NULL AND s.is_won {{owner}}
GROUP BY 1, 2"""

B_WIN_RATE = f"""WITH {RATES}
SELECT d.owner_id, d.currency, count(*) FILTER (WHERE s.is_won),
       count(*) FILTER (WHERE NOT s.is_won),
       sum(c.conv) FILTER (WHERE s.is_won), sum(c.conv) FILTER (WHERE NOT s.is_won),
       sum(d.amount) FILTER (WHERE c.conv IS NULL AND s.is_won),
       sum(d.amount) FILTER (WHERE c.conv IS NULL AND NOT s.is_won),
       count(*) FILTER (WHERE c.conv IS NULL)
FROM sales_deal d JOIN sales_stage s ON s.id = d.stage_id
{_conv(_day('coalesce(d.won_at, d.lost_at)'))}
WHERE (s.is_won OR s.is_lost) AND coalesce(d.won_at, d.lost_at) IS NOT NULL {{owner}}
GROUP BY 1, 2"""

LEAD_STATUSES = ("new", "contacted", "qualified", "disqualified", "converted")
B_FUNNEL = """
SELECT to_char(l.created_on, 'YYYY-MM'), count(*),
       {statuses},
       count(*) FILTER (WHERE l.converted_deal_id IS NOT NULL OR l.status = 'converted'),
       count(*) FILTER (WHERE l.converted_deal_id IS NOT NULL),
       count(*) FILTER (WHERE l.converted_deal_id IS NOT NULL AND s.is_won)
FROM sales_lead l LEFT JOIN sales_deal d ON d.id = l.converted_deal_id
LEFT JOIN sales_stage s ON s.id = d.stage_id
GROUP BY 1 ORDER BY 1""".replace("{statuses}", ", ".join(
    f"count(*) FILTER (WHERE l.status = '{s}')" for s in LEAD_STATUSES))

B_CYCLE = """
SELECT d.owner_id, count(*), avg(x.days), min(x.days), max(x.days)
FROM sales_deal d JOIN sales_stage s ON s.id = d.stage_id
CROSS JOIN LATERAL (SELECT EXTRACT(EPOCH FROM (d.won_at - d.created_on)) / 86400.0 AS days) x
WHERE d.won_at IS NOT NULL AND s.is_won
GROUP BY 1 ORDER BY 1"""

B_TIME_IN_STAGE = """
SELECT s.pipeline_id, s.id, s.name, count(*),
       count(*) FILTER (WHERE h.left_at IS NULL OR h.left_at > :now),
       avg(EXTRACT(EPOCH FROM (CASE WHEN h.left_at IS NULL OR h.left_at > :now THEN :now
                                    ELSE h.left_at END - h.entered_at)) / 86400.0)
FROM sales_deal_stage_history h JOIN sales_stage s ON s.id = h.stage_id
WHERE NOT s.is_won AND NOT s.is_lost AND h.entered_at <= :now {owner}
GROUP BY s.pipeline_id, s.id, s.name, s.position ORDER BY s.pipeline_id, s.position, s.id"""

B_LOST = f"""WITH {RATES}
SELECT coalesce(nullif(trim(d.lost_reason), ''), '(none)'), d.currency, count(*), sum(c.conv),
       sum(d.amount) FILTER (WHERE c.conv IS NULL), count(*) FILTER (WHERE c.conv IS NULL)
FROM sales_deal d JOIN sales_stage s ON s.id = d.stage_id
{_conv(_day('d.lost_at'))}
WHERE s.is_lost
GROUP BY 1, 2"""

B_VELOCITY = f"""WITH {RATES}
SELECT d.currency, count(*) FILTER (WHERE f.open), count(*) FILTER (WHERE f.won_in),
       count(*) FILTER (WHERE f.lost_in),
       sum(EXTRACT(EPOCH FROM (d.won_at - d.created_on)) / 86400.0) FILTER (WHERE f.won_in),
       sum(c.conv) FILTER (WHERE f.won_in), count(c.conv) FILTER (WHERE f.won_in),
       sum(d.amount) FILTER (WHERE f.won_in AND c.conv IS NULL),
       count(*) FILTER (WHERE f.won_in AND c.conv IS NULL)
FROM sales_deal d JOIN sales_stage s ON s.id = d.stage_id
CROSS JOIN LATERAL (SELECT NOT s.is_won AND NOT s.is_lost AS open,
                           s.is_won AND d.won_at >= :start AND d.won_at < :end AS won_in,
                           s.is_lost AND d.lost_at >= :start AND d.lost_at < :end AS lost_in) f
{_conv(_day('d.won_at'))}
WHERE f.open OR f.won_in OR f.lost_in
GROUP BY 1"""

B_REPEAT = """
SELECT period, count(*), count(*) FILTER (WHERE orders >= 2), sum(orders)
FROM (SELECT substr(to_char(o.ordered_at, 'YYYY-MM'), 1, 4) AS period, o.account_id,
             CASE WHEN o.account_id IS NULL THEN o.contact_id END AS person,
             count(*) AS orders
      FROM sales_order o WHERE o.account_id IS NOT NULL OR o.contact_id IS NOT NULL
      GROUP BY 1, 2, 3) x
GROUP BY 1 ORDER BY 1"""

B_QUOTA = f"""WITH {RATES}
SELECT q.id, q.user_id, u.username, q.period_start, q.period_end, q.amount, d.currency,
       coalesce(sum(d.n), 0), sum(d.conv), sum(d.gap), sum(d.n_missing)
FROM sales_quota q JOIN ab_user u ON u.id = q.user_id
LEFT JOIN (SELECT d.owner_id, d.currency, d.day, count(*) AS n, sum(c.conv) AS conv,
                  sum(d.amount) FILTER (WHERE c.conv IS NULL) AS gap,
                  count(*) FILTER (WHERE c.conv IS NULL) AS n_missing
           FROM (SELECT owner_id, currency, amount, {_day('won_at')} AS day FROM sales_deal
                 WHERE won_at IS NOT NULL) d
           {_conv('d.day')}
           GROUP BY 1, 2, 3) d
     ON d.owner_id = q.user_id AND d.day BETWEEN q.period_start AND q.period_end
GROUP BY q.id, q.user_id, u.username, q.period_start, q.period_end, q.amount, d.currency"""

B_BOARD_FIGURES = """
SELECT stage_id, currency, count(*), sum(amount), sum(amount * probability)
FROM sales_deal WHERE pipeline_id = :p {owner} GROUP BY 1, 2 ORDER BY 1, 2"""

B_BOARD_CARDS = """
SELECT d.id, d.name, d.amount, d.currency, d.probability, d.expected_close, d.owner_id,
       a.name AS account, u.first_name, u.last_name
FROM sales_deal d LEFT JOIN trellis_account a ON a.id = d.account_id
LEFT JOIN ab_user u ON u.id = d.owner_id
WHERE d.pipeline_id = :p AND d.stage_id = :s
ORDER BY d.updated_on DESC, d.id DESC LIMIT 50"""

B_BOARD_OWNERS = """
SELECT u.id, u.first_name, u.last_name FROM ab_user u
WHERE EXISTS (SELECT 1 FROM sales_deal d WHERE d.owner_id = u.id)
ORDER BY u.first_name, u.last_name, u.id"""

CENT = Decimal("0.01")


def money(value) -> str:
    return f"{Decimal(str(value or 0)).quantize(CENT):.2f}"


def pct(part, whole):
    return round(100.0 * float(part) / float(whole), 1) if whole else None


def rnd(value, digits: int = 1):
    return None if value is None else round(float(value), digits)


class Fold:
    """Rows grouped by (key, currency) folded into one row per key (converted sums
    added; unconverted sums listed per currency)."""

    def __init__(self, measures, counts):
        self.measures, self.counts, self.rows = measures, counts, {}

    def add(self, key, currency, counts, converted, missing, n_missing):
        row = self.rows.setdefault(key, {"n": dict.fromkeys(self.counts, 0),
                                         "m": dict.fromkeys(self.measures, Decimal(0)),
                                         "u": {}})
        for name, v in zip(self.counts, counts):
            row["n"][name] += int(v or 0)
        for name, v in zip(self.measures, converted):
            row["m"][name] += Decimal(str(v or 0))
        if n_missing or any(missing):
            left = row["u"].setdefault(currency, {"currency": currency, "deals": 0,
                                                  **dict.fromkeys(self.measures, Decimal(0))})
            left["deals"] += int(n_missing or 0)
            for name, v in zip(self.measures, missing):
                left[name] += Decimal(str(v or 0))

    @staticmethod
    def unconverted(row):
        return [{k: (money(v) if isinstance(v, Decimal) else v) for k, v in u.items()}
                for _, u in sorted(row["u"].items())]


def _order(keys):
    return sorted(keys, key=lambda k: (k is None, str(k) if k is not None else ""))


def create_baseline_app(url: str | None = None):
    """The baseline: bare Flask, one connection per request from a pool, raw SQL."""
    import sqlalchemy as sa
    from flask import Flask, jsonify, request

    app = Flask("sales_baseline")
    app.json.sort_keys = False
    engine = sa.create_engine(url or os.environ["BENCH_DATABASE_URL"], pool_pre_ping=True)
    with engine.connect() as conn:
        company = conn.execute(sa.text(
            "SELECT coalesce((SELECT \"values\"->>'company_currency' FROM trellis_setting "
            "WHERE plugin = 'core'), 'EUR')")).scalar_one()

    def run(sql: str, **params):
        owner = request.args.get("owner", type=int)
        col = "h.deal_id IN (SELECT id FROM sales_deal WHERE owner_id = :owner)" \
            if "sales_deal_stage_history h" in sql else "owner_id = :owner" \
            if "FROM sales_deal WHERE" in sql else "d.owner_id = :owner"
        sql = sql.replace("{owner}", f"AND {col}" if owner else "")
        if owner:
            params["owner"] = owner
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), {"company": company, **params}).all()

    def forecast():
        as_of = date.fromisoformat(request.args.get("as_of", AS_OF_DAY))
        commit = request.args.get("commit_from", 75, type=int)
        measures = ["weighted", "best_case", "committed", "won"]
        fold = Fold(measures, ["open_deals"])
        for k, cur, n, nm, w, b, c, mw, mb, mc in run(B_FORECAST_OPEN, as_of=as_of,
                                                      commit=commit):
            fold.add(k, cur, [n], [w, b, c, 0], [mw, mb, mc, 0], nm)
        for k, cur, won, gap, nm in run(B_FORECAST_WON):
            fold.add(k, cur, [0], [0, 0, 0, won], [0, 0, 0, gap], nm)
        return [{"month": k, "currency": company, "open_deals": fold.rows[k]["n"]["open_deals"],
                 **{m: money(fold.rows[k]["m"][m]) for m in measures},
                 "unconverted": Fold.unconverted(fold.rows[k])} for k in _order(fold.rows)]

    def win_rate():
        fold = Fold(["won_amount", "lost_amount"], ["won", "lost"])
        for k, cur, won, lost, wa, la, mwa, mla, nm in run(B_WIN_RATE):
            fold.add(k, cur, [won, lost], [wa, la], [mwa, mla], nm)
        out = []
        for k in _order(fold.rows):
            n, m = fold.rows[k]["n"], fold.rows[k]["m"]
            out.append({"owner": k, "won": n["won"], "lost": n["lost"],
                        "win_rate": pct(n["won"], n["won"] + n["lost"]), "currency": company,
                        "won_amount": money(m["won_amount"]),
                        "lost_amount": money(m["lost_amount"]),
                        "unconverted": Fold.unconverted(fold.rows[k])})
        return out

    def funnel():
        out = []
        for k, leads, *rest in run(B_FUNNEL):
            converted, deals, won = rest[len(LEAD_STATUSES):]
            out.append({"month": k, "leads": leads,
                        "by_status": dict(zip(LEAD_STATUSES, rest)), "converted": converted,
                        "deals": deals, "won": won, "lead_to_deal": pct(deals, leads),
                        "deal_to_won": pct(won, deals), "lead_to_won": pct(won, leads)})
        return out

    def sales_cycle():
        return [{"owner": k, "won_deals": n, "avg_days": rnd(a), "min_days": rnd(lo),
                 "max_days": rnd(hi)} for k, n, a, lo, hi in run(B_CYCLE)]

    def time_in_stage():
        raw = request.args.get("as_of", f"{AS_OF_DAY}T00:00:00Z")
        now = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        return [{"pipeline_id": p, "stage_id": sid, "stage": name, "stints": n,
                 "open_stints": o, "avg_days": rnd(avg, 2),
                 "avg_hours": rnd(float(avg) * 24 if avg is not None else None)}
                for p, sid, name, n, o, avg in run(B_TIME_IN_STAGE, now=now)]

    def lost_reasons():
        fold = Fold(["amount"], ["deals"])
        for k, cur, n, conv, gap, nm in run(B_LOST):
            fold.add(k, cur, [n], [conv], [gap], nm)
        rows = [{"reason": k, "deals": fold.rows[k]["n"]["deals"], "currency": company,
                 "amount": money(fold.rows[k]["m"]["amount"]),
                 "unconverted": Fold.unconverted(fold.rows[k])} for k in fold.rows]
        return sorted(rows, key=lambda r: (-r["deals"], r["reason"]))

    def pipeline_velocity():
        as_of = date.fromisoformat(request.args.get("as_of", VELOCITY_AS_OF))
        days = request.args.get("days", 365, type=int)
        first = as_of - timedelta(days=days - 1)
        start = datetime(first.year, first.month, first.day, tzinfo=timezone.utc)
        end = datetime(as_of.year, as_of.month, as_of.day, tzinfo=timezone.utc) + timedelta(1)
        fold = Fold(["won_amount", "cycle_days"], ["open_deals", "won", "lost", "conv_won"])
        for cur, o, w, lo, d, conv, n_conv, gap, nm in run(B_VELOCITY, start=start, end=end):
            fold.add("total", cur, [o, w, lo, n_conv], [conv, d], [gap, 0], nm)
        row = fold.rows.get("total")
        if row is None:
            return []
        n, m = row["n"], row["m"]
        avg_amount = m["won_amount"] / n["conv_won"] if n["conv_won"] else None
        avg_days = float(m["cycle_days"]) / n["won"] if n["won"] else None
        total = n["won"] + n["lost"]
        rate = n["won"] / total if total else None
        velocity = (float(n["open_deals"]) * float(avg_amount) * rate / avg_days
                    if avg_amount is not None and rate is not None and avg_days else None)
        return [{"open_deals": n["open_deals"], "won": n["won"], "lost": n["lost"],
                 "win_rate": pct(n["won"], total), "currency": company,
                 "avg_won_amount": None if avg_amount is None else money(avg_amount),
                 "avg_cycle_days": rnd(avg_days, 2),
                 "velocity_per_day": None if velocity is None else money(velocity),
                 "unconverted": Fold.unconverted(row)}]

    def repeat_purchase():
        return [{"year": k, "customers": n, "repeat_customers": r, "orders": int(o),
                 "repeat_rate": pct(r, n)} for k, n, r, o in run(B_REPEAT)]

    def quota_attainment():
        fold, info = Fold(["won"], ["won_deals"]), {}
        for qid, uid, user, start, end, amount, cur, n, won, gap, nm in run(B_QUOTA):
            info[qid] = (uid, user, start, end, amount)
            fold.add(qid, cur, [n], [won], [gap], nm)
        out = []
        for qid in sorted(info, key=lambda q: (info[q][2], info[q][1], q)):
            uid, user, start, end, amount = info[qid]
            won = fold.rows[qid]["m"]["won"]
            out.append({"quota_id": qid, "user_id": uid, "user": user,
                        "period_start": start.isoformat(), "period_end": end.isoformat(),
                        "currency": company, "quota": money(amount), "won": money(won),
                        "won_deals": fold.rows[qid]["n"]["won_deals"],
                        "attainment": pct(won, amount) if amount else None,
                        "unconverted": Fold.unconverted(fold.rows[qid])})
        return out

    reports = {f.__name__: f for f in (forecast, win_rate, funnel, sales_cycle, time_in_stage,
                                       lost_reasons, pipeline_velocity, repeat_purchase,
                                       quota_attainment)}

    @app.get("/report/<name>")
    def report(name: str):
        return jsonify(result=reports[name]())

    def figures(pipeline_id: int):
        owner = request.args.get("owner", type=int)
        with engine.connect() as conn:
            stages = conn.execute(sa.text(
                "SELECT id, name FROM sales_stage WHERE pipeline_id = :p "
                "ORDER BY position, id"), {"p": pipeline_id}).all()
        out = {sid: {"count": 0, "totals": []} for sid, _ in stages}
        for sid, cur, n, amount, weighted in run(B_BOARD_FIGURES, p=pipeline_id):
            out[sid]["count"] += n
            out[sid]["totals"].append({
                "currency": cur, "amount": f"{Decimal(amount or 0).quantize(CENT):,.2f}",
                "weighted": f"{(Decimal(weighted or 0) / 100).quantize(CENT):,.2f}"})
        return stages, owner, out

    @app.get("/board/<int:pipeline_id>/figures")
    def board_figures(pipeline_id: int):
        stages, owner, out = figures(pipeline_id)
        return jsonify(pipeline_id=pipeline_id, owner_id=owner,
                       columns=[{"stage_id": sid, **out[sid]} for sid, _ in stages])

    @app.get("/board/<int:pipeline_id>")
    def board_page(pipeline_id: int):
        stages, owner, out = figures(pipeline_id)
        columns = []
        with engine.connect() as conn:
            for sid, name in stages:
                cards = [dict(r._mapping) for r in conn.execute(
                    sa.text(B_BOARD_CARDS), {"p": pipeline_id, "s": sid})]
                for card in cards:
                    card["amount"] = f"{Decimal(card['amount'] or 0).quantize(CENT):,.2f}"
                    card["expected_close"] = (card["expected_close"].isoformat()
                                              if card["expected_close"] else None)
                columns.append({"stage_id": sid, "stage": name, **out[sid], "cards": cards})
            owners = conn.execute(sa.text(B_BOARD_OWNERS)).all()
        return jsonify(columns=columns, owners=[[u, f"{f} {l}".strip()] for u, f, l in owners])

    @app.get("/health")
    def health():
        return "ok"

    return app


# ------------------------------------------------------------------ HTTP


class Client:
    """Plain http.client GETs against 127.0.0.1 (one connection per request)."""

    def __init__(self, port: int, headers: dict | None = None):
        self.port, self.headers = port, dict(headers or {})

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None) -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=600)
        try:
            conn.request(method, path, body=body, headers={**self.headers, **(headers or {})})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def get(self, path: str) -> tuple[int, bytes]:
        status, _, body = self.request("GET", path)
        return status, body


def jwt_login(port: int, username: str) -> dict:
    body = json.dumps({"username": username, "password": generate.ADMIN_PASSWORD,
                       "provider": "db"}).encode()
    status, _, data = Client(port).request("POST", "/api/v1/security/login", body,
                                           {"Content-Type": "application/json"})
    if status != 200:
        raise RuntimeError(f"JWT login of {username} failed: {status} {data[:300]!r}")
    return {"Authorization": f"Bearer {json.loads(data)['access_token']}"}


def _cookie(headers: dict) -> str:
    raw = headers.get("Set-Cookie") or headers.get("set-cookie") or ""
    return raw.split(";", 1)[0]


def session_login(port: int, username: str) -> dict:
    """The login form (CSRF token and session cookie), as a browser does."""
    client = Client(port)
    status, headers, page = client.request("GET", "/login/")
    token = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        rb'value="([^"]+)"[^>]*name="csrf_token"', page)
    if status != 200 or token is None:
        raise RuntimeError(f"login form: {status}, no csrf token")
    cookie = _cookie(headers)
    form = urllib.parse.urlencode({"csrf_token": token.group(1).decode(), "username": username,
                                   "password": generate.ADMIN_PASSWORD}).encode()
    status, headers, _ = client.request(
        "POST", "/login/", form, {"Content-Type": "application/x-www-form-urlencoded",
                                  "Cookie": cookie})
    if status not in (302, 303) or not _cookie(headers):
        raise RuntimeError(f"form login of {username} failed: {status}")
    return {"Cookie": _cookie(headers)}


# ------------------------------------------------------------------ cases


def build_cases(rep_id: int, pipeline_id: int) -> dict[str, dict]:
    """name -> {trellis: (path, who), baseline: path, check: callable}"""
    out = {}
    for name, spec in CASES.items():
        out[name] = {"trellis": (REPORT + spec["path"], "admin_jwt"),
                     "baseline": "/report/" + spec["path"], "check": spec["check"],
                     "kind": "report"}
    out["board_figures"] = {"trellis": (f"/sales/board/{pipeline_id}/figures", "admin_cookie"),
                            "baseline": f"/board/{pipeline_id}/figures", "kind": "figures"}
    out["board_page"] = {"trellis": (f"/sales/board/{pipeline_id}", "admin_cookie"),
                         "baseline": f"/board/{pipeline_id}", "kind": "page"}
    for name in ("forecast", "win_rate", "time_in_stage"):
        base = out[name]
        sep = "&" if "?" in base["baseline"] else "?"
        out[f"rep:{name}"] = {**base, "trellis": (base["trellis"][0], "rep_jwt"),
                              "baseline": f"{base['baseline']}{sep}owner={rep_id}"}
    out["rep:board_figures"] = {"trellis": (f"/sales/board/{pipeline_id}/figures", "rep_cookie"),
                                "baseline": f"/board/{pipeline_id}/figures?owner={rep_id}",
                                "kind": "figures"}
    return out


def _close(a, b) -> bool:
    if a == b:
        return True
    try:
        fa, fb = float(a), float(b)
    except (TypeError, ValueError):
        return False
    # money strings are exact sums of numerics; floats (avg days) are summed in
    # a plan-dependent order: allow the last digit of a rounded float to differ
    return math.isclose(fa, fb, rel_tol=1e-6, abs_tol=0.011)


def check_case(name: str, case: dict, t_body: bytes, b_body: bytes) -> dict:
    """Compare Trellis' answer with the baseline's; raise AssertionError when they differ."""
    b = json.loads(b_body)
    if case["kind"] == "page":
        html = t_body.decode("utf-8", "replace")
        compared = 0
        for column in b["columns"]:
            assert f"{column['count']:,}" in html or str(column["count"]) in html, \
                f"{name}: count {column['count']} of stage {column['stage_id']} not on the page"
            for card in column["cards"][:5]:
                assert card["name"] in html, f"{name}: card {card['name']!r} not on the page"
                compared += 1
        return {"figures_compared": compared + len(b["columns"]),
                "example": {"stage": b["columns"][0]["stage_id"],
                            "count": b["columns"][0]["count"]}}
    t = json.loads(t_body)
    if case["kind"] == "figures":
        assert t["columns"] == b["columns"], f"{name}: columns differ:\n{t['columns'][:2]}\n" \
                                             f"{b['columns'][:2]}"
        return {"figures_compared": sum(1 + 3 * len(c["totals"]) for c in b["columns"]),
                "example": b["columns"][0]}
    key, fields = case["check"]
    t_rows, b_rows = t["result"], b["result"]
    assert len(t_rows) == len(b_rows), f"{name}: {len(t_rows)} rows vs {len(b_rows)}"
    assert t_rows, f"{name}: empty report"
    compared = 0
    for tr, br in zip(t_rows, b_rows):
        if key:
            assert tr[key] == br[key], f"{name}: row key {tr[key]!r} vs {br[key]!r}"
        for field in fields:
            ok = _close(tr[field], br[field]) if not isinstance(tr[field], dict) \
                else tr[field] == br[field]
            assert ok, f"{name}: {key}={tr.get(key)!r} {field}: Trellis {tr[field]!r}, " \
                       f"baseline {br[field]!r}"
            compared += 1
        if "unconverted" in tr:
            assert tr["unconverted"] == br["unconverted"] or name.endswith("velocity") or \
                _same_unconverted(tr["unconverted"], br["unconverted"]), \
                f"{name}: unconverted {tr['unconverted']} vs {br['unconverted']}"
    first = t_rows[0]
    return {"figures_compared": compared,
            "example": {k: first[k] for k in ([key] if key else []) + fields[:2]}}


def _same_unconverted(t, b) -> bool:
    """Same currencies, counts and amounts (the measure names may differ)."""
    def norm(items):
        return sorted((u["currency"], *sorted(str(v) for k, v in u.items() if k != "currency"))
                      for u in items)
    return norm(t) == norm(b)


# ------------------------------------------------------------------ measuring


def proc_cpu(pids, children: bool = False) -> float:
    from api_list import TICK
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
        if children:  # reaped children: PostgreSQL's parallel workers, closed backends
            total += int(fields[13]) + int(fields[14])
    return total / TICK


def timed(client: Client, path: str, server_pids) -> dict:
    from api_list import machine_busy_seconds, postgres_pids
    pg_pids = postgres_pids()  # backends come and go (pools, parallel workers)
    s0, p0 = proc_cpu(server_pids), proc_cpu(pg_pids, children=True)
    c0, m0 = time.process_time(), machine_busy_seconds()
    started = time.perf_counter()
    status, body = client.get(path)
    elapsed = time.perf_counter() - started
    c1, m1 = time.process_time(), machine_busy_seconds()
    s1, p1 = proc_cpu(server_pids), proc_cpu(pg_pids, children=True)
    if status != 200:
        raise RuntimeError(f"{path}: HTTP {status}: {body[:300]!r}")
    # CPU used meanwhile by anything but this client, the server and PostgreSQL
    other = max((m1 - m0) - (s1 - s0) - (p1 - p0) - (c1 - c0), 0)
    return {"ms": elapsed * 1000, "server_cpu_ms": (s1 - s0) * 1000,
            "pg_cpu_ms": (p1 - p0) * 1000, "other_cpu_ms": other * 1000, "bytes": len(body)}


def summary(samples: list[dict]) -> dict:
    ms = sorted(s["ms"] for s in samples)
    return {"median_ms": round(median(ms), 1), "min_ms": round(ms[0], 1),
            "max_ms": round(ms[-1], 1), "runs": len(ms),
            # /proc counts CPU in 10 ms ticks: the mean over the rounds, not the median
            "server_cpu_ms": round(sum(s["server_cpu_ms"] for s in samples) / len(samples), 1),
            "pg_cpu_ms": round(sum(s["pg_cpu_ms"] for s in samples) / len(samples), 1),
            "other_busy_cores": round(sum(s["other_cpu_ms"] for s in samples)
                                      / sum(s["ms"] for s in samples), 2),
            "bytes": samples[-1]["bytes"], "all_ms": [round(v, 1) for v in ms]}


# ------------------------------------------------------------------ --explain


def explain(url: str, names: list[str]) -> None:
    """Run each report in-process as admin and EXPLAIN ANALYZE the SQL it sends."""
    os.environ.update(generate.trellis_env(url))
    import sqlalchemy as sa
    from sqlalchemy import event

    from trellis.app import create_app
    from trellis.db import db

    app = create_app()
    captured: list[tuple[str, object]] = []

    with app.app_context():
        engine = db.engine

        def grab(conn, cursor, statement, parameters, context, executemany):
            captured.append((statement, parameters))

        event.listen(engine, "before_cursor_execute", grab)
        from flask import g
        from trellis_sales import reports
        admin = app.appbuilder.sm.find_user(username=generate.ADMIN_USER)
        for name in names:
            spec = CASES[name]
            query = spec["path"].split("?", 1)[1] if "?" in spec["path"] else ""
            with app.test_request_context(f"{REPORT}{spec['path']}"):
                g.user = admin
                from flask_login import login_user
                login_user(admin)
                params, errors = reports.parse_params(reports.REPORTS[name],
                                                      dict(urllib.parse.parse_qsl(query)))
                captured.clear()
                started = time.perf_counter()
                reports.run(name, **params)
                took = (time.perf_counter() - started) * 1000
                statements = [(s, p) for s, p in captured
                              if "sales_" in s or "trellis_exchange_rate" in s]
            print(f"\n=== {name} ({took:.0f} ms in-process, {len(statements)} report "
                  f"statement(s))")
            for statement, parameters in statements:
                with engine.connect() as conn:
                    raw = conn.connection.driver_connection
                    with raw.cursor() as cur:
                        cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
                        plan = [r[0] for r in cur.fetchall()]
                    raw.rollback()
                print(statement.strip())
                print("   params:", parameters)
                print("\n".join("   " + line for line in plan))
        event.remove(engine, "before_cursor_execute", grab)


# ------------------------------------------------------------------ main


def table(rows: list[dict]) -> str:
    head = ("case", "Trellis ms", "Baseline ms", "T/B", "server CPU ms T / B",
            "PG CPU ms T / B", "figures checked")
    lines = [head]
    for r in rows:
        t, b = r["trellis"], r["baseline"]
        lines.append((r["name"], f"{t['median_ms']:.1f}", f"{b['median_ms']:.1f}",
                      f"{r['ratio']:.2f}", f"{t['server_cpu_ms']:.0f} / {b['server_cpu_ms']:.0f}",
                      f"{t['pg_cpu_ms']:.0f} / {b['pg_cpu_ms']:.0f}",
                      str(r["check"]["figures_compared"])))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    out = []
    for n, line in enumerate(lines):
        out.append("  ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w)
                             for i, (v, w) in enumerate(zip(line, widths))))
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    from api_list import Server, code_version, versions

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--server", default=generate.DEFAULT_SERVER)
    parser.add_argument("--rounds", type=int, default=5,
                        help="timed requests per case and server (median reported)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server")
    parser.add_argument("--cases", default=",".join(ALL_CASES),
                        help=f"comma-separated, from {', '.join(ALL_CASES)}")
    parser.add_argument("--trellis-port", type=int, default=8311)
    parser.add_argument("--baseline-port", type=int, default=8312)
    parser.add_argument("--explain", action="store_true",
                        help="only EXPLAIN ANALYZE the reports' SQL (in-process, as admin)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.cases.split(",") if n.strip()]
    unknown = set(names) - set(ALL_CASES)
    if unknown:
        parser.error(f"unknown cases: {', '.join(sorted(unknown))}")

    url = generate_sales.ensure(args.deals, args.seed, args.server)
    if args.explain:
        explain(url, [n for n in names if n in CASES])
        return 0
    import sqlalchemy as sa
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rep_id = conn.execute(sa.text("SELECT id FROM ab_user WHERE username = :u"),
                              {"u": generate_sales.REP_NAMES[0]}).scalar_one()
        pipeline_id = conn.execute(sa.text(
            "SELECT id FROM sales_pipeline ORDER BY is_default DESC, id LIMIT 1")).scalar_one()
    engine.dispose()
    cases = build_cases(rep_id, pipeline_id)
    code = code_version()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(exist_ok=True)
    log_dir = RESULTS / f"{stamp}-sales-logs"
    log_dir.mkdir()
    env = generate.trellis_env(url)
    srv_args = argparse.Namespace(workers=args.workers, worker_class="sync", threads=1)
    servers: list = []

    def interrupted(*_):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupted)
    rows = []
    try:
        trellis = Server("trellis", "trellis.app:create_app()", args.trellis_port, env,
                         srv_args, ROOT, log_dir)
        servers.append(trellis)
        baseline = Server("baseline", "sales_reports:create_baseline_app()", args.baseline_port,
                          {**env, "BENCH_DATABASE_URL": url}, srv_args, BENCH, log_dir)
        servers.append(baseline)
        print(f"starting {args.workers} sync workers each: Trellis on {HOST}:{args.trellis_port}, "
              f"baseline on {HOST}:{args.baseline_port} ...", flush=True)
        trellis.wait_ready()
        baseline.wait_ready()
        auth = {"admin_jwt": jwt_login(trellis.port, generate.ADMIN_USER),
                "rep_jwt": jwt_login(trellis.port, generate_sales.REP_NAMES[0]),
                "admin_cookie": session_login(trellis.port, generate.ADMIN_USER),
                "rep_cookie": session_login(trellis.port, generate_sales.REP_NAMES[0])}
        logged_in = time.monotonic()
        b_client = Client(baseline.port)
        for name in names:
            case = cases[name]
            if time.monotonic() - logged_in > 600:  # JWTs live 15 minutes
                auth.update(admin_jwt=jwt_login(trellis.port, generate.ADMIN_USER),
                            rep_jwt=jwt_login(trellis.port, generate_sales.REP_NAMES[0]))
                logged_in = time.monotonic()
            t_path, who = case["trellis"]
            t_client = Client(trellis.port, {"Accept": "application/json", **auth[who]})
            # warm-up and check: the first answer of each server is compared
            t_status, t_body = t_client.get(t_path)
            b_status, b_body = b_client.get(case["baseline"])
            if t_status != 200 or b_status != 200:
                raise RuntimeError(f"{name}: HTTP Trellis {t_status} {t_body[:300]!r}, "
                                   f"baseline {b_status} {b_body[:300]!r}")
            check = check_case(name, case, t_body, b_body)
            samples: dict[str, list] = {"trellis": [], "baseline": []}
            t_pids, b_pids = trellis.pids(), baseline.pids()
            for n in range(args.rounds):
                order = [("baseline", b_client, case["baseline"], b_pids),
                         ("trellis", t_client, t_path, t_pids)]
                for side, client, path, pids in (order if n % 2 == 0 else order[::-1]):
                    samples[side].append(timed(client, path, pids))
            t, b = summary(samples["trellis"]), summary(samples["baseline"])
            row = {"name": name, "trellis_path": t_path, "as": who,
                   "baseline_path": case["baseline"], "check": check, "trellis": t,
                   "baseline": b, "ratio": round(t["median_ms"] / b["median_ms"], 2)}
            rows.append(row)
            for side, summ in (("trellis", t), ("baseline", b)):
                if summ["other_busy_cores"] > 0.25:
                    print(f"  WARNING {name}/{side}: other processes kept "
                          f"{summ['other_busy_cores']} cores busy during the requests")
            print(f"  {name:<20} Trellis {t['median_ms']:9.1f} ms  baseline "
                  f"{b['median_ms']:9.1f} ms  T/B {row['ratio']:6.2f}   "
                  f"(checked {check['figures_compared']} figures)", flush=True)
    except KeyboardInterrupt:
        print("interrupted; stopping the servers")
        return 130
    finally:
        for server in servers:
            server.stop()
        signal.signal(signal.SIGTERM, previous)

    result = {
        "timestamp": stamp,
        "command": " ".join(shlex.quote(a) for a in [
            ".venv/bin/python", "bench/sales_reports.py",
            *(argv if argv is not None else sys.argv[1:])]),
        "machine": {"cpus": os.cpu_count()}, "versions": versions(), "code": code,
        "data": {"database": url.rsplit("/", 1)[-1], "deals": args.deals, "seed": args.seed},
        "config": {"rounds": args.rounds, "workers": args.workers},
        "cases": rows,
    }
    out = RESULTS / f"{stamp}-sales.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    print()
    print(f"code {code['commit'][:10]}{' + uncommitted changes' if code['dirty'] else ''}; "
          f"{args.deals:,} deals; median of {args.rounds} sequential requests per server "
          f"(T/B = Trellis ms / baseline ms; CPU = mean per request)")
    print(table(rows))
    noisy = max((r[side]["other_busy_cores"] for r in rows for side in ("trellis", "baseline")),
                default=0)
    print(f"\nother processes on the machine: up to {noisy} cores busy during a case"
          + (" -- NOT a quiet machine, figures are disturbed" if noisy > 0.25 else ""))
    print(f"results: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The suite's in-process benchmarks: job bodies and SQL, each beside a hand-written baseline.

Run by suite.py as ``suite_jobs.py <benchmark>`` (a JSON job on stdin, the
figures as JSON on stdout), one benchmark per process, with a Trellis app
(every installed plugin) on the suite's database:

* ``segments``: marketing segments (``trellis.conditions.compile``, the
  members' count) beside the same sets written by hand with ``GROUP BY``; both
  must count the same contacts.
* ``campaign``: a campaign started and sent (``marketing.send_campaign``'s
  body: claim, render, one commit per message) to a local aiosmtpd sink, beside
  a plain ``smtplib`` loop sending the same number of personalised messages
  over one connection.
* ``webhooks``: ``integrations``' delivery job body (claim, sign, POST through
  ``netguard``, record the attempt) to a local HTTP sink, beside a ``requests``
  loop POSTing the same signed payloads.
* ``import``: the CSV import (:mod:`import_contacts`) into a fresh copy of the
  empty schema, beside COPY and multi-row Core INSERTs of the same rows.
* ``scoring``: the CRM value model's full recompute beside the hand-written SQL
  of :mod:`scoring`; both must agree for every contact.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import smtplib
import socket
import subprocess
import sys
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

import sqlalchemy as sa

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import generate  # noqa: E402
from suite import emit, figure, log, read_job  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args}: exited {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def app_for(url: str):
    os.environ.update(generate.trellis_env(url))
    from trellis.app import create_app

    return create_app()


def timed(fn, repeat: int, slow: float = 5.0) -> tuple[float, list[float], object]:
    """Median seconds of ``repeat`` calls (after one unmeasured), the samples, a
    result; a call slower than ``slow`` seconds is measured once (its first run)."""
    started = time.perf_counter()
    result = fn()
    first = time.perf_counter() - started
    if first > slow:
        return first, [first], result
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - started)
    return sorted(samples)[len(samples) // 2], samples, result


# ------------------------------------------------------------------ segments

SEGMENTS = [
    ("company country and job title",
     {"and": [{"type": "field", "field": "account.country", "op": "eq", "value": "DE"},
              {"type": "field", "field": "title", "op": "eq", "value": "CEO"}]},
     """SELECT c.id FROM trellis_contact c JOIN trellis_account a ON a.id = c.account_id
        WHERE a.country = 'DE' AND c.title = 'CEO'"""),
    ("2+ calls in the last 90 days",
     {"type": "activity", "activity_type": "call", "within_days": 90, "min_count": 2},
     """SELECT contact_id FROM trellis_activity
        WHERE type = 'call' AND occurred_at >= now() - interval '90 days'
        GROUP BY contact_id HAVING count(*) >= 2"""),
    ("spent 1,000+ in the last 365 days",
     {"type": "purchase", "measure": "total", "op": "gte", "value": 1000, "within_days": 365},
     """SELECT o.contact_id FROM sales_order o JOIN sales_order_line l ON l.order_id = o.id
        WHERE o.ordered_at >= now() - interval '365 days'
        GROUP BY o.contact_id HAVING sum(l.total) >= 1000"""),
    ("any of the three, not in DE",
     {"and": [{"or": [
         {"type": "field", "field": "title", "op": "eq", "value": "CEO"},
         {"type": "activity", "activity_type": "call", "within_days": 90, "min_count": 2},
         {"type": "purchase", "measure": "total", "op": "gte", "value": 1000,
          "within_days": 365}]},
         {"not": {"type": "field", "field": "account.country", "op": "eq", "value": "DE"}}]},
     """SELECT c.id FROM trellis_contact c LEFT JOIN trellis_account a ON a.id = c.account_id
        WHERE (c.title = 'CEO'
               OR c.id IN (SELECT contact_id FROM trellis_activity
                           WHERE type = 'call' AND occurred_at >= now() - interval '90 days'
                           GROUP BY contact_id HAVING count(*) >= 2)
               OR c.id IN (SELECT o.contact_id FROM sales_order o
                           JOIN sales_order_line l ON l.order_id = o.id
                           WHERE o.ordered_at >= now() - interval '365 days'
                           GROUP BY o.contact_id HAVING sum(l.total) >= 1000))
          AND a.country IS DISTINCT FROM 'DE'"""),
]


def bench_segments(job: dict) -> list[dict]:
    from trellis import conditions
    from trellis.db import db

    app = app_for(job["url"])
    repeat = 1 if job.get("smoke") else 3
    figures = []
    with app.app_context():
        for label, rules, sql in SEGMENTS:
            compiled = conditions.compile(rules).subquery()
            t_stmt = sa.select(sa.func.count()).select_from(compiled)
            b_stmt = sa.text(f"SELECT count(*) FROM ({sql}) b")
            t_s, t_samples, t_count = timed(lambda: db.session.scalar(t_stmt), repeat)
            b_s, b_samples, b_count = timed(lambda: db.session.scalar(b_stmt), repeat)
            db.session.rollback()
            if t_count != b_count:
                raise RuntimeError(f"segment {label!r}: Trellis counts {t_count}, "
                                   f"the hand-written SQL {b_count}")
            log(f"  {label}: {t_count:,} members, {t_s * 1000:.0f} / {b_s * 1000:.0f} ms")
            figures.append(figure(
                "segments", f"evaluate: {label} ({t_count:,} members)", t_s * 1000, "ms",
                "hand-written SQL (GROUP BY)", b_s * 1000, better="lower",
                rules=rules, samples_s={"trellis": t_samples, "baseline": b_samples}))
    return figures


# ------------------------------------------------------------------ campaign


def bench_campaign(job: dict) -> list[dict]:
    from trellis.db import db
    from trellis.settings import update_settings
    from trellis_marketing import campaigns
    from trellis_marketing.models import Campaign, EmailTemplate, Message, Segment

    n_target = 20 if job.get("smoke") else 1000 if job["scale"] >= 0.1 else 200
    port = free_port()
    sink = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
                             "-c", "aiosmtpd.handlers.Sink"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    app = app_for(job["url"])
    try:
        wait_port(port, sink)
        with app.app_context():
            update_settings("core", {"smtp_host": "127.0.0.1", "smtp_port": port})
            update_settings("marketing", {"send_rate_per_minute": 100000})
            tag = uuid.uuid4().hex[:8]
            template = EmailTemplate(
                name=f"Bench {tag}",
                subject="News for {{ contact.first_name | default('you', true) }}",
                text_body="Hello {{ contact.first_name | default('there', true) }},\n\n"
                          "what's new this month at {{ account.name | default('our shop', "
                          "true) }}.\n",
                html_body="<p>Hello {{ contact.first_name | default('there', true) }},</p>"
                          "<p><a href=\"https://shop.example.com/new\">What's new</a></p>")
            segment = Segment(name=f"Bench {tag}", kind="dynamic", rules={
                "type": "field", "field": "account_id", "op": "lte", "value": n_target})
            db.session.add_all([template, segment])
            db.session.flush()
            campaign = Campaign(name=f"Bench {tag}", segment_id=segment.id,
                                template_id=template.id)
            db.session.add(campaign)
            db.session.commit()
            cid = campaign.id
            started = time.perf_counter()
            queued = campaigns.start(db.session, cid)["queued"]
            db.session.commit()  # sends the job (in-process without Redis)
            if db.session.get(Campaign, cid).status == "sending":
                campaigns.send_campaign(cid)
            t_s = time.perf_counter() - started
            sent = db.session.scalar(sa.select(sa.func.count()).where(
                Message.campaign_id == cid, Message.status == "sent"))
            rows = db.session.execute(sa.text(
                "SELECT m.email, c.first_name FROM marketing_message m "
                "JOIN trellis_contact c ON c.id = m.contact_id WHERE m.campaign_id = :c "
                "ORDER BY m.id"), {"c": cid}).all()
            db.session.rollback()
        if not sent or sent != queued:
            raise RuntimeError(f"campaign: {queued} queued, {sent} sent")
        # the baseline: the same number of messages over one smtplib connection
        started = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            for email, first in rows:
                msg = EmailMessage()
                msg["From"], msg["To"] = "marketing@example.com", email
                msg["Subject"] = f"News for {first or 'you'}"
                msg.set_content(f"Hello {first or 'there'},\n\nwhat's new this month.\n")
                msg.add_alternative(f"<p>Hello {first or 'there'},</p>", subtype="html")
                smtp.send_message(msg)
        b_s = time.perf_counter() - started
    finally:
        stop(sink)
    log(f"  {sent} messages: Trellis {t_s:.1f} s, smtplib {b_s:.1f} s")
    return [figure("campaign", f"campaign e-mail to a local SMTP server ({sent:,} messages)",
                   sent / t_s, "messages/s", "smtplib loop, one connection", len(rows) / b_s,
                   note="Trellis: queue (INSERT … SELECT), claim, render, one commit per "
                        "message, one SMTP connection per batch of 50")]


# ------------------------------------------------------------------ webhooks

SINK = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Sink(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
"""


def bench_webhooks(job: dict) -> list[dict]:
    import requests

    from trellis.db import db, utcnow
    from trellis.settings import get_settings, update_settings
    from trellis_integrations import webhooks
    from trellis_integrations.models import WebhookDelivery, WebhookEndpoint

    n = 20 if job.get("smoke") else 1000 if job["scale"] >= 0.1 else 200
    port = free_port()
    sink = subprocess.Popen([sys.executable, "-c", SINK, str(port)])
    app = app_for(job["url"])
    try:
        wait_port(port, sink)
        with app.app_context():
            before = get_settings("core").get("allowed_private_networks") or ""
            update_settings("core", {"allowed_private_networks": "127.0.0.0/8"})
            endpoint = WebhookEndpoint(name="bench sink", url=f"http://127.0.0.1:{port}/hook",
                                       events="bench.*", secret=webhooks.new_secret())
            db.session.add(endpoint)
            db.session.commit()
            payloads = [json.dumps({"id": uuid.uuid4().hex, "type": "bench.event",
                                    "data": {"contact_id": i, "note": "x" * 200}})
                        for i in range(n)]
            db.session.execute(sa.insert(WebhookDelivery), [
                {"endpoint_id": endpoint.id, "event_id": json.loads(p)["id"],
                 "event_name": "bench.event", "payload": p, "status": "pending",
                 "next_attempt_at": utcnow(), "attempts": 0} for p in payloads])
            db.session.commit()
            ids = db.session.scalars(sa.select(WebhookDelivery.id).where(
                WebhookDelivery.endpoint_id == endpoint.id).order_by(WebhookDelivery.id)).all()
            started = time.perf_counter()
            for delivery_id in ids:
                webhooks.deliver(delivery_id)
            t_s = time.perf_counter() - started
            delivered = db.session.scalar(sa.select(sa.func.count()).where(
                WebhookDelivery.endpoint_id == endpoint.id,
                WebhookDelivery.status == "delivered"))
            secret = endpoint.secret
            update_settings("core", {"allowed_private_networks": before})
        if delivered != n:
            raise RuntimeError(f"webhooks: {delivered} of {n} delivered")
        url = f"http://127.0.0.1:{port}/hook"
        started = time.perf_counter()
        for payload in payloads:
            ts = int(time.time())
            sig = hmac.new(secret.encode(), f"{ts}.{payload}".encode(),
                           hashlib.sha256).hexdigest()
            answer = requests.post(url, data=payload, timeout=10, headers={
                "Content-Type": "application/json", "X-Trellis-Timestamp": str(ts),
                "X-Trellis-Signature": f"v1={sig}"})
            answer.raise_for_status()
        b_s = time.perf_counter() - started
    finally:
        stop(sink)
    log(f"  {n} deliveries: Trellis {t_s:.1f} s, requests {b_s:.1f} s")
    return [figure("webhooks", f"webhook deliveries to a local HTTP server ({n:,}, one worker)",
                   n / t_s, "deliveries/s", "requests.post loop, signed", n / b_s,
                   note="Trellis: claim (UPDATE), load, sign, POST, attempt row, commit")]


# ------------------------------------------------------------------ import


def bench_import(job: dict) -> list[dict]:
    import import_contacts
    import dataset

    rows_n = 200 if job.get("smoke") else max(int(50_000 * job["scale"]), 1000)
    name = f"{job['database']}_import"
    dataset._create_from_template(job["server"], name, job["empty_database"])
    url = generate.bench_url(0, name, job["server"])
    engine = sa.create_engine(url)
    data = import_contacts.rows(rows_n)
    payload = import_contacts.make_csv(data)
    try:
        copy_s = import_contacts.baseline_copy(engine, data)
        import_contacts.empty_contacts(engine)
        many_s = import_contacts.baseline_executemany(engine, data)
        import_contacts.empty_contacts(engine)
        app = app_for(url)
        from trellis.context import acting_as
        from trellis.db import db
        from trellis_integrations import importer

        with app.app_context(), acting_as(None, None, "cli"):
            run = importer.create_run(
                model="contact", data=payload, filename="contacts.csv",
                mapping={"First name": "first_name", "Last name": "last_name",
                         "E-mail": "email", "Phone": "phone", "Title": "title"},
                match_on="email", on_match="update", mode="skip_bad")
            db.session.commit()
            started = time.perf_counter()
            result = importer.execute_run(run.id, batch_size=2000)
            t_s = time.perf_counter() - started
            db.session.remove()
            db.engine.dispose()
        imported = import_contacts.count(engine)
    finally:
        engine.dispose()
        admin = sa.create_engine(job["server"], isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    if imported != rows_n:
        raise RuntimeError(f"import: {imported} of {rows_n} rows stored ({result})")
    log(f"  {rows_n} rows: Trellis {t_s:.1f} s, INSERT {many_s:.1f} s, COPY {copy_s:.1f} s")
    note = ("Trellis validates, normalises e-mail and phone, matches by e-mail, journals "
            "for revert; the baselines only write")
    return [
        figure("import", f"CSV import of {rows_n:,} new contacts", rows_n / t_s, "rows/s",
               "multi-row INSERT (Core, 2,000 a statement)", rows_n / many_s, note=note),
        figure("import", f"CSV import of {rows_n:,} new contacts", rows_n / t_s, "rows/s",
               "COPY", rows_n / copy_s, note=note),
    ]


# ------------------------------------------------------------------ scoring


#: the CRM value model as ``trellis init`` creates it, by hand: scoring.py's
#: statement plus the service plugin's satisfaction term (no surveys in the data:
#: every contact gets its missing score)
TERMS = [("interactions_90d", "percentile"), ("purchase_total", "minmax"),
         ("satisfaction", "minmax"), ("loyalty_months", "minmax")]
SCORING_SQL = """
CREATE UNLOGGED TABLE bench_baseline_score AS
WITH i AS (SELECT contact_id, count(*)::float8 AS v FROM trellis_activity
           WHERE contact_id IS NOT NULL AND occurred_at >= now() - interval '90 days'
           GROUP BY contact_id),
     ir AS (SELECT contact_id, 100 * percent_rank() OVER (ORDER BY v) AS s FROM i),
     p AS (SELECT contact_id, sum(total)::float8 AS v FROM sales_order
           WHERE contact_id IS NOT NULL GROUP BY contact_id),
     pc AS (SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY v) AS cap FROM p),
     ps AS (SELECT p.contact_id,
                   CASE WHEN pc.cap <= 0 THEN CASE WHEN p.v >= pc.cap THEN 100 ELSE 0 END
                        ELSE 100 * (least(greatest(p.v, 0), pc.cap)) / pc.cap END AS s
            FROM p, pc),
     sv AS (SELECT contact_id, avg(rating::float8) AS v FROM service_survey
            WHERE rating IS NOT NULL AND contact_id IS NOT NULL GROUP BY contact_id),
     ss AS (SELECT contact_id, 100 * (least(greatest(v, 1), 5) - 1) / 4 AS s FROM sv),
     l AS (SELECT o.contact_id, count(DISTINCT to_char(o.ordered_at, 'YYYY-MM'))::float8 AS v
           FROM sales_order o
           WHERE o.contact_id IS NOT NULL AND o.ordered_at >= now() - interval '730 days'
           GROUP BY o.contact_id),
     ls AS (SELECT contact_id, 100 * least(greatest(v, 0), 12) / 12 AS s FROM l),
     v AS (SELECT c.id AS contact_id,
                  round((:w1 * coalesce(ir.s, 0) + :w2 * coalesce(ps.s, 0)
                         + :w3 * coalesce(ss.s, :sat_missing)
                         + :w4 * coalesce(ls.s, 0))::numeric, 2) AS value
           FROM trellis_contact c
           LEFT JOIN ir ON ir.contact_id = c.id
           LEFT JOIN ps ON ps.contact_id = c.id
           LEFT JOIN ss ON ss.contact_id = c.id
           LEFT JOIN ls ON ls.contact_id = c.id)
SELECT contact_id, value,
       CASE WHEN value >= :high THEN 'high' WHEN value >= :medium THEN 'medium'
            ELSE 'low' END AS tier
FROM v
"""


def bench_scoring(job: dict) -> list[dict]:
    from trellis.db import db
    from trellis.settings import get_settings
    from trellis_scoring import compute
    from trellis_scoring.models import ScoringModel

    app = app_for(job["url"])
    with app.app_context():
        settings = get_settings("scoring")
        model = db.session.scalar(sa.select(ScoringModel).where(ScoringModel.key == "crm_value"))
        terms = sorted(model.terms, key=lambda t: t.position)
        if [(t.feature, t.method) for t in terms] != TERMS:
            raise RuntimeError("scoring: the crm_value model is not the one the baseline "
                               f"computes: {[(t.feature, t.method) for t in terms]}")
        started = time.perf_counter()
        compute.recompute_model(db.session, model)
        db.session.commit()
        t_s = time.perf_counter() - started
        db.session.execute(sa.text("DROP TABLE IF EXISTS bench_baseline_score"))
        db.session.commit()
        started = time.perf_counter()
        db.session.execute(sa.text(SCORING_SQL), {
            "high": settings["high_tier_from"], "medium": settings["medium_tier_from"],
            **{f"w{n}": float(t.weight) for n, t in enumerate(terms, 1)},
            "sat_missing": float(terms[2].missing_score)})
        db.session.commit()
        b_s = time.perf_counter() - started
        diff = db.session.execute(sa.text(
            "SELECT count(*), count(*) FILTER (WHERE abs(b.value - s.value) > 0.01) "
            "FROM bench_baseline_score b JOIN scoring_customer_score s "
            "ON s.contact_id = b.contact_id AND s.model_id = :m"), {"m": model.id}).one()
        db.session.execute(sa.text("DROP TABLE bench_baseline_score"))
        db.session.commit()
    # the two read now() a few minutes apart: an activity or order at the edge of
    # the 90- or 730-day window may count for one and not the other
    if diff[1] > diff[0] / 1000:
        raise RuntimeError(f"scoring: {diff[1]} of {diff[0]} values differ from the baseline")
    log(f"  {diff[0]:,} contacts: Trellis {t_s:.1f} s, SQL {b_s:.1f} s")
    return [figure("scoring", f"full CRM-value recompute ({diff[0]:,} contacts)", t_s, "s",
                   "one hand-written SQL statement", b_s, better="lower",
                   note="Trellis also keeps history, explanations and upserts; values "
                        f"agree (±0.01) for {diff[0] - diff[1]:,} of {diff[0]:,} contacts "
                        "(the others sit at the edge of a time window: the two ran minutes "
                        "apart)")]


BENCHES = {"segments": bench_segments, "campaign": bench_campaign,
           "webhooks": bench_webhooks, "import": bench_import, "scoring": bench_scoring}

if __name__ == "__main__":
    emit({"figures": BENCHES[sys.argv[1]](read_job())})

"""Time the service plugin's set-based work on PostgreSQL: the SLA check and the
auto-close job over many tickets, knowledge-base search over many articles.

    .venv/bin/python bench/service_sla.py --tickets 100000 --articles 20000

Creates a throwaway database on TRELLIS_TEST_POSTGRES_URL (default
postgresql://postgres@127.0.0.1:5432/test), fills it with one multi-row INSERT
per batch (the rules run on saves, so the due times are computed here in bulk
from the default calendar the same way), runs each job twice (the second run
finds nothing new) and prints the times.  Article bodies are 60 words of a
5,000-word vocabulary plus one of 14 topic words, so a topic matches about
1/14 of the articles and two vocabulary words a handful.  The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
import uuid
from datetime import timedelta

import sqlalchemy as sa


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--articles", type=int, default=20_000)
    args = parser.parse_args()
    server = os.environ.get("TRELLIS_TEST_POSTGRES_URL",
                            "postgresql://postgres@127.0.0.1:5432/test")
    name = f"trellis_bench_service_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(server).set(database=name).render_as_string(hide_password=False)
    try:
        run(url, args.tickets, args.articles)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def run(url: str, n_tickets: int, n_articles: int) -> None:
    from trellis import jobs
    from trellis.businesshours import DEFAULT, add_business_hours
    from trellis.db import db, utcnow
    from trellis.testing import build_app, dispose
    from trellis_service import kb
    from trellis_service.models import Article, SlaPolicy, Ticket

    rng = random.Random(7)
    app = build_app(tempfile.mkdtemp(), plugins=["service"], database_url=url)
    with app.app_context():
        db.session.add(SlaPolicy(priority="normal", first_response_hours=4, resolution_hours=16))
        db.session.commit()
        now = utcnow()
        rows = []
        for i in range(n_tickets):
            created = now - timedelta(days=rng.randint(0, 30), minutes=rng.randint(0, 1440))
            status = rng.choice(["new", "open", "pending", "resolved", "closed"])
            rows.append({"subject": f"Ticket {i}", "channel": "email", "priority": "normal",
                         "status": status, "created_on": created, "sla_paused_hours": 0.0,
                         "first_response_due_at": add_business_hours(DEFAULT, created, 4),
                         "resolution_due_at": add_business_hours(DEFAULT, created, 16),
                         "resolved_at": created + timedelta(days=1)
                         if status in ("resolved", "closed") else None})
            if len(rows) == 5000:
                db.session.execute(sa.insert(Ticket), rows)
                rows = []
        if rows:
            db.session.execute(sa.insert(Ticket), rows)
        topics = ["router", "printer", "invoice", "password", "scanner", "refund", "export",
                  "network", "licence", "backup", "restart", "jam", "billing", "account"]
        # a body: 60 words of a 5,000-word vocabulary (word<n>) and one topic word
        db.session.execute(sa.insert(Article), [
            {"title": f"Article {i} {rng.choice(topics)}", "status": "published",
             "body": " ".join([f"word{rng.randint(0, 4999)}" for _ in range(60)]
                              + [rng.choice(topics)]),
             "created_on": now, "updated_on": now, "views": 0, "helpful_yes": 0,
             "helpful_no": 0}
            for i in range(n_articles)])
        db.session.commit()
        db.session.execute(sa.text("ANALYZE"))
        db.session.commit()
        for label, job in (("check_sla", "service.check_sla"), ("auto_close", "service.auto_close")):
            for attempt in ("first", "second"):
                start = time.perf_counter()
                result = jobs.execute(job, {})
                print(f"{label} ({attempt} run, {n_tickets} tickets): "  # noqa: T201
                      f"{time.perf_counter() - start:.2f} s {result}")
        for query in ("printer", "word17 word4242", "refund billing", "nothingmatches"):
            start = time.perf_counter()
            for _ in range(20):
                found = kb.search(db.session, query)
            print(f"kb search {query!r} ({n_articles} articles): "
                  f"{(time.perf_counter() - start) / 20 * 1000:.1f} ms, {len(found)} hits")
    dispose(app)


if __name__ == "__main__":
    main()

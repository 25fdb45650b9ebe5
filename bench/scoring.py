"""The scoring plugin's full recompute against a hand-written SQL baseline.

    .venv/bin/python bench/scoring.py --contacts 1000000        # 10 M activities + lines
    .venv/bin/python bench/scoring.py --contacts 100000         # a smaller run

Data (PostgreSQL ``trellis_bench_scoring_<contacts>``, schema by ``trellis
init`` as in generate.py, rows by ``INSERT … SELECT generate_series``, values
pure functions of the row number and the seed):

* N contacts and 10,000 accounts (generate.py);
* 5·N activities over the last 730 days (about 12 % in the 90-day window);
* 200 products; 2·N orders over the last 730 days by 0.6·N of the contacts,
  each with 1–4 lines (≈ 5·N lines; orders + lines + activities ≈ 10·N rows
  read), totals the sum of their lines, all in EUR (the company currency).

Then, with every installed plugin enabled as ``trellis init`` leaves them:

1. **Trellis**: the ``scoring.recompute`` job body, in-process
   (``trellis.jobs.execute``): the CRM value model (features by their own
   queries, numpy, COPY staging, history/update/insert) plus RFM,
   associations, churn (training + scoring) and CLV. Timed whole and by part.
2. **Baseline**: one hand-written SQL statement computing the same CRM value
   (the same features, ``percent_rank``, capped min-max with
   ``percentile_cont``, the weights, the tiers) into a fresh unlogged table:
   no history, no explanation, no upsert, no RFM/churn/CLV/associations.
3. **Check**: the two values agree for every contact (|Δ| ≤ 0.01).

The report goes to stdout and ``bench/results/scoring-<UTC time>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import generate  # noqa: E402

GENERATOR_VERSION = 1
PRODUCTS = 200


def _h(salt: int, var: str = "g") -> str:
    return f"(hashint8extended({var}, :seed + {salt}) & 9223372036854775807)"


ACTIVITIES_SQL = f"""
INSERT INTO trellis_activity (type, subject, occurred_at, contact_id, plugin)
SELECT (ARRAY['call','email','meeting','note'])[1 + {_h(101)} % 4], 'bench',
       now() - ({_h(102)} % (730 * 24 * 60)) * interval '1 minute',
       1 + {_h(103)} % :contacts, 'bench'
FROM generate_series(1, :activities) AS g
"""

PRODUCTS_SQL = """
INSERT INTO sales_product (id, sku, name, price, currency, active)
SELECT g, 'BENCH-' || g, 'Product ' || g, 5 + (g * 37) % 500, 'EUR', true
FROM generate_series(1, :products) AS g
"""

# order g: contact among the first 60 % (hashed), 1–4 lines; popular products
# skewed towards low ids so that pairs repeat
LINES_SQL = f"""
CREATE TEMP TABLE bench_lines AS
SELECT g AS order_id, k,
       1 + (({_h(111)} + k * 7919) % :products) * ((({_h(112)} + k) % 3) + 1) / 3 AS product_id,
       1 + ({_h(113)} + k) % 3 AS quantity
FROM generate_series(1, :orders) AS g
CROSS JOIN LATERAL generate_series(1, 1 + ({_h(114)} % 4)) AS k
"""

ORDERS_SQL = f"""
INSERT INTO sales_order (id, contact_id, ordered_at, currency, total)
SELECT g, 1 + {_h(121)} % (:contacts * 6 / 10),
       now() - ({_h(122)} % (730 * 24 * 60)) * interval '1 minute', 'EUR', t.total
FROM (SELECT l.order_id AS g, sum(l.quantity * p.price) AS total
      FROM bench_lines l JOIN sales_product p ON p.id = l.product_id
      GROUP BY l.order_id) t
"""

ORDER_LINES_SQL = """
INSERT INTO sales_order_line (order_id, product_id, quantity, unit_price, total)
SELECT l.order_id, l.product_id, l.quantity, p.price, l.quantity * p.price
FROM (SELECT DISTINCT ON (order_id, product_id) * FROM bench_lines
      ORDER BY order_id, product_id, k) l
JOIN sales_product p ON p.id = l.product_id
"""

TABLES = ["trellis_activity", "sales_product", "sales_order", "sales_order_line"]


def ensure(contacts: int, seed: int, force: bool) -> str:
    name = f"trellis_bench_scoring_{contacts}"
    url = generate.ensure(contacts, seed, database=name, force=force)
    wanted = {"scoring_generator": GENERATOR_VERSION, "activities": 5 * contacts,
              "orders": 2 * contacts, "seed": seed}
    # kept in a table of its own: generate.py owns the database comment (and
    # rebuilds the database when the comment is not exactly its own)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE IF NOT EXISTS bench_scoring_stamp (stamp text)"))
        stamp = conn.execute(sa.text("SELECT stamp FROM bench_scoring_stamp")).scalar()
    if not force and stamp == json.dumps(wanted, sort_keys=True):
        engine.dispose()
        return url
    params = {"seed": seed, "contacts": contacts, "activities": 5 * contacts,
              "orders": 2 * contacts, "products": PRODUCTS}
    started = time.perf_counter()
    print(f"{name}: inserting {5 * contacts:,} activities, {2 * contacts:,} orders and their "
          "lines ...", flush=True)
    with engine.begin() as conn:
        for table in reversed(TABLES):
            conn.execute(sa.text(f"TRUNCATE {table} CASCADE"))
        indexes = conn.execute(sa.text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
            "AND tablename = ANY(:t) AND indexname NOT IN (SELECT conname FROM pg_constraint)"),
            {"t": TABLES}).all()
        for index_name, _ in indexes:
            conn.execute(sa.text(f'DROP INDEX "{index_name}"'))
        conn.execute(sa.text(ACTIVITIES_SQL), params)
        conn.execute(sa.text(PRODUCTS_SQL), params)
        conn.execute(sa.text(LINES_SQL), params)
        conn.execute(sa.text(ORDERS_SQL), params)
        conn.execute(sa.text(ORDER_LINES_SQL), params)
        conn.execute(sa.text("SET LOCAL maintenance_work_mem = '512MB'"))
        for _, definition in indexes:
            conn.execute(sa.text(definition))
        for table in TABLES:
            conn.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                 f"(SELECT max(id) FROM {table}))"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in TABLES:
            conn.execute(sa.text(f"VACUUM (ANALYZE) {table}"))
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM bench_scoring_stamp"))
        conn.execute(sa.text("INSERT INTO bench_scoring_stamp VALUES (:s)"),
                     {"s": json.dumps(wanted, sort_keys=True)})
    engine.dispose()
    print(f"{name}: filled in {time.perf_counter() - started:.1f} s", flush=True)
    return url


BASELINE_SQL = """
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
     l AS (SELECT o.contact_id, count(DISTINCT to_char(o.ordered_at, 'YYYY-MM'))::float8 AS v
           FROM sales_order o
           WHERE o.contact_id IS NOT NULL AND o.ordered_at >= now() - interval '730 days'
           GROUP BY o.contact_id),
     ls AS (SELECT contact_id, 100 * least(greatest(v, 0), 12) / 12 AS s FROM l),
     v AS (SELECT c.id AS contact_id,
                  round((0.25 * coalesce(ir.s, 0) + 0.5 * coalesce(ps.s, 0)
                         + 0.25 * coalesce(ls.s, 0))::numeric, 2) AS value
           FROM trellis_contact c
           LEFT JOIN ir ON ir.contact_id = c.id
           LEFT JOIN ps ON ps.contact_id = c.id
           LEFT JOIN ls ON ls.contact_id = c.id)
SELECT contact_id, value,
       CASE WHEN value >= :high THEN 'high' WHEN value >= :medium THEN 'medium'
            ELSE 'low' END AS tier
FROM v
"""


def run(contacts: int, seed: int, force: bool) -> dict:
    url = ensure(contacts, seed, force)
    os.environ.update(generate.trellis_env(url))
    from trellis.app import create_app
    from trellis.db import db
    from trellis.jobs import execute

    app = create_app()
    result: dict = {"contacts": contacts, "activities": 5 * contacts}
    with app.app_context():
        counts = db.session.execute(sa.text(
            "SELECT (SELECT count(*) FROM trellis_activity), (SELECT count(*) FROM sales_order),"
            " (SELECT count(*) FROM sales_order_line)")).one()
        result.update({"activities": counts[0], "orders": counts[1], "order_lines": counts[2]})
        print(f"data: {contacts:,} contacts, {counts[0]:,} activities, {counts[1]:,} orders, "
              f"{counts[2]:,} order lines", flush=True)
        from trellis.settings import get_settings

        settings = get_settings("scoring")
        # 1. Trellis: the whole job, then the CRM value model alone (warm)
        started = time.perf_counter()
        job = execute("scoring.recompute", {})
        result["trellis_job_s"] = round(time.perf_counter() - started, 2)
        result["job"] = job
        from trellis_scoring import compute, extras
        from trellis_scoring.models import ScoringModel

        model = db.session.scalar(sa.select(ScoringModel).where(ScoringModel.key == "crm_value"))
        started = time.perf_counter()
        compute.recompute_model(db.session, model)
        db.session.commit()
        result["trellis_crm_value_s"] = round(time.perf_counter() - started, 2)
        parts = {}
        for name, fn in (("rfm", lambda: extras.recompute_rfm(db.session)),
                         ("associations", lambda: extras.recompute_associations(
                             db.session, settings["association_min_orders"]))):
            started = time.perf_counter()
            fn()
            db.session.commit()
            parts[name] = round(time.perf_counter() - started, 2)
        from trellis_scoring.churn import recompute_churn_and_clv

        started = time.perf_counter()
        recompute_churn_and_clv(db.session, settings["churn_horizon_days"],
                                settings["clv_discount_rate"])
        db.session.commit()
        parts["churn_and_clv"] = round(time.perf_counter() - started, 2)
        result["trellis_parts_s"] = parts
        # 2. the baseline
        db.session.execute(sa.text("DROP TABLE IF EXISTS bench_baseline_score"))
        db.session.commit()
        started = time.perf_counter()
        db.session.execute(sa.text(BASELINE_SQL), {"high": settings["high_tier_from"],
                                                   "medium": settings["medium_tier_from"]})
        db.session.commit()
        result["baseline_crm_value_s"] = round(time.perf_counter() - started, 2)
        # 3. the check
        diff = db.session.execute(sa.text(
            "SELECT count(*), count(*) FILTER (WHERE abs(b.value - s.value) > 0.01), "
            "max(abs(b.value - s.value)) FROM bench_baseline_score b "
            "JOIN scoring_customer_score s ON s.contact_id = b.contact_id AND s.model_id = "
            "(SELECT id FROM scoring_model WHERE key = 'crm_value')")).one()
        result["check"] = {"compared": diff[0], "different": diff[1],
                           "max_abs_diff": float(diff[2] or 0)}
        tiers = dict(db.session.execute(sa.text(
            "SELECT tier, count(*) FROM scoring_customer_score GROUP BY tier")).all())
        result["tiers"] = tiers
    result["ratio_crm_value"] = round(result["trellis_crm_value_s"]
                                      / max(result["baseline_crm_value_s"], 1e-9), 2)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.contacts, args.seed, args.force)
    print(json.dumps(result, indent=2, default=str))
    print(f"\nfull recompute job (CRM value + RFM + associations + churn + CLV): "
          f"{result['trellis_job_s']} s")
    print(f"CRM value model: Trellis {result['trellis_crm_value_s']} s, hand-written SQL "
          f"{result['baseline_crm_value_s']} s (×{result['ratio_crm_value']}); values differ "
          f"for {result['check']['different']} of {result['check']['compared']}")
    out = BENCH / "results"
    out.mkdir(exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    (out / f"scoring-{stamp}.json").write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()

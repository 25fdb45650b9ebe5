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
   (``trellis.jobs.execute``), twice: first with the result tables emptied
   (``TRUNCATE``: every score, history, RFM and value row is new — the worst
   case), then again (the usual nightly case: few values changed).  The job
   answers the seconds of each part (purchase lines copied once, each model,
   RFM, associations, churn + CLV).
2. **Baselines**: hand-written SQL statements, each into a fresh unlogged
   table: the CRM value (the same four features, ``percent_rank``, capped
   min-max with ``percentile_cont``, the weights, the tiers), RFM (per-customer
   aggregates, ``NTILE(5)`` thrice, the segment rules) and the associations
   (distinct baskets, a self-join, support/confidence/lift) — no history,
   explanation, upsert or foreign keys.  Churn/CLV has none (a numpy fit).
3. **Checks**: CRM values agree per contact (|Δ| ≤ 0.01), RFM quintiles and
   segments are equal, association pairs have the same counts and lifts.

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


# --------------------------------------------------------------- hand-written SQL

#: The CRM value model as seeded (interactions 0.2 percentile, purchase total 0.4
#: min-max floor 0 cap p95, satisfaction 0.2 min-max 1–5 missing 50, loyalty 0.2
#: min-max 0–12): one statement, no history, no explanation, no upsert.
BASELINE_CRM_VALUE = """
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
     q AS (SELECT contact_id, avg(rating::float8) AS v FROM service_survey
           WHERE rating IS NOT NULL AND contact_id IS NOT NULL GROUP BY contact_id),
     qs AS (SELECT contact_id, 100 * (least(greatest(v, 1), 5) - 1) / 4 AS s FROM q),
     l AS (SELECT contact_id, count(*)::float8 AS v
           FROM (SELECT DISTINCT contact_id, to_char(ordered_at, 'YYYY-MM') FROM sales_order
                 WHERE contact_id IS NOT NULL AND ordered_at >= now() - interval '730 days') m
           GROUP BY contact_id),
     ls AS (SELECT contact_id, 100 * least(greatest(v, 0), 12) / 12 AS s FROM l),
     v AS (SELECT c.id AS contact_id,
                  round((0.2 * coalesce(ir.s, 0) + 0.4 * coalesce(ps.s, 0)
                         + 0.2 * coalesce(qs.s, 50) + 0.2 * coalesce(ls.s, 0))::numeric, 2)
                      AS value
           FROM trellis_contact c
           LEFT JOIN ir ON ir.contact_id = c.id
           LEFT JOIN ps ON ps.contact_id = c.id
           LEFT JOIN qs ON qs.contact_id = c.id
           LEFT JOIN ls ON ls.contact_id = c.id)
SELECT contact_id, value,
       CASE WHEN value >= :high THEN 'high' WHEN value >= :medium THEN 'medium'
            ELSE 'low' END AS tier
FROM v
"""

#: RFM: per-customer aggregates of the orders, NTILE(5) thrice, the segment rules.
BASELINE_RFM = """
CREATE UNLOGGED TABLE bench_baseline_rfm AS
WITH l AS (SELECT order_id, sum(total) AS total FROM sales_order_line GROUP BY order_id),
     per AS (SELECT o.contact_id, max(o.ordered_at) AS last_at, count(*) AS orders,
                    coalesce(sum(coalesce(l.total, o.total)), 0) AS spent
             FROM sales_order o LEFT JOIN l ON l.order_id = o.id
             WHERE o.contact_id IS NOT NULL GROUP BY o.contact_id),
     q AS (SELECT contact_id, extract(epoch FROM now() - last_at) / 86400 AS recency_days,
                  orders, spent,
                  ntile(5) OVER (ORDER BY last_at, contact_id) AS r,
                  ntile(5) OVER (ORDER BY orders, contact_id) AS f,
                  ntile(5) OVER (ORDER BY spent, contact_id) AS m
           FROM per)
SELECT q.*, {segment} AS segment FROM q
"""

#: Associations: distinct order × product baskets, pair counts by a self-join.
BASELINE_ASSOCIATIONS = """
CREATE UNLOGGED TABLE bench_baseline_association AS
WITH b AS MATERIALIZED (SELECT DISTINCT order_id, product_id FROM sales_order_line
                        WHERE product_id IS NOT NULL),
     n AS (SELECT count(DISTINCT order_id)::float8 AS n FROM b),
     i AS (SELECT product_id, count(*) AS n FROM b GROUP BY product_id),
     p AS (SELECT x.product_id AS x, y.product_id AS y, count(*) AS nxy
           FROM b x JOIN b y ON x.order_id = y.order_id AND x.product_id <> y.product_id
           GROUP BY 1, 2 HAVING count(*) >= :min_orders)
SELECT p.x, p.y, p.nxy, p.nxy / n.n AS support, p.nxy::float8 / ix.n AS confidence,
       p.nxy * n.n / (ix.n::float8 * iy.n) AS lift
FROM p CROSS JOIN n JOIN i ix ON ix.product_id = p.x JOIN i iy ON iy.product_id = p.y
"""

OUTPUTS = ["scoring_customer_score", "scoring_history", "scoring_run", "scoring_rfm",
           "scoring_association", "scoring_customer_value", "scoring_churn_model"]


def _segment_sql() -> str:
    from trellis_scoring.extras import SEGMENTS

    rules = " ".join(f"WHEN r BETWEEN {r0} AND {r1} AND f BETWEEN {f0} AND {f1} AND m >= {m0} "
                     f"THEN '{name}'" for name, r0, r1, f0, f1, m0 in SEGMENTS)
    return f"CASE {rules} ELSE 'others' END"


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return round(time.perf_counter() - started, 2)


def _baselines(session, settings: dict) -> dict[str, float]:
    """Run the hand-written statements, each into a fresh unlogged table."""
    for name in ("score", "rfm", "association"):
        session.execute(sa.text(f"DROP TABLE IF EXISTS bench_baseline_{name}"))
    session.commit()
    statements = {
        "crm_value": (BASELINE_CRM_VALUE, {"high": settings["high_tier_from"],
                                           "medium": settings["medium_tier_from"]}),
        "rfm": (BASELINE_RFM.format(segment=_segment_sql()), {}),
        "associations": (BASELINE_ASSOCIATIONS,
                         {"min_orders": settings["association_min_orders"]}),
    }
    out = {}
    for name, (sql, params) in statements.items():
        def go(sql=sql, params=params):
            session.execute(sa.text("SET LOCAL work_mem = '256MB'"))
            session.execute(sa.text(sql), params)
            session.commit()
        out[name] = _timed(go)
    return out


def _checks(session) -> dict:
    """The job's results against the baselines', row by row."""
    one = lambda sql: session.execute(sa.text(sql)).one()  # noqa: E731
    crm = one("SELECT count(*), count(*) FILTER (WHERE abs(b.value - s.value) > 0.01), "
              "max(abs(b.value - s.value)), count(*) FILTER (WHERE b.tier <> s.tier) "
              "FROM bench_baseline_score b JOIN scoring_customer_score s "
              "ON s.contact_id = b.contact_id AND s.model_id = "
              "(SELECT id FROM scoring_model WHERE key = 'crm_value')")
    rfm = one("SELECT (SELECT count(*) FROM bench_baseline_rfm), count(*), "
              "count(*) FILTER (WHERE (b.r, b.f, b.m, b.segment) <> (s.r, s.f, s.m, s.segment))"
              " FROM bench_baseline_rfm b JOIN scoring_rfm s ON s.contact_id = b.contact_id")
    assoc = one("SELECT (SELECT count(*) FROM bench_baseline_association), count(*), "
                "count(*) FILTER (WHERE b.nxy <> s.orders), "
                "max(abs(b.lift - s.lift) / b.lift) FROM bench_baseline_association b "
                "JOIN scoring_association s ON s.antecedent_id = b.x AND s.consequent_id = b.y")
    return {"crm_value": {"compared": crm[0], "different": crm[1],
                          "max_abs_diff": float(crm[2] or 0), "tier_different": crm[3]},
            "rfm": {"baseline_rows": rfm[0], "compared": rfm[1], "different": rfm[2]},
            "associations": {"baseline_rows": assoc[0], "compared": assoc[1],
                             "different_counts": assoc[2],
                             "max_rel_lift_diff": float(assoc[3] or 0)}}


def run(contacts: int, seed: int, force: bool) -> dict:
    url = ensure(contacts, seed, force)
    os.environ.update(generate.trellis_env(url))
    from trellis.app import create_app
    from trellis.db import db
    from trellis.jobs import execute

    app = create_app()
    result: dict = {"contacts": contacts}
    with app.app_context():
        counts = db.session.execute(sa.text(
            "SELECT (SELECT count(*) FROM trellis_activity), (SELECT count(*) FROM sales_order),"
            " (SELECT count(*) FROM sales_order_line)")).one()
        result.update({"activities": counts[0], "orders": counts[1], "order_lines": counts[2]})
        print(f"data: {contacts:,} contacts, {counts[0]:,} activities, {counts[1]:,} orders, "
              f"{counts[2]:,} order lines", flush=True)
        from trellis.settings import get_settings

        settings = get_settings("scoring")
        # 1. Trellis: the whole job from empty result tables (every score new),
        #    then again (the usual nightly case: few scores change)
        db.session.execute(sa.text(f"TRUNCATE {', '.join(OUTPUTS)}"))
        db.session.commit()
        db.session.execute(sa.text("CHECKPOINT"))
        job = {}
        result["trellis_job_s"] = _timed(lambda: job.update(execute("scoring.recompute", {})))
        result["job"] = job
        print(f"job (first run): {result['trellis_job_s']} s {job.get('seconds')}", flush=True)
        again = {}
        result["trellis_job_again_s"] = _timed(
            lambda: again.update(execute("scoring.recompute", {})))
        result["job_again"] = again
        print(f"job (again): {result['trellis_job_again_s']} s {again.get('seconds')}",
              flush=True)
        # 2. the baselines
        result["baseline_s"] = _baselines(db.session, settings)
        print(f"baselines: {result['baseline_s']}", flush=True)
        # 3. the checks
        result["check"] = _checks(db.session)
        result["tiers"] = dict(db.session.execute(sa.text(
            "SELECT tier, count(*) FROM scoring_customer_score GROUP BY tier")).all())
    base = result["baseline_s"]
    for key, ran in (("", job), ("_again", again)):
        parts = ran["seconds"]
        # the purchase lines are copied once for every part; counted with the CRM value
        result[f"parts{key}_s"] = {
            "crm_value": round(parts["purchase_lines"] + parts["model:crm_value"], 2),
            "rfm": parts["rfm"], "associations": parts["associations"],
            "churn_and_clv": parts["churn_and_clv"]}
        result[f"ratios{key}"] = {k: round(result[f"parts{key}_s"][k] / max(base[k], 1e-9), 2)
                                  for k in base}
    result["ratio_job_vs_baselines"] = round(result["trellis_job_s"] / sum(base.values()), 2)
    result["ratio_job_again_vs_baselines"] = round(result["trellis_job_again_s"]
                                                   / sum(base.values()), 2)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.contacts, args.seed, args.force)
    print(json.dumps(result, indent=2, default=str))
    base = result["baseline_s"]
    print(f"\nfull recompute job (CRM value + RFM + associations + churn + CLV): "
          f"{result['trellis_job_s']} s from empty score tables "
          f"(×{result['ratio_job_vs_baselines']}), {result['trellis_job_again_s']} s again "
          f"(×{result['ratio_job_again_vs_baselines']}); hand-written SQL (CRM value + RFM + "
          f"associations) {round(sum(base.values()), 2)} s")
    for name in ("crm_value", "rfm", "associations", "churn_and_clv"):
        first, again = result["parts_s"][name], result["parts_again_s"][name]
        against = (f"hand-written SQL {base[name]} s (×{result['ratios'][name]}, "
                   f"×{result['ratios_again'][name]})" if name in base else "no baseline")
        print(f"  {name}: Trellis {first} s, again {again} s; {against}")
    print(f"  checks: {result['check']}")
    out = BENCH / "results"
    out.mkdir(exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    (out / f"scoring-{stamp}.json").write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()

"""The benchmark suite's data set: every table the suite reads, seeded, set-based.

At ``--scale 1`` (the default) the database holds 1,000,000 accounts,
1,000,000 contacts, 10,000,000 activities, 2,000,000 order lines (800,000
orders), 200,000 deals (and their stage history) and 500,000 tickets; other
scales multiply every count.  The schema is Trellis' own (``trellis init``,
as :mod:`generate`), the rows come from one ``INSERT … SELECT
generate_series`` per table reusing the SQL of :mod:`generate` (accounts,
contacts), :mod:`scoring` (activities, products, orders and lines) and
:mod:`generate_sales` (users, rates, deals, history); every value is a
function of the row number and the seed, so a scale and seed always give the
same rows.  Secondary indexes are dropped for the load and rebuilt from their
own definitions, foreign-key triggers skipped (the rows are right by
construction), then ``VACUUM (ANALYZE)``.

Right after ``trellis init`` the empty database is copied to
``<name>_empty`` (``CREATE DATABASE … TEMPLATE``): the import benchmark starts
from a copy of it instead of running ``trellis init`` again.

    .venv/bin/python bench/dataset.py --scale 0.01

The database is ``trellis_bench`` at scale 1, ``trellis_bench_s<scale>``
otherwise; its comment records the scale, seed and generator version, so a
second run only brings the schema up to the code (``trellis init``) and keeps
the rows.  Only ``trellis_bench*`` databases are ever dropped.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import sqlalchemy as sa

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import generate  # noqa: E402
import generate_sales  # noqa: E402
import scoring  # noqa: E402

GENERATOR_VERSION = 1
#: rows at scale 1 (the issue's sizes); orders follow from the lines (2.5 per order)
SIZES = {"accounts": 1_000_000, "contacts": 1_000_000, "activities": 10_000_000,
         "order_lines": 2_000_000, "deals": 200_000, "tickets": 500_000}
LINES_PER_ORDER = 2.5
TABLES = ["trellis_account", "trellis_contact", "trellis_activity", "sales_product",
          "sales_order", "sales_order_line", "sales_deal", "sales_deal_stage_history",
          "service_ticket"]

# ticket g: a contact (and its account), a status and priority, created in the
# 730 days before the data's "today", the due times of a 4 h / 16 h SLA in hours
TICKETS_SQL = f"""
INSERT INTO service_ticket (id, subject, contact_id, account_id, channel, priority, status,
                            email, created_on, first_response_at, resolved_at, closed_at,
                            first_response_due_at, resolution_due_at, sla_paused_hours)
SELECT g, 'Ticket ' || g || ' ' || (CAST(:topics AS text[]))[1 + {scoring._h(201)} % 8],
       c.id, c.account_id,
       (ARRAY['email','web','phone','api'])[1 + {scoring._h(202)} % 4],
       (ARRAY['low','normal','normal','high','urgent'])[1 + {scoring._h(203)} % 5],
       t.status, c.email, t.created,
       CASE WHEN t.status <> 'new' THEN t.created + interval '2 hours' END,
       CASE WHEN t.status IN ('resolved', 'closed') THEN t.created + interval '1 day' END,
       CASE WHEN t.status = 'closed' THEN t.created + interval '8 days' END,
       t.created + interval '4 hours', t.created + interval '16 hours', 0
FROM generate_series(1, :tickets) AS g
JOIN trellis_contact c ON c.id = 1 + {scoring._h(204)} % :contacts
CROSS JOIN LATERAL (
    SELECT (ARRAY['new','open','pending','resolved','closed','closed'])
             [1 + {scoring._h(205)} % 6] AS status,
           timestamptz '{generate_sales.NOW}'
             - ({scoring._h(206)} % (730 * 1440)) * interval '1 minute' AS created) t
"""
TOPICS = ["router", "printer", "invoice", "password", "refund", "export", "login", "billing"]


def sizes(scale: float) -> dict[str, int]:
    """Row counts at ``scale`` (each at least 10)."""
    out = {k: max(int(round(v * scale)), 10) for k, v in SIZES.items()}
    out["orders"] = max(int(out["order_lines"] / LINES_PER_ORDER), 4)
    return out


def database_name(scale: float) -> str:
    if scale == 1:
        return "trellis_bench"
    return "trellis_bench_s" + f"{scale:g}".replace(".", "_").replace("-", "m")


def template_name(name: str) -> str:
    return f"{name}_empty"


def wanted_stamp(scale: float, seed: int) -> dict:
    return {"generator": "suite", "version": GENERATOR_VERSION, "scale": scale, "seed": seed,
            "sizes": sizes(scale), "complete": True}


def _create_from_template(server: str, name: str, template: str) -> None:
    if not name.startswith("trellis_bench"):
        raise SystemExit(f"refusing to drop {name!r}: only trellis_bench* databases are managed")
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    admin.dispose()


def _fill(url: str, n: dict[str, int], seed: int, say) -> dict[str, float]:
    timings: dict[str, float] = {}
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        ids = generate_sales._users(conn, seed)
        conn.execute(sa.text("INSERT INTO trellis_exchange_rate (currency, rate, valid_from) "
                             "VALUES (:c, CAST(:r AS numeric), CAST(:d AS date))"),
                     [{"c": c, "r": r, "d": d} for c, r, d in generate_sales.RATES])
        pipeline = conn.execute(sa.text(
            "SELECT id FROM sales_pipeline ORDER BY is_default DESC, id LIMIT 1")).scalar_one()
        params = {
            "seed": seed, **n, "products": scoring.PRODUCTS, "pipeline": pipeline,
            "owner": ids[generate_sales.MANAGER],
            "first_rep": ids[generate_sales.REP_NAMES[0]], "reps": generate_sales.REPS,
            "currencies": ["EUR"] * 6 + ["USD"] * 3 + ["GBP"],
            "reasons": generate_sales.LOST_REASONS,
            "n_reasons": len(generate_sales.LOST_REASONS), "topics": TOPICS,
            "words": generate.COMPANY_WORDS, "n_words": len(generate.COMPANY_WORDS),
            "suffixes": generate.COMPANY_SUFFIXES, "n_suffixes": len(generate.COMPANY_SUFFIXES),
            "industries": generate.INDUSTRIES, "n_industries": len(generate.INDUSTRIES),
            "countries": generate.COUNTRIES, "n_countries": len(generate.COUNTRIES),
            "titles": generate.TITLES, "n_titles": len(generate.TITLES),
            "first_names": generate.FIRST_NAMES, "n_first": len(generate.FIRST_NAMES),
            "last_names": generate.LAST_NAMES, "n_last": len(generate.LAST_NAMES),
        }
        indexes = conn.execute(sa.text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
            "AND tablename = ANY(:t) AND indexname NOT IN (SELECT conname FROM pg_constraint)"),
            {"t": TABLES}).all()
        for name, _ in indexes:
            conn.execute(sa.text(f'DROP INDEX "{name}"'))
        conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
        conn.execute(sa.text("SET LOCAL work_mem = '256MB'"))
        for label, sql in [
                ("accounts", generate.ACCOUNTS_SQL), ("contacts", generate.CONTACTS_SQL),
                ("activities", scoring.ACTIVITIES_SQL), ("products", scoring.PRODUCTS_SQL),
                ("lines", scoring.LINES_SQL), ("orders", scoring.ORDERS_SQL),
                ("order_lines", scoring.ORDER_LINES_SQL), ("deals", generate_sales.DEALS_SQL),
                ("history", generate_sales.HISTORY_SQL), ("tickets", TICKETS_SQL)]:
            say(f"  {label} ...")
            started = time.perf_counter()
            conn.execute(sa.text(sql), params)
            timings[f"{label}_s"] = round(time.perf_counter() - started, 1)
        conn.execute(sa.text("DROP TABLE bench_lines"))
        conn.execute(sa.text("SET LOCAL session_replication_role = origin"))
        say(f"  {len(indexes)} indexes ...")
        started = time.perf_counter()
        conn.execute(sa.text("SET LOCAL maintenance_work_mem = '512MB'"))
        for _, definition in indexes:
            conn.execute(sa.text(definition))
        timings["indexes_s"] = round(time.perf_counter() - started, 1)
        for table in TABLES:
            conn.execute(sa.text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"coalesce((SELECT max(id) FROM {table}), 1))"))
    started = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in TABLES:
            conn.execute(sa.text(f"VACUUM (ANALYZE) {table}"))
    timings["vacuum_analyze_s"] = round(time.perf_counter() - started, 1)
    engine.dispose()
    return timings


def ensure(scale: float = 1.0, seed: int = 42, server: str = generate.DEFAULT_SERVER,
           force: bool = False, quiet: bool = False) -> tuple[str, dict]:
    """Make sure the suite's database holds this scale's rows; ``(url, info)``."""
    name = database_name(scale)
    url = generate.bench_url(0, name, server)
    empty_url = generate.bench_url(0, template_name(name), server)
    wanted = wanted_stamp(scale, seed)
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    started = time.perf_counter()
    if not force and generate.current_stamp(server, name) == wanted \
            and generate.current_stamp(server, template_name(name)) is not None:
        # keep the rows; bring the schema up to the code's migrations
        generate._trellis_init(url)
        generate._trellis_init(empty_url)
        say(f"{name}: already holds scale {scale:g} (seed {seed}); schema upgraded "
            f"(trellis init, {time.perf_counter() - started:.1f} s)")
        return url, {"database": name, "sizes": wanted["sizes"], "generated": False,
                     "seconds": round(time.perf_counter() - started, 1)}
    n = wanted["sizes"]
    say(f"{name}: creating the database and the Trellis schema (trellis init) ...")
    generate._recreate_database(server, name)
    generate._trellis_init(url)
    _create_from_template(server, template_name(name), name)
    schema_s = round(time.perf_counter() - started, 1)
    say(f"{name}: inserting " + ", ".join(f"{v:,} {k}" for k, v in n.items()) + " ...")
    timings = _fill(url, n, seed, say)
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"COMMENT ON DATABASE \"{name}\" IS "
                             + "'" + json.dumps(wanted).replace("'", "''") + "'"))
    admin.dispose()
    total = round(time.perf_counter() - started, 1)
    say(f"{name}: done in {total} s (schema {schema_s} s, "
        + ", ".join(f"{k[:-2]} {v} s" for k, v in timings.items()) + ")")
    return url, {"database": name, "sizes": n, "generated": True, "seconds": total,
                 "schema_s": schema_s, **timings}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--server", default=generate.DEFAULT_SERVER)
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = parser.parse_args(argv)
    print(ensure(args.scale, args.seed, args.server, args.force)[0])


if __name__ == "__main__":
    main()

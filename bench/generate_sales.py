"""Fill a PostgreSQL database with N sales deals (and their history, leads, orders).

The schema is Trellis' own (``trellis init``, as in generate.py); the rows are
inserted set-based (``INSERT ... SELECT generate_series``), every value a pure
function of the row number and the seed (``hashint8extended``), so the same
arguments give the same data on every run.  Secondary indexes of the filled
tables are dropped for the load and rebuilt from their own definitions, then
``VACUUM (ANALYZE)``.

    .venv/bin/python bench/generate_sales.py --deals 1000000

What it holds (N = ``--deals``):

* users: 8 reps (role ``Sales Rep``, scope ``own``) ``rep01``..``rep08`` and a
  manager ``sales.manager`` (``Sales Manager``, scope ``team``) of the team
  "Bench sales team" of the 8 reps; all with the admin's bench password;
* the default pipeline and stages of ``trellis init`` (Qualification 10 %,
  Needs analysis 25 %, Proposal 50 %, Negotiation 75 %, Won, Lost);
* exchange rates (company currency EUR): USD from 2024-12-01, 2025-06-15,
  2026-02-10, 2026-09-01; GBP from 2025-03-01, 2025-10-20, 2026-05-05 (so GBP
  deals closed before 2025-03-01 have no rate: they are "unconverted");
* N/10 contacts and 10,000 accounts (generate.py's SQL);
* N deals created 2025-01-01 .. 2026-10-31, 14/12/10/8 % in the four open
  stages, 28 % won, 28 % lost; EUR 60 %, USD 30 %, GBP 10 %; 2 % without
  owner; won/lost 1..150 days after creation (never after NOW);
* stage history: each deal walks the open stages in order up to its stage
  (closed deals: 1..3 open stages, then Won or Lost): ~2.7 rows per deal;
* N/2 leads over the same two years, one in three converted to its own deal;
* N/2 orders over the same period by N/8 contacts (so contacts repeat), 30 %
  with an account;
* quotas: one per rep and calendar quarter of 2025 and 2026.

The database is ``trellis_bench_sales_<deals>``; its comment records the
parameters, so a second run only runs ``trellis init`` again; ``--force``
rebuilds.  Only ``trellis_bench*`` databases are ever dropped.
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

GENERATOR_VERSION = 1
#: "now" of the generated data (reports get as_of / windows relative to it)
NOW = "2026-11-01 00:00:00+00"
NOW_DATE = "2026-11-01"
REPS = 8
REP_NAMES = [f"rep{n:02d}" for n in range(1, REPS + 1)]
MANAGER = "sales.manager"
TEAM = "Bench sales team"
RATES = [("USD", "0.92", "2024-12-01"), ("USD", "0.95", "2025-06-15"),
         ("USD", "0.90", "2026-02-10"), ("USD", "0.93", "2026-09-01"),
         ("GBP", "1.17", "2025-03-01"), ("GBP", "1.15", "2025-10-20"),
         ("GBP", "1.19", "2026-05-05")]
LOST_REASONS = ["Price", " Price ", "Went with a competitor", "No budget", "Timing",
                "No decision", "", None]
LEAD_SOURCES = ["web_form", "import", "campaign", "manual", "api", "referral", "event"]
OPEN_LEAD_STATUSES = ["new", "contacted", "qualified", "disqualified"]
TABLES = ["trellis_account", "trellis_contact", "sales_deal", "sales_deal_stage_history",
          "sales_lead", "sales_order", "sales_quota"]


def bench_url(deals: int, server: str = generate.DEFAULT_SERVER) -> str:
    return generate.bench_url(0, f"trellis_bench_sales_{deals}", server)


def _h(salt: int, var: str = "g") -> str:
    return f"(hashint8extended({var}, :seed + {salt}) & 9223372036854775807)"


# stage of deal g: 14 % Qualification, 12 Needs analysis, 10 Proposal, 8 Negotiation,
# 28 Won, 28 Lost (stage ids of trellis init's default pipeline, read at load time)
STAGE_OF = f"""CASE WHEN {_h(101)} % 100 < 14 THEN 1 WHEN {_h(101)} % 100 < 26 THEN 2
                    WHEN {_h(101)} % 100 < 36 THEN 3 WHEN {_h(101)} % 100 < 44 THEN 4
                    WHEN {_h(101)} % 100 < 72 THEN 5 ELSE 6 END"""

DEALS_SQL = f"""
INSERT INTO sales_deal (id, name, account_id, contact_id, pipeline_id, stage_id, amount,
                        currency, probability, probability_overridden, expected_close,
                        owner_id, lost_reason, won_at, lost_at, last_activity_at,
                        created_on, updated_on)
SELECT g, 'Deal ' || g,
       CASE WHEN {_h(102)} % 5 = 0 THEN NULL ELSE 1 + {_h(102)} % :accounts END,
       CASE WHEN {_h(103)} % 4 = 0 THEN NULL ELSE 1 + {_h(103)} % :contacts END,
       :pipeline, st.id, ({_h(104)} % 5000000) / 100.0 + 100,
       (CAST(:currencies AS text[]))[1 + {_h(105)} % 10],
       CASE WHEN {_h(106)} % 10 = 0 THEN {_h(107)} % 101 ELSE st.probability END,
       {_h(106)} % 10 = 0,
       CAST(c.created + ({_h(108)} % 180) * interval '1 day' AS date),
       CASE WHEN {_h(109)} % 50 = 0 THEN NULL ELSE :first_rep + {_h(109)} % :reps END,
       CASE WHEN st.is_lost THEN (CAST(:reasons AS text[]))[1 + {_h(110)} % :n_reasons] END,
       CASE WHEN st.is_won THEN c.closed END,
       CASE WHEN st.is_lost THEN c.closed END,
       coalesce(c.closed, c.created), c.created, coalesce(c.closed, c.created)
FROM generate_series(1, :deals) AS g
JOIN sales_stage st ON st.pipeline_id = :pipeline AND st.position = ({STAGE_OF}) - 1
CROSS JOIN LATERAL (
    SELECT created,
           least(created + (1 + {_h(111)} % 150) * interval '1 day'
                 + ({_h(112)} % 86400) * interval '1 second',
                 timestamptz '{NOW}' - interval '1 hour') AS closed
    FROM (SELECT timestamptz '2025-01-01 00:00:00+00'
                 + ({_h(113)} % (669 * 86400)) * interval '1 second' AS created) x) c
"""

# Each deal walks the open stages in order (positions 0..k-1); a closed deal
# walks 1..3 of them and then its Won/Lost stage.  Entry times are spread evenly
# from creation to the close (open deals: to NOW minus a day).
HISTORY_SQL = f"""
INSERT INTO sales_deal_stage_history (deal_id, stage_id, entered_at, left_at, user_id)
SELECT d.id, CASE WHEN i = p.steps AND (st.is_won OR st.is_lost) THEN d.stage_id
                  ELSE s2.id END,
       d.created_on + (p.span * (i - 1)) / p.steps,
       CASE WHEN i < p.steps THEN d.created_on + (p.span * i) / p.steps END,
       d.owner_id
FROM sales_deal d
JOIN sales_stage st ON st.id = d.stage_id
CROSS JOIN LATERAL (
    SELECT CASE WHEN st.is_won OR st.is_lost THEN 2 + {_h(120, 'd.id')} % 3
                ELSE st.position + 1 END AS steps,
           coalesce(d.won_at, d.lost_at,
                    greatest(timestamptz '{NOW}' - interval '1 day', d.created_on))
             - d.created_on AS span) p
CROSS JOIN LATERAL generate_series(1, p.steps) AS i
LEFT JOIN sales_stage s2 ON s2.pipeline_id = d.pipeline_id AND s2.position = i - 1
ORDER BY d.id, i
"""

LEADS_SQL = f"""
INSERT INTO sales_lead (id, first_name, last_name, email, company, country, source, status,
                        score, owner_id, created_on, updated_on, converted_contact_id,
                        converted_deal_id)
SELECT g, 'Lead', 'Person ' || g, 'lead' || g || '@leads.example.com', 'Company ' || g % 5000,
       (CAST(:countries AS text[]))[1 + {_h(130)} % :n_countries],
       (CAST(:sources AS text[]))[1 + {_h(131)} % :n_sources],
       CASE WHEN conv THEN 'converted'
            ELSE (CAST(:statuses AS text[]))[1 + {_h(132)} % :n_statuses] END,
       {_h(133)} % 100,
       CASE WHEN {_h(134)} % 50 = 0 THEN NULL ELSE :first_rep + {_h(134)} % :reps END,
       created, created,
       CASE WHEN conv THEN 1 + {_h(135)} % :contacts END,
       CASE WHEN conv THEN g END
FROM generate_series(1, :leads) AS g
CROSS JOIN LATERAL (SELECT {_h(136)} % 3 = 0 AS conv,
                           timestamptz '2025-01-01 00:00:00+00'
                           + ({_h(137)} % (669 * 86400)) * interval '1 second' AS created) x
"""

ORDERS_SQL = f"""
INSERT INTO sales_order (id, contact_id, account_id, deal_id, owner_id, ordered_at,
                         currency, total)
SELECT g, 1 + {_h(140)} % :order_contacts,
       CASE WHEN {_h(141)} % 10 < 3 THEN 1 + {_h(142)} % :accounts END,
       NULL,
       CASE WHEN {_h(143)} % 50 = 0 THEN NULL ELSE :first_rep + {_h(143)} % :reps END,
       timestamptz '2025-01-01 00:00:00+00' + ({_h(144)} % (669 * 86400)) * interval '1 second',
       (CAST(:currencies AS text[]))[1 + {_h(145)} % 10],
       ({_h(146)} % 500000) / 100.0 + 10
FROM generate_series(1, :orders) AS g
"""

QUOTAS_SQL = """
INSERT INTO sales_quota (user_id, period_start, period_end, amount)
SELECT u.id, q, CAST(q + interval '3 months' - interval '1 day' AS date),
       (:deals * 125.0 / :reps)::numeric(14, 2)
FROM ab_user u
CROSS JOIN generate_series(date '2025-01-01', date '2026-10-01', interval '3 months') AS q
WHERE u.username = ANY(:rep_names)
"""


def _users(conn, seed: int) -> dict[str, int]:
    """The reps and their manager (FAB's scrypt hash of the bench password), the team."""
    from werkzeug.security import generate_password_hash

    password = generate_password_hash(generate.ADMIN_PASSWORD)
    roles = dict(conn.execute(sa.text("SELECT name, id FROM ab_role")).all())
    ids = {}
    for username, role in [*((n, "Sales Rep") for n in REP_NAMES), (MANAGER, "Sales Manager")]:
        uid = conn.execute(sa.text(
            "INSERT INTO ab_user (first_name, last_name, username, password, active, email, "
            "created_on, changed_on, login_count, fail_login_count) "
            "VALUES (:f, :l, :u, :p, true, :e, now(), now(), 0, 0) RETURNING id"),
            {"f": username.split(".")[0].title(), "l": "Bench", "u": username, "p": password,
             "e": f"{username}@bench.example.com"}).scalar_one()
        conn.execute(sa.text("INSERT INTO ab_user_role (user_id, role_id) VALUES (:u, :r)"),
                     {"u": uid, "r": roles[role]})
        ids[username] = uid
    team = conn.execute(sa.text(
        "INSERT INTO trellis_team (name, manager_id) VALUES (:n, :m) RETURNING id"),
        {"n": TEAM, "m": ids[MANAGER]}).scalar_one()
    for name in REP_NAMES:
        conn.execute(sa.text("INSERT INTO trellis_team_member (team_id, user_id) "
                             "VALUES (:t, :u)"), {"t": team, "u": ids[name]})
    rep_ids = [ids[n] for n in REP_NAMES]
    assert rep_ids == list(range(rep_ids[0], rep_ids[0] + REPS)), rep_ids
    return ids


def _fill(url: str, deals: int, seed: int) -> dict[str, float]:
    timings: dict[str, float] = {}
    engine = sa.create_engine(url)
    contacts = max(deals // 10, 1000)
    with engine.begin() as conn:
        ids = _users(conn, seed)
        conn.execute(sa.text("INSERT INTO trellis_exchange_rate (currency, rate, valid_from) "
                             "VALUES (:c, CAST(:r AS numeric), CAST(:d AS date))"),
                     [{"c": c, "r": r, "d": d} for c, r, d in RATES])
        pipeline = conn.execute(sa.text(
            "SELECT id FROM sales_pipeline ORDER BY is_default DESC, id LIMIT 1")).scalar_one()
        params = {
            "seed": seed, "deals": deals, "contacts": contacts,
            "accounts": generate.ACCOUNTS, "pipeline": pipeline,
            "first_rep": ids[REP_NAMES[0]], "reps": REPS, "rep_names": REP_NAMES,
            "currencies": ["EUR"] * 6 + ["USD"] * 3 + ["GBP"],
            "reasons": LOST_REASONS, "n_reasons": len(LOST_REASONS),
            "countries": generate.COUNTRIES, "n_countries": len(generate.COUNTRIES),
            "sources": LEAD_SOURCES, "n_sources": len(LEAD_SOURCES),
            "statuses": OPEN_LEAD_STATUSES, "n_statuses": len(OPEN_LEAD_STATUSES),
            "leads": deals // 2, "orders": deals // 2, "order_contacts": max(deals // 8, 1),
            # generate.py's contacts and accounts
            "words": generate.COMPANY_WORDS, "n_words": len(generate.COMPANY_WORDS),
            "suffixes": generate.COMPANY_SUFFIXES, "n_suffixes": len(generate.COMPANY_SUFFIXES),
            "industries": generate.INDUSTRIES, "n_industries": len(generate.INDUSTRIES),
            "titles": generate.TITLES, "n_titles": len(generate.TITLES),
            "first_names": generate.FIRST_NAMES, "n_first": len(generate.FIRST_NAMES),
            "last_names": generate.LAST_NAMES, "n_last": len(generate.LAST_NAMES),
            "owner": ids[MANAGER],
        }
        indexes = conn.execute(sa.text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
            "AND tablename = ANY(:t) AND indexname NOT IN (SELECT conname FROM pg_constraint)"),
            {"t": TABLES}).all()
        for name, _ in indexes:
            conn.execute(sa.text(f'DROP INDEX "{name}"'))
        # Foreign keys are right by construction; skip their per-row triggers.
        conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
        for label, sql, extra in [
                ("accounts", generate.ACCOUNTS_SQL, {}),
                ("contacts", generate.CONTACTS_SQL, {"contacts": contacts}),
                ("deals", DEALS_SQL, {}), ("history", HISTORY_SQL, {}),
                ("leads", LEADS_SQL, {}), ("orders", ORDERS_SQL, {}),
                ("quotas", QUOTAS_SQL, {})]:
            started = time.perf_counter()
            conn.execute(sa.text(sql), {**params, **extra})
            timings[f"{label}_s"] = time.perf_counter() - started
        conn.execute(sa.text("SET LOCAL session_replication_role = origin"))
        started = time.perf_counter()
        conn.execute(sa.text("SET LOCAL maintenance_work_mem = '512MB'"))
        for _, definition in indexes:
            conn.execute(sa.text(definition))
        timings["indexes_s"] = time.perf_counter() - started
        for table in TABLES:
            conn.execute(sa.text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"coalesce((SELECT max(id) FROM {table}), 1))"))
    started = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in TABLES:
            conn.execute(sa.text(f"VACUUM (ANALYZE) {table}"))
    timings["vacuum_analyze_s"] = time.perf_counter() - started
    engine.dispose()
    return timings


def wanted_stamp(deals: int, seed: int) -> dict:
    return {"generator": "sales", "version": GENERATOR_VERSION, "deals": deals, "seed": seed,
            "now": NOW, "complete": True}


def ensure(deals: int = 1_000_000, seed: int = 42, server: str = generate.DEFAULT_SERVER,
           force: bool = False, quiet: bool = False) -> str:
    """Make sure ``trellis_bench_sales_<deals>`` holds exactly this data; return its URL."""
    url = bench_url(deals, server)
    name = sa.engine.make_url(url).database
    wanted = wanted_stamp(deals, seed)
    say = (lambda *a: None) if quiet else print
    if not force and generate.current_stamp(server, name) == wanted:
        started = time.perf_counter()
        generate._trellis_init(url)
        say(f"{name}: already holds {deals:,} deals (seed {seed}); schema upgraded "
            f"(trellis init, {time.perf_counter() - started:.1f} s)")
        return url
    started = time.perf_counter()
    say(f"{name}: creating the database and the Trellis schema (trellis init) ...")
    generate._recreate_database(server, name)
    generate._trellis_init(url)
    schema_s = time.perf_counter() - started
    say(f"{name}: inserting {deals:,} deals, history, {deals // 2:,} leads, "
        f"{deals // 2:,} orders ...")
    timings = _fill(url, deals, seed)
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"COMMENT ON DATABASE \"{name}\" IS "
                             + "'" + json.dumps(wanted).replace("'", "''") + "'"))
    admin.dispose()
    say(f"{name}: done in {time.perf_counter() - started:.1f} s (schema {schema_s:.1f} s, "
        + ", ".join(f"{k[:-2]} {v:.1f} s" for k, v in timings.items()) + ")")
    return url


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--server", default=generate.DEFAULT_SERVER,
                        help="URL of an existing database on the server (used to create ours)")
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = parser.parse_args(argv)
    print(ensure(args.deals, args.seed, args.server, args.force))


if __name__ == "__main__":
    main()

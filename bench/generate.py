"""Fill a PostgreSQL database with N contacts and 10,000 accounts for the benchmarks.

The schema is Trellis' own: the database is created empty and ``trellis init``
(the migrations, permissions and an admin user) builds it.  The rows are then
inserted set-based (``INSERT ... SELECT generate_series``), every value a pure
function of the row number and the seed (``hashint8extended``), so the same
arguments give the same data on every run.  Finally ``VACUUM (ANALYZE)``.

    .venv/bin/python bench/generate.py --contacts 1000000

The database is named ``trellis_bench_<contacts>`` unless ``--database`` says
otherwise; its comment records how it was generated, so a second run with the
same arguments only runs ``trellis init`` again (new migrations of the code,
permissions; the rows are kept); ``--force`` rebuilds it.  Only databases whose
name starts with ``trellis_bench`` are ever dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV_BIN = Path(sys.executable).parent
#: bump when the generated data changes, so old databases are rebuilt
GENERATOR_VERSION = 1
DEFAULT_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ADMIN_USER = "admin"
ADMIN_PASSWORD = "bench-admin-password"
ACCOUNTS = 10_000
INSTANCE = BENCH / "instance"  # ignored by git (``instance/``)

FIRST_NAMES = """
Ada Alan Alice Amir Ana Andrea Anna Ari Ava Ben Bianca Boris Carla Carlos Chen Chloe Chris
Clara Daniel David Dina Elena Eli Emma Eric Eva Farah Felix Fatima Gina Grace Hana Hugo Ian
Ines Ivan Jack Jana Javier Jin Joao John Julia Kai Karen Kenji Laura Lea Leo Liam Lina Luca
Lucy Maria Mark Marta Mei Mia Mike Nadia Nina Noah Nora Olga Omar Oscar Paul Petra Priya
Rafael Rosa Sam Sara Sofia Sven Tara Theo Tom Uma Vera Victor Wei Will Xin Yara Yusuf Zara
Zoe Aiko Bruno Dario Esra Femi Goran Hiro Ilse Juno
""".split()

LAST_NAMES = """
Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez
Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris
Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill
Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Chen Wang Li
Zhang Liu Yang Huang Zhao Wu Zhou Xu Sun Ma Zhu Hu Guo He Lin Gao Luo Muller Schmidt Schneider
Fischer Weber Meyer Wagner Becker Schulz Hoffmann Koch Richter Klein Wolf Schroder Neumann
Schwarz Zimmermann Braun Kruger Hofmann Hartmann Lange Schmitt Werner Krause Meier Lehmann
Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci Marino Greco Bruno Gallo Conti
DeLuca Costa Giordano Mancini Rizzo Lombardi Moretti Dubois Durand Leroy Moreau Simon Laurent
Michel Lefebvre Bertrand Roux Vincent Fournier Morel Girard Andre Mercier Dupont Lambert
Bonnet Francois Martinez Silva Santos Oliveira Souza Pereira Lima Carvalho Ferreira Almeida
Costa Gomes Ribeiro Alves Tanaka Suzuki Takahashi Watanabe Ito Yamamoto Nakamura Kobayashi
Kato Yoshida Kim Park Choi Jung Kang Cho Yoon Jang Lim Han Novak Horvat Kowalski Nowak
Wisniewski Wojcik Kaminski Lewandowski Ivanov Petrov Sidorov Smirnov Popov Jensen Nielsen
Hansen Pedersen Andersen Larsen Johansson Karlsson Nilsson Eriksson Larsson Olsen Virtanen
Korhonen Murphy Kelly Walsh OBrien Byrne Ryan Patel Shah Singh Kumar Gupta Sharma Khan Ali
Hussain Ahmed Okafor Mensah Diallo Traore Cohen Levi Mizrahi Yilmaz Kaya Demir Sahin
""".split()
LAST_NAMES = list(dict.fromkeys(LAST_NAMES))  # unique, in order

TITLES = [
    "CEO", "CTO", "CFO", "COO", "VP Sales", "VP Marketing", "Head of IT", "Engineer",
    "Senior Engineer", "Product Manager", "Account Executive", "Sales Manager", "Buyer",
    "Procurement Lead", "Office Manager", "Consultant", "Analyst", "Designer", "Director",
    "Founder",
]
COMPANY_WORDS = """
Acme Northwind Contoso Globex Initech Umbrella Stark Wayne Hooli Vandelay Soylent Tyrell
Cyberdyne Wonka Gringotts Oscorp Aperture BlackMesa Monarch Massive Dynamic Pied Piper
Nakatomi Prestige Virtucon Duff Sirius Zorg Ollivander Gekko Bluth Dunder Mifflin Sterling
Cooper Abstergo Encom Omni Yoyodyne Rekall Weyland Genco Tricell Kwik Halcyon Vehement
""".split()
COMPANY_SUFFIXES = ["Inc", "GmbH", "Ltd", "Labs", "Group", "Systems", "AG", "SA", "BV", "Co"]
INDUSTRIES = [
    "Software", "Manufacturing", "Retail", "Finance", "Healthcare", "Education", "Logistics",
    "Energy", "Media", "Telecom", "Construction", "Hospitality",
]
COUNTRIES = ["US", "DE", "GB", "FR", "NL", "ES", "IT", "SE", "PL", "CH", "AT", "BE", "DK",
             "IE", "PT", "CA", "AU", "JP", "BR", "IN"]


def bench_url(contacts: int, database: str | None = None, server: str = DEFAULT_SERVER) -> str:
    name = database or f"trellis_bench_{contacts}"
    return sa.engine.make_url(server).set(database=name).render_as_string(hide_password=False)


def trellis_env(url: str) -> dict[str, str]:
    """Environment for every Trellis process of the benchmark."""
    env = dict(os.environ)
    env.update({
        "TRELLIS_DATABASE_URL": url,
        "TRELLIS_INSTANCE_PATH": str(INSTANCE),
        "TRELLIS_LOG_LEVEL": "WARNING",
        # the bench logs in once per run; keep the limit out of its way
        "TRELLIS_LOGIN_RATE_LIMIT": "1000 per minute",
    })
    env.pop("TRELLIS_REDIS_URL", None)
    return env


def wanted_stamp(contacts: int, seed: int) -> dict:
    return {"generator": GENERATOR_VERSION, "contacts": contacts, "accounts": ACCOUNTS,
            "seed": seed, "complete": True}


def current_stamp(server: str, name: str) -> dict | None:
    admin = sa.create_engine(server)
    try:
        with admin.connect() as conn:
            row = conn.execute(sa.text(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                "WHERE datname = :n"), {"n": name}).first()
    finally:
        admin.dispose()
    if row is None:
        return None
    try:
        return json.loads(row[0] or "{}")
    except ValueError:
        return {}


def _recreate_database(server: str, name: str) -> None:
    if not name.startswith("trellis_bench"):
        raise SystemExit(f"refusing to drop {name!r}: only trellis_bench* databases are managed")
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


def _trellis_init(url: str) -> None:
    cmd = [str(VENV_BIN / "trellis"), "init", "--admin-username", ADMIN_USER,
           "--admin-password", ADMIN_PASSWORD]
    done = subprocess.run(cmd, env=trellis_env(url), cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"trellis init failed ({done.returncode})")


def _h(column_salt: int) -> str:
    """SQL for a non-negative pseudo-random bigint of row ``g``, per column."""
    return f"(hashint8extended(g, :seed + {column_salt}) & 9223372036854775807)"


ACCOUNTS_SQL = f"""
INSERT INTO trellis_account (id, name, domain, industry, phone, country, owner_id,
                             created_on, updated_on)
SELECT g,
       w.word || ' ' || s.suffix || ' ' || lpad(g::text, 5, '0'),
       lower(w.word) || g || '.example.com',
       CASE WHEN {_h(3)} % 10 = 0 THEN NULL
            ELSE (CAST(:industries AS text[]))[1 + {_h(4)} % :n_industries] END,
       '+1-555-' || lpad(({_h(5)} % 10000000)::text, 7, '0'),
       (CAST(:countries AS text[]))[1 + {_h(6)} % :n_countries],
       CASE WHEN {_h(7)} % 4 = 0 THEN NULL ELSE :owner END,
       ts, ts + ({_h(8)} % 1000) * interval '1 hour'
FROM generate_series(1, :accounts) AS g
CROSS JOIN LATERAL (SELECT (CAST(:words AS text[]))[1 + {_h(1)} % :n_words] AS word) w
CROSS JOIN LATERAL (SELECT (CAST(:suffixes AS text[]))[1 + {_h(2)} % :n_suffixes] AS suffix) s
CROSS JOIN LATERAL (SELECT timestamptz '2019-01-01 00:00:00+00'
                           + g * interval '37 minutes' AS ts) t
"""

CONTACTS_SQL = f"""
INSERT INTO trellis_contact (id, first_name, last_name, email, phone, title, account_id,
                             owner_id, created_on, updated_on)
SELECT g, f.first, l.last,
       CASE WHEN {_h(13)} % 20 = 0 THEN NULL
            ELSE lower(f.first || '.' || l.last || '.' || g) || '@'
                 || CASE WHEN a.acc IS NULL THEN 'mail.example.org'
                         ELSE 'acc' || a.acc || '.example.com' END END,
       CASE WHEN {_h(14)} % 5 = 0 THEN NULL
            ELSE '+1-555-' || lpad(({_h(15)} % 10000000)::text, 7, '0') END,
       CASE WHEN {_h(16)} % 3 = 0 THEN NULL
            ELSE (CAST(:titles AS text[]))[1 + {_h(17)} % :n_titles] END,
       a.acc,
       CASE WHEN {_h(18)} % 4 = 0 THEN NULL ELSE :owner END,
       ts, ts + ({_h(19)} % 1000) * interval '1 hour'
FROM generate_series(1, :contacts) AS g
CROSS JOIN LATERAL (SELECT (CAST(:first_names AS text[]))[1 + {_h(10)} % :n_first] AS first) f
CROSS JOIN LATERAL (SELECT (CAST(:last_names AS text[]))[1 + {_h(11)} % :n_last] AS last) l
CROSS JOIN LATERAL (SELECT CASE WHEN {_h(12)} % 10 = 0 THEN NULL
                                ELSE 1 + ({_h(12)} / 10) % :accounts END AS acc) a
CROSS JOIN LATERAL (SELECT timestamptz '2020-01-01 00:00:00+00'
                           + g * interval '1 minute' AS ts) t
"""


def _fill(url: str, contacts: int, seed: int) -> dict[str, float]:
    timings: dict[str, float] = {}
    engine = sa.create_engine(url)
    params = {
        "seed": seed, "accounts": ACCOUNTS, "contacts": contacts,
        "words": COMPANY_WORDS, "n_words": len(COMPANY_WORDS),
        "suffixes": COMPANY_SUFFIXES, "n_suffixes": len(COMPANY_SUFFIXES),
        "industries": INDUSTRIES, "n_industries": len(INDUSTRIES),
        "countries": COUNTRIES, "n_countries": len(COUNTRIES),
        "titles": TITLES, "n_titles": len(TITLES),
        "first_names": FIRST_NAMES, "n_first": len(FIRST_NAMES),
        "last_names": LAST_NAMES, "n_last": len(LAST_NAMES),
    }
    with engine.begin() as conn:
        params["owner"] = conn.execute(
            sa.text("SELECT id FROM ab_user WHERE username = :u"), {"u": ADMIN_USER}).scalar_one()
        # Secondary indexes are dropped for the load and rebuilt from their own
        # definitions (as the migrations made them), which is much faster.
        indexes = conn.execute(sa.text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
            "AND tablename IN ('trellis_contact', 'trellis_account') "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)")).all()
        for name, _ in indexes:
            conn.execute(sa.text(f'DROP INDEX "{name}"'))
        started = time.perf_counter()
        conn.execute(sa.text(ACCOUNTS_SQL), params)
        conn.execute(sa.text(CONTACTS_SQL), params)
        timings["insert_s"] = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute(sa.text("SET LOCAL maintenance_work_mem = '512MB'"))
        for _, definition in indexes:
            conn.execute(sa.text(definition))
        timings["indexes_s"] = time.perf_counter() - started
        for table in ("trellis_account", "trellis_contact"):
            conn.execute(sa.text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"))
    started = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM (ANALYZE) trellis_account"))
        conn.execute(sa.text("VACUUM (ANALYZE) trellis_contact"))
    timings["vacuum_analyze_s"] = time.perf_counter() - started
    engine.dispose()
    return timings


def ensure(contacts: int = 1_000_000, seed: int = 42, database: str | None = None,
           server: str = DEFAULT_SERVER, force: bool = False, quiet: bool = False) -> str:
    """Make sure the benchmark database holds exactly this data; return its URL."""
    url = bench_url(contacts, database, server)
    name = sa.engine.make_url(url).database
    wanted = wanted_stamp(contacts, seed)
    if not force and current_stamp(server, name) == wanted:
        # The data is there; bring the schema and permissions up to the code's
        # (new core or plugin migrations), as an operator would after upgrading.
        started = time.perf_counter()
        _trellis_init(url)
        if not quiet:
            print(f"{name}: already holds {contacts:,} contacts (seed {seed}); schema upgraded "
                  f"to the code's migrations (trellis init, {time.perf_counter() - started:.1f} s)")
        return url
    say = (lambda *a: None) if quiet else print
    started = time.perf_counter()
    say(f"{name}: creating the database and the Trellis schema (trellis init) ...")
    _recreate_database(server, name)
    _trellis_init(url)
    schema_s = time.perf_counter() - started
    say(f"{name}: inserting {ACCOUNTS:,} accounts and {contacts:,} contacts ...")
    timings = _fill(url, contacts, seed)
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
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--database", help="default: trellis_bench_<contacts>")
    parser.add_argument("--server", default=DEFAULT_SERVER,
                        help="URL of an existing database on the server (used to create ours)")
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = parser.parse_args(argv)
    url = ensure(args.contacts, args.seed, args.database, args.server, args.force)
    print(url)


if __name__ == "__main__":
    main()

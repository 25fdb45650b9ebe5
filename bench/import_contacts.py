"""Benchmark the contact import against a raw bulk insert of the same rows.

    .venv/bin/python bench/import_contacts.py --rows 1000000

1. creates the database ``trellis_bench_import_<rows>`` afresh and gets the
   schema from Trellis itself (``trellis init``, the core and the integrations
   plugin);
2. writes a CSV of ``--rows`` contacts (first name, last name, e-mail, phone,
   title), every value a function of the row number, so every run imports the
   same file;
3. **baselines**, each into an empty ``trellis_contact``: PostgreSQL's
   ``COPY … FROM STDIN`` of the already-parsed rows, and SQLAlchemy Core
   ``executemany`` of a multi-row ``INSERT`` in batches of 2,000 (what the
   importer's write step is, without the rest);
4. **Trellis**: the same file through ``trellis_integrations.importer`` exactly
   as the ``integrations.run_import`` job runs it: read the CSV, map the
   columns, normalise (e-mail lower-cased, phone to E.164), validate every row
   with the contact's marshmallow schema, match by e-mail against the table
   (one ``lower(email) IN (…)`` per batch), insert the new rows set-based and
   journal them (revert), progress in the import row — into the empty table
   (every row new);
5. **Trellis again**: the same file a second time (every row matches a
   contact by e-mail and is unchanged: what "import it twice" costs);
6. prints rows/s of each and the ratio to ``COPY``, and writes
   ``bench/results/<UTC timestamp>-import.json``.

Only databases named ``trellis_bench*`` are ever dropped.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
TRELLIS = str(Path(sys.executable).parent / "trellis")
SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret",
         "Dennis", "Radia", "Tim", "Hedy", "Claude", "Katherine", "John"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson",
        "Hamilton", "Ritchie", "Perlman", "Berners-Lee", "Lamarr", "Shannon", "Johnson", "Chen"]
TITLES = ["CEO", "CTO", "Buyer", "Engineer", "", "Head of Sales", ""]
COLUMNS = ["first_name", "last_name", "email", "phone", "title"]


def rows(n: int) -> list[list[str]]:
    """The file's rows: deterministic, every e-mail distinct (but in mixed case)."""
    out = []
    for i in range(n):
        first, last = FIRST[i % len(FIRST)], LAST[(i // 7) % len(LAST)]
        email = f"{first}.{last}.{i}@Example{i % 97}.com"  # lower-cased by the import
        phone = f"+1 202 555 {i % 10000:04d}" if i % 3 else ""
        out.append([first, last, email, phone, TITLES[i % len(TITLES)]])
    return out


def make_csv(data: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["First name", "Last name", "E-mail", "Phone", "Title"])
    writer.writerows(data)
    return buffer.getvalue().encode()


def fresh_database(name: str) -> str:
    assert name.startswith("trellis_bench"), name
    admin = sa.create_engine(SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = sa.engine.make_url(SERVER).set(database=name).render_as_string(hide_password=False)
    env = {**os.environ, "TRELLIS_DATABASE_URL": url, "TRELLIS_PLUGINS": "integrations",
           "TRELLIS_INSTANCE_PATH": str(RESULTS / "instance"), "TRELLIS_LOG_LEVEL": "WARNING"}
    subprocess.run([TRELLIS, "init", "--admin-password", "bench-password"], env=env,
                   check=True, capture_output=True)
    return url


def empty_contacts(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE trellis_contact RESTART IDENTITY CASCADE"))
        conn.execute(sa.text("TRUNCATE integrations_import CASCADE"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE trellis_contact"))


def count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM trellis_contact")).scalar_one()


def baseline_copy(engine: sa.Engine, data: list[list[str]]) -> float:
    """COPY of the rows as they are (no validation, no matching, no journal)."""
    now = datetime.now(timezone.utc)
    started = time.perf_counter()
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            with cursor.copy("COPY trellis_contact (first_name, last_name, email, phone, "
                             "title, created_on, updated_on) FROM STDIN") as copy:
                for first, last, email, phone, title in data:
                    copy.write_row((first, last, email.lower(), phone or None, title or None,
                                    now, now))
        raw.commit()
    finally:
        raw.close()
    return time.perf_counter() - started


def baseline_executemany(engine: sa.Engine, data: list[list[str]]) -> float:
    """Multi-row INSERTs of 2,000 rows through SQLAlchemy Core (the write step alone)."""
    from trellis.models import Contact

    now = datetime.now(timezone.utc)
    table = Contact.__table__
    started = time.perf_counter()
    with engine.begin() as conn:
        for start in range(0, len(data), 2000):
            conn.execute(sa.insert(table), [
                {"first_name": f, "last_name": la, "email": e.lower(), "phone": p or None,
                 "title": t or None, "created_on": now, "updated_on": now}
                for f, la, e, p, t in data[start:start + 2000]])
    return time.perf_counter() - started


def trellis_import(url: str, payload: bytes) -> tuple[float, dict]:
    os.environ.update({"TRELLIS_DATABASE_URL": url, "TRELLIS_PLUGINS": "integrations",
                       "TRELLIS_INSTANCE_PATH": str(RESULTS / "instance"),
                       "TRELLIS_LOG_LEVEL": "WARNING"})
    from trellis.app import create_app
    from trellis.context import acting_as
    from trellis.db import db
    from trellis_integrations import importer

    app = create_app()
    with app.app_context(), acting_as(None, None, "cli"):
        run = importer.create_run(
            model="contact", data=payload, filename="contacts.csv",
            mapping={"First name": "first_name", "Last name": "last_name", "E-mail": "email",
                     "Phone": "phone", "Title": "title"}, match_on="email",
            on_match="update", mode="skip_bad")
        db.session.commit()
        started = time.perf_counter()
        result = importer.execute_run(run.id, batch_size=2000)
        elapsed = time.perf_counter() - started
        db.session.remove()
        db.engine.dispose()
    return elapsed, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = f"trellis_bench_import_{args.rows}"
    print(f"database {name}: trellis init …", flush=True)
    url = fresh_database(name)
    engine = sa.create_engine(url)
    data = rows(args.rows)
    payload = make_csv(data)
    print(f"{args.rows:,} rows, CSV {len(payload) / 1e6:.1f} MB", flush=True)

    figures: dict[str, dict] = {}

    def record(label: str, seconds: float, extra: dict | None = None) -> None:
        figures[label] = {"seconds": round(seconds, 2),
                          "rows_per_s": round(args.rows / seconds), **(extra or {})}
        print(f"  {label:<42} {seconds:8.1f} s {args.rows / seconds:>10,.0f} rows/s", flush=True)

    empty_contacts(engine)
    record("baseline: COPY", baseline_copy(engine, data))
    assert count(engine) == args.rows
    empty_contacts(engine)
    record("baseline: executemany INSERT (2,000/stmt)", baseline_executemany(engine, data))
    assert count(engine) == args.rows
    empty_contacts(engine)
    seconds, result = trellis_import(url, payload)
    assert result["created"] == args.rows and result["errors"] == 0, result
    record("Trellis import (all new)", seconds, result)
    seconds, result = trellis_import(url, payload)
    assert result["created"] == 0 and result["unchanged"] == args.rows, result
    record("Trellis import again (all matched)", seconds, result)
    assert count(engine) == args.rows

    copy_rate = figures["baseline: COPY"]["rows_per_s"]
    print("\nratio to COPY (rows/s of COPY ÷ rows/s):")
    for label, figure in figures.items():
        figure["slower_than_copy"] = round(copy_rate / figure["rows_per_s"], 2)
        print(f"  {label:<42} {figure['slower_than_copy']:6.2f}×")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"{stamp}-import.json"
    out.write_text(json.dumps({"rows": args.rows, "database": name, "figures": figures},
                              indent=2))
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()

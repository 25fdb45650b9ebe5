"""Where does a Trellis contact-API request spend its time?

    .venv/bin/python bench/profile_api.py --contacts 1000000 [--case first_page] [--py-spy]

In one process, on the benchmark database (generate.py), with Flask's test
client (no HTTP, no gunicorn):

1. every case of api_list.py, Trellis and the baseline: wall ms per request,
   and the SQL each Trellis request sends (statements, DB round-trip time, by kind);
2. cProfile of one case (``--case``): milliseconds per request in the parts
   of the stack (rison schema check, public-permission check, JWT, permission
   check, count, page query, serialisation, JSON);
3. ablations: the same case with candidate fixes patched into this process
   only (no file is changed), each measured without the profiler;
4. with ``--py-spy``: py-spy samples the gunicorn workers while loadgen.py
   drives the case over HTTP, and the samples are grouped the same way.

Writes ``bench/results/<timestamp>-profile.json`` and prints the findings.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import api_list  # noqa: E402
import generate  # noqa: E402

#: (part, pattern on a profiled function "file:line(name)" or a py-spy frame)
PARTS = [
    ("rison schema check (jsonschema)", r"jsonschema"),
    ("public-permission check", r"is_item_public"),
    ("record rules (owner scope)", r"trellis/rules\.py"),
    ("JWT verify + user load", r"verify_jwt_in_request"),
    ("permission check (roles, EXISTS)", r"_has_view_access"),
    ("API-key header check", r"extract_api_key_from_request"),
    ("count query", r"query_count"),
    ("page query + ORM load", r"interface\.py.*\bquery\b|\bquery \(.*interface\.py"),
    ("get one: ORM load", r"interface\.py.*\bget\b|\bget \(.*interface\.py"),
    ("serialisation (marshmallow)", r"marshmallow"),
    ("response metadata (labels, columns)", r"set_response_key_mappings"),
    ("JSON response", r"\bresponse\b.*flask_appbuilder/api|flask_appbuilder/api.*\bresponse\b"),
]


# ------------------------------------------------------------------ SQL


class SqlLog:
    """Statements and their round-trip time, by kind, while ``active``."""

    def __init__(self, engine) -> None:
        from sqlalchemy import event

        self.active = False
        self.rows: list[tuple[str, float]] = []

        @event.listens_for(engine, "before_cursor_execute")
        def before(conn, cursor, statement, params, context, executemany):
            conn.info["bench_t0"] = time.perf_counter()

        @event.listens_for(engine, "after_cursor_execute")
        def after(conn, cursor, statement, params, context, executemany):
            if self.active:
                self.rows.append((self.kind(statement),
                                  time.perf_counter() - conn.info.pop("bench_t0")))

    @staticmethod
    def kind(statement: str) -> str:
        s = " ".join(statement.split())
        if s.startswith("SELECT ab_permission_view_role.role_id"):
            return "role grants (cache refresh)"
        if "ab_role.name = " in s:
            return "Public role lookup"
        if "ab_permission_view_role" in s and "EXISTS" not in s:
            return "Public role permissions"
        if s.startswith("SELECT ab_user."):
            return "JWT user load"
        if "FROM ab_role, ab_user_role" in s:
            return "user roles (lazy load)"
        if "FROM ab_group, ab_user_group" in s:
            return "user groups (lazy load)"
        if "EXISTS" in s and "ab_permission_view" in s:
            return "permission EXISTS"
        if s.startswith("SELECT count(*)"):
            return "count (capped)"
        if "trellis_contact" in s:
            return "page / record"
        if "trellis_plugin" in s:
            return "plugin state (TTL)"
        return "other: " + s[:60]


# ------------------------------------------------------------------ helpers


def timed(client, paths: list[str], headers: dict, n: int, warm: int = 10) -> float:
    """Wall milliseconds per request (test client), after ``warm`` unmeasured ones."""
    for i in range(warm):
        response = client.get(paths[i % len(paths)], headers=headers)
        assert response.status_code == 200, (response.status_code, response.data[:300])
    started = time.perf_counter()
    for i in range(n):
        client.get(paths[i % len(paths)], headers=headers)
    return (time.perf_counter() - started) * 1000 / n


def profile_parts(stats: pstats.Stats, n: int) -> tuple[float, list[tuple[str, float]]]:
    """Cumulative ms per request of the outermost function matching each part."""
    total = 0.0
    parts = []
    raw = stats.stats  # type: ignore[attr-defined]
    for (file, line, name), (_cc, _nc, _tt, ct, _callers) in raw.items():
        if name == "wsgi_app" and file.endswith("flask/app.py"):
            total = ct * 1000 / n
    for label, pattern in PARTS:
        regex = re.compile(pattern)
        matches = {key: value for key, value in raw.items()
                   if regex.search(f"{key[0]}:{key[1]}({key[2]})")}
        # outermost: matching functions not called by another matching function
        outer = [value[3] for key, value in matches.items()
                 if not any(caller in matches for caller in value[4])]
        parts.append((label, sum(outer) * 1000 / n))
    return total, parts


# ------------------------------------------------------------------ ablations


def ablations(app, client, paths, auth, n, rounds: int = 7) -> list[tuple[str, float]]:
    """Candidate fixes (candidate_fixes.py), applied cumulatively to this process only,
    and separately the cost of ordering by id.

    Each level is measured ``rounds`` times, interleaved, with ``n // rounds``
    requests; the median is reported.
    """
    import statistics

    from candidate_fixes import COST, EXTRA, FIXES

    cumulative = [*FIXES, *EXTRA]
    levels = [("as shipped", [])]
    levels += [(label, [patch for _, patch in cumulative[:i + 1]])
               for i, (label, _) in enumerate(cumulative)]
    levels.append((COST[0], [COST[1]]))
    samples: dict[str, list[float]] = {label: [] for label, _ in levels}
    timed(client, paths, auth, 10)
    for _ in range(rounds):
        for label, patches in levels:
            reverts = [patch(app) for patch in patches]
            try:
                samples[label].append(timed(client, paths, auth, max(n // rounds, 1), warm=3))
            finally:
                for revert in reversed(reverts):
                    revert()
    return [(label, statistics.median(samples[label])) for label, _ in levels]


# ------------------------------------------------------------------ SQL alone


def sql_alone(url: str, contacts: int, repeat: int = 15) -> dict:
    """Median ms of the statements behind the cases, and of alternatives, run directly."""
    import statistics

    import sqlalchemy as sa

    cols = "id, first_name, last_name, email, phone, title, account_id, owner_id"
    everything = cols + ", created_on, updated_on"
    offset = max(contacts // 2 // 25, 1) * 25
    statements = {
        "count capped, FAB form (all columns, LIMIT 10001)":
            f"SELECT count(*) FROM (SELECT {everything} FROM trellis_contact LIMIT 10001) s",
        "count capped, SELECT 1 form":
            "SELECT count(*) FROM (SELECT 1 FROM trellis_contact LIMIT 10001) s",
        "count capped, last_name = 'Chen'":
            "SELECT count(*) FROM (SELECT 1 FROM trellis_contact "
            "WHERE last_name = 'Chen' LIMIT 10001) s",
        "planner estimate (pg_class.reltuples)":
            "SELECT reltuples::bigint FROM pg_class WHERE oid = 'trellis_contact'::regclass",
        "page 0, no ORDER BY": f"SELECT {cols} FROM trellis_contact LIMIT 25",
        "page 0, ORDER BY id": f"SELECT {cols} FROM trellis_contact ORDER BY id LIMIT 25",
        f"OFFSET {offset:,}, no ORDER BY":
            f"SELECT {cols} FROM trellis_contact LIMIT 25 OFFSET {offset}",
        f"OFFSET {offset:,}, ORDER BY id":
            f"SELECT {cols} FROM trellis_contact ORDER BY id LIMIT 25 OFFSET {offset}",
        "keyset: WHERE id > :last ORDER BY id":
            f"SELECT {cols} FROM trellis_contact WHERE id > {offset} ORDER BY id LIMIT 25",
        "get one by id": f"SELECT {cols} FROM trellis_contact WHERE id = 123456",
    }
    engine = sa.create_engine(url)
    out: dict = {"median_ms": {}}
    with engine.connect() as conn:
        for label, statement in statements.items():
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                conn.execute(sa.text(statement)).all()
                times.append((time.perf_counter() - started) * 1000)
            out["median_ms"][label] = round(statistics.median(times), 3)
        # Unordered pages depend on where PostgreSQL's synchronized sequential scans
        # left off: a late-page query moves page 0.
        first = "SELECT id FROM trellis_contact LIMIT 3"
        out["unordered_page0_ids_before"] = [r[0] for r in conn.execute(sa.text(first))]
        conn.execute(sa.text(statements[f"OFFSET {offset:,}, no ORDER BY"])).all()
        out["unordered_page0_ids_after_late_page"] = [r[0] for r in conn.execute(sa.text(first))]
        out["synchronize_seqscans"] = conn.execute(sa.text("SHOW synchronize_seqscans")).scalar()
    engine.dispose()
    return out


# ------------------------------------------------------------------ py-spy


def py_spy(url: str, case: dict, port: int, args) -> dict:
    """Sample the live gunicorn workers under load; group samples like PARTS."""
    log_dir = Path(tempfile.mkdtemp(prefix="bench-pyspy-"))
    ns = argparse.Namespace(workers=args.workers, worker_class="sync", threads=1,
                            concurrency=args.concurrency, warmup=3, duration=args.spy_seconds)
    server = api_list.Server("trellis", "trellis.app:create_app()", port,
                             generate.trellis_env(url), ns, ROOT, log_dir)
    raw = log_dir / "pyspy.txt"
    try:
        server.wait_ready()
        auth = api_list.login(server.port)
        loader = subprocess.Popen(
            [sys.executable, str(BENCH / "loadgen.py")], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True)
        loader.stdin.write(json.dumps({"port": server.port, "paths": case["paths"],
                                       "headers": auth, "concurrency": args.concurrency,
                                       "warmup": 3, "duration": args.spy_seconds}))
        loader.stdin.close()
        time.sleep(3)
        subprocess.run([str(generate.VENV_BIN / "py-spy"), "record", "--pid",
                        str(server.proc.pid), "--subprocesses", "--nonblocking", "--rate", "100",
                        "--duration", str(int(args.spy_seconds) - 1), "--format", "raw",
                        "--output", str(raw)], check=True, capture_output=True,
                       timeout=args.spy_seconds + 60)
        load_summary = json.loads(loader.stdout.read())
        loader.wait(timeout=60)
    finally:
        server.stop()
    samples: Counter = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or "gunicorn" in stack and "handle_request" not in stack:
            continue  # the master, or a worker idle in accept/select
        n = int(count)
        total += n
        for label, pattern in PARTS:
            if re.search(pattern, stack.replace(";", "\n"), re.MULTILINE):
                samples[label] += n
                break
        else:
            samples["Flask/Werkzeug/gunicorn/other"] += n
    return {"busy_samples": total, "load": load_summary,
            "share": {k: round(v * 100 / total, 1) for k, v in samples.most_common()}}


# ------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--case", default="first_page", choices=api_list.CASE_NAMES)
    parser.add_argument("--requests", type=int, default=200,
                        help="per measurement of the profiled case")
    parser.add_argument("--overview-requests", type=int, default=100,
                        help="per case and app in the in-process overview")
    parser.add_argument("--py-spy", action="store_true")
    parser.add_argument("--spy-seconds", type=float, default=15)
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)

    url = generate.ensure(args.contacts, args.seed)
    os.environ.update(generate.trellis_env(url))
    from baseline_app import create_app as create_baseline
    from trellis.app import create_app
    from trellis.db import db

    app = create_app()
    client = app.test_client()
    with app.app_context():
        sql = SqlLog(db.engine)
    base_client = create_baseline(url).test_client()
    auth = {"Authorization": "Bearer " + client.post("/api/v1/security/login", json={
        "username": generate.ADMIN_USER, "password": generate.ADMIN_PASSWORD,
        "provider": "db"}).get_json()["access_token"]}
    cases = api_list.build_cases(args.contacts, args.seed)
    n = args.requests
    report: dict = {"contacts": args.contacts, "requests_per_measurement": n,
                    "overview_requests": args.overview_requests,
                    "code": api_list.code_version(), "cases": {}}

    code = report["code"]
    print(f"Code: {code['commit'][:10]}{' + uncommitted changes' if code['dirty'] else ''}")
    m = args.overview_requests
    print(f"In-process (test client), {m} requests each, ms per request:")
    print(f"  {'case':<16} {'Trellis':>8} {'baseline':>8} {'T/B':>5}   SQL per Trellis request")
    for name, case in cases.items():
        trellis_ms = timed(client, case["paths"], auth, m)
        base_ms = timed(base_client, case["paths"], {}, m)
        sql.rows.clear()
        sql.active = True
        timed(client, case["paths"], auth, m, warm=0)
        sql.active = False
        kinds: dict[str, list[float]] = defaultdict(list)
        for kind, seconds in sql.rows:
            kinds[kind].append(seconds)
        per_kind = {k: {"statements": round(len(v) / m, 2),
                        "ms": round(sum(v) * 1000 / m, 3)} for k, v in kinds.items()}
        statements = sum(len(v) for v in kinds.values()) / m
        db_ms = sum(sum(v) for v in kinds.values()) * 1000 / m
        report["cases"][name] = {"trellis_ms": round(trellis_ms, 2),
                                 "baseline_ms": round(base_ms, 2),
                                 "sql_statements": round(statements, 2),
                                 "sql_ms": round(db_ms, 2), "sql": per_kind}
        print(f"  {name:<16} {trellis_ms:8.2f} {base_ms:8.2f} {trellis_ms / base_ms:5.1f}   "
              f"{statements:.1f} statements, {db_ms:.2f} ms in the database")
    print("\nSQL of one Trellis request, by kind (statements, ms), case "
          f"{args.case}:")
    for kind, v in sorted(report["cases"][args.case]["sql"].items(), key=lambda kv: -kv[1]["ms"]):
        print(f"  {kind:<28} {v['statements']:5.2f}  {v['ms']:7.3f} ms")

    case = cases[args.case]
    timed(client, case["paths"], auth, 20)
    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(n):
        client.get(case["paths"][i % len(case["paths"])], headers=auth)
    profiler.disable()
    stats = pstats.Stats(profiler)
    stats_path = api_list.RESULTS / (datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
                                     + f"-{args.case}.pstats")
    api_list.RESULTS.mkdir(exist_ok=True)
    stats.dump_stats(stats_path)
    total, parts = profile_parts(stats, n)
    report["cprofile"] = {"case": args.case, "total_ms": round(total, 2),
                          "parts_ms": {k: round(v, 2) for k, v in parts},
                          "pstats": str(stats_path.relative_to(ROOT))}
    print(f"\ncProfile of {args.case} ({n} requests; profiler overhead inflates Python "
          f"time): {total:.2f} ms per request in Flask's wsgi_app, of which")
    for label, ms in parts:
        if ms >= 0.01:
            print(f"  {label:<38} {ms:7.2f} ms  {ms * 100 / total:5.1f} %")

    print(f"\nAblations on {args.case} (this process only; cumulative), ms per request:")
    report["ablations"] = {}
    rows = ablations(app, client, case["paths"], auth, n)
    for label, ms in rows:
        report["ablations"][label] = round(ms, 2)
        print(f"  {label:<46} {ms:7.2f}")
    print(f"  {'baseline (bare Flask + Core)':<46} {report['cases'][args.case]['baseline_ms']:7.2f}")

    alone = sql_alone(url, args.contacts)
    report["sql_alone"] = alone
    print("\nThe SQL alone (median of 15, one connection), ms:")
    for label, ms in alone["median_ms"].items():
        print(f"  {label:<52} {ms:8.3f}")
    print(f"  unordered page 0 ids: {alone['unordered_page0_ids_before']} before, "
          f"{alone['unordered_page0_ids_after_late_page']} after one late-page query "
          f"(synchronize_seqscans = {alone['synchronize_seqscans']})")

    if args.py_spy:
        print(f"\npy-spy on {args.workers} gunicorn workers, {args.case}, "
              f"{args.spy_seconds:g} s at concurrency {args.concurrency} ...")
        spy = py_spy(url, case, 8311, args)
        report["py_spy"] = spy
        print(f"  {spy['busy_samples']} busy samples while serving "
              f"{spy['load']['req_per_s']} req/s; share of busy time:")
        for label, share in spy["share"].items():
            print(f"  {label:<38} {share:5.1f} %")

    out = api_list.RESULTS / (datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
                              + "-profile.json")
    out.write_text(json.dumps(report, indent=2))
    print(f"\nprofile: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

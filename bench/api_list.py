"""Benchmark Trellis' generated contact REST API against a bare Flask baseline.

    .venv/bin/python bench/api_list.py --contacts 1000000

1. makes sure ``trellis_bench_<contacts>`` holds the generated data (generate.py);
2. starts two gunicorn servers on 127.0.0.1 with the same worker count:
   Trellis (``trellis.app:create_app()``) and the baseline (baseline_app.py);
3. logs in to Trellis (``POST /api/v1/security/login``, provider db) for a JWT;
4. checks that both answer every case with the same rows;
5. drives each case against each server with loadgen.py (a separate process,
   ``--concurrency`` connections, ``--warmup`` then ``--duration`` seconds);
6. writes ``bench/results/<UTC timestamp>.json`` and prints a table;
7. stops both servers (also on Ctrl-C or an error).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
sys.path.insert(0, str(BENCH))

import generate  # noqa: E402

HOST = "127.0.0.1"
LIST = "/api/v1/contact/"
CASE_NAMES = ["first_page", "filtered_page", "late_page", "late_page_by_id", "get_one"]
DEFAULT_CASES = CASE_NAMES


def build_cases(contacts: int, seed: int) -> dict[str, dict]:
    late = max(contacts // 2 // 25, 1)  # page 20000 for 1,000,000 contacts
    rng = random.Random(seed)
    ids = [rng.randint(1, contacts) for _ in range(1000)]
    return {
        "first_page": {"paths": [LIST + "?q=(page:0,page_size:25)"],
                       "about": "page 0, 25 rows, no filter, no order"},
        "filtered_page": {
            "paths": [LIST + "?q=(filters:!((col:last_name,opr:eq,value:Chen)),"
                      "page:0,page_size:25)"],
            "about": "last_name = Chen (index on last_name, first_name), page 0"},
        "late_page": {"paths": [LIST + f"?q=(page:{late},page_size:25)"],
                      "about": f"page {late} (OFFSET {late * 25:,}), no order"},
        "late_page_by_id": {
            "paths": [LIST + f"?q=(order_column:id,order_direction:asc,page:{late},"
                      "page_size:25)"],
            "about": f"page {late} ordered by id (the primary-key index)"},
        "get_one": {"paths": [f"{LIST}{i}" for i in ids],
                    "about": "GET /api/v1/contact/<id>, 1,000 seeded random ids"},
    }


# ------------------------------------------------------------------ processes


class Server:
    """One gunicorn master in its own session, stopped by its own pid."""

    def __init__(self, name: str, app: str, port: int, env: dict[str, str], args,
                 chdir: Path, log_dir: Path) -> None:
        self.name, self.port = name, port
        self.ready_dir = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
        self.log_path = log_dir / f"{name}.log"
        env = {**env, "BENCH_READY_DIR": str(self.ready_dir)}
        self.workers = args.workers
        cmd = [str(generate.VENV_BIN / "gunicorn"), "-c", str(BENCH / "gunicorn_conf.py"),
               "--workers", str(args.workers), "--worker-class", args.worker_class,
               "--threads", str(args.threads), "--bind", f"{HOST}:{port}",
               "--chdir", str(chdir), "--log-level", "warning", "--timeout", "120", app]
        self.command = cmd
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}); see "
                                   f"{self.log_path}:\n{self.log_path.read_text()[-3000:]}")
            if len(list(self.ready_dir.iterdir())) >= self.workers:
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name}: workers not ready after {timeout:.0f} s")

    def pids(self) -> list[int]:
        """The master and its workers."""
        found = [self.proc.pid]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid:
                found.append(int(stat.parent.name))
        return found

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # gunicorn: graceful stop of all workers
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own session only
                self.proc.wait(timeout=10)
        self.log.close()
        for f in self.ready_dir.iterdir():
            f.unlink()
        self.ready_dir.rmdir()


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / TICK


def machine_busy_seconds() -> float:
    """CPU seconds all processors spent busy so far (/proc/stat, all processes)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / TICK


def postgres_pids() -> list[int]:
    found = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "postgres":
                found.append(int(comm.parent.name))
        except OSError:
            continue
    return found


# ------------------------------------------------------------------ HTTP


def http_request(port: int, method: str, path: str, headers: dict | None = None,
                 body: dict | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        hdrs = {"Accept": "application/json", **(headers or {})}
        if payload is not None:
            hdrs["Content-Type"] = "application/json"
        conn.request(method, path, body=payload, headers=hdrs)
        response = conn.getresponse()
        data = response.read()
        try:
            return response.status, json.loads(data or b"{}")
        except ValueError:
            return response.status, {"raw": data[:200].decode("utf-8", "replace")}
    finally:
        conn.close()


def login(port: int) -> dict[str, str]:
    status, data = http_request(port, "POST", "/api/v1/security/login", body={
        "username": generate.ADMIN_USER, "password": generate.ADMIN_PASSWORD,
        "provider": "db"})
    if status != 200:
        raise RuntimeError(f"login failed: {status} {data}")
    return {"Authorization": f"Bearer {data['access_token']}"}


def compare(case: dict, trellis_port: int, baseline_port: int, auth: dict) -> dict:
    """Do both servers answer the case's first paths with the same rows?"""
    checked, same, notes = 0, True, []
    t, rows = {}, None
    for path in case["paths"][:20]:
        t_status, t = http_request(trellis_port, "GET", path, auth)
        b_status, b = http_request(baseline_port, "GET", path)
        checked += 1
        if t_status != 200 or b_status != 200:
            same = False
            notes.append(f"{path}: status trellis {t_status}, baseline {b_status}")
            continue
        for key in ("result", "count", "count_capped", "ids"):
            if key in b and t.get(key) != b.get(key):
                same = False
                notes.append(f"{path}: '{key}' differs")
        rows = t.get("result")
    return {"paths_checked": checked, "same_rows": same, "notes": notes[:10],
            "rows": len(rows) if isinstance(rows, list) else (1 if rows else 0),
            "count": t.get("count"), "count_capped": t.get("count_capped")}


def load(port: int, paths: list[str], headers: dict, args) -> dict:
    job = {"port": port, "paths": paths, "headers": headers, "concurrency": args.concurrency,
           "warmup": args.warmup, "duration": args.duration}
    done = subprocess.run([sys.executable, str(BENCH / "loadgen.py")], input=json.dumps(job),
                          capture_output=True, text=True,
                          timeout=args.warmup + args.duration + 120)
    if done.returncode:
        raise RuntimeError(f"loadgen failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def measure(server: Server, paths: list[str], headers: dict, args) -> dict:
    pg = postgres_pids()
    server_pids = server.pids()
    server_cpu, pg_cpu = cpu_seconds(server_pids), cpu_seconds(pg)
    busy = machine_busy_seconds()
    summary = load(server.port, paths, headers, args)
    busy = machine_busy_seconds() - busy
    server_cpu, pg_cpu = cpu_seconds(server_pids) - server_cpu, cpu_seconds(pg) - pg_cpu
    # CPU over warmup + duration, per request completed in the whole run (approximate:
    # requests of the warmup are not counted, so this errs high by warmup/duration at most).
    total_s = args.warmup + args.duration
    requests = max(summary["ok"] * total_s / args.duration, 1)
    summary["server_cpu_ms_per_req"] = round(server_cpu * 1000 / requests, 3)
    summary["postgres_cpu_ms_per_req"] = round(pg_cpu * 1000 / requests, 3)
    # Anything else running on the machine competes for the same cores.
    summary["machine_busy_cores"] = round(busy / total_s, 2)
    summary["other_busy_cores"] = round(
        max(busy - server_cpu - pg_cpu - summary["client_cpu_s"], 0) / total_s, 2)
    return summary


# ------------------------------------------------------------------ report


def ratio(a, b):
    return round(a / b, 3) if a is not None and b else None


def table(cases: list[dict]) -> str:
    head = ("case", "Trellis req/s", "p50 ms", "p99 ms", "Baseline req/s", "p50 ms", "p99 ms",
            "req/s T/B", "p50 T/B", "p99 T/B", "same rows")
    rows = [head]
    for c in cases:
        t, b, r = c["trellis"], c["baseline"], c["ratio"]
        rows.append((c["name"], f"{t['req_per_s']:.1f}", f"{t['p50_ms']:.1f}",
                     f"{t['p99_ms']:.1f}", f"{b['req_per_s']:.1f}", f"{b['p50_ms']:.1f}",
                     f"{b['p99_ms']:.1f}", f"{r['req_per_s']:.2f}", f"{r['p50']:.2f}",
                     f"{r['p99']:.2f}", "yes" if c["check"]["same_rows"] else "NO"))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w)
                               for i, (v, w) in enumerate(zip(row, widths))))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def cpu_table(cases: list[dict]) -> str:
    lines = ["CPU per request (ms; server = gunicorn master+workers, postgres = all its "
             "processes), response bytes:"]
    for c in cases:
        t, b = c["trellis"], c["baseline"]
        lines.append(f"  {c['name']:<16} Trellis server {t['server_cpu_ms_per_req']:6.2f}  "
                     f"postgres {t['postgres_cpu_ms_per_req']:6.2f}  {t['bytes_per_response']:>6} B"
                     f"   | Baseline server {b['server_cpu_ms_per_req']:6.2f}  "
                     f"postgres {b['postgres_cpu_ms_per_req']:6.2f}  {b['bytes_per_response']:>6} B")
        if "trellis_fixed" in c:
            f = c["trellis_fixed"]
            lines.append(f"  {'':<16} Trellis+fixes  {f['server_cpu_ms_per_req']:6.2f}  "
                         f"postgres {f['postgres_cpu_ms_per_req']:6.2f}  "
                         f"{f['bytes_per_response']:>6} B")
    return "\n".join(lines)


def code_version() -> dict:
    """The commit measured, and uncommitted changes to the code gunicorn imports."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip()

    dirty = [line for line in git("status", "--porcelain", "--", "platform", "plugins",
                                  "examples").splitlines() if line]
    return {"commit": git("rev-parse", "HEAD"), "dirty": dirty}


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("gunicorn", "Flask", "Flask-AppBuilder", "SQLAlchemy", "psycopg", "marshmallow",
                 "Flask-JWT-Extended", "trellis"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def median_round(rounds: list[dict]) -> dict:
    if len(rounds) == 1:
        return rounds[0]
    ordered = sorted(rounds, key=lambda s: s["req_per_s"])
    return ordered[len(ordered) // 2]


# ------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--server", default=generate.DEFAULT_SERVER,
                        help="an existing database on the PostgreSQL server (to create ours)")
    parser.add_argument("--duration", type=float, default=15, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=3, help="unmeasured seconds before")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1,
                        help="gunicorn workers of each server (default 2 x cores + 1)")
    parser.add_argument("--worker-class", default="sync")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1,
                        help="runs per case and server (alternating order); median reported")
    parser.add_argument("--cases", default=",".join(DEFAULT_CASES),
                        help=f"comma-separated, from {', '.join(CASE_NAMES)}")
    parser.add_argument("--trellis-port", type=int, default=8301)
    parser.add_argument("--baseline-port", type=int, default=8302)
    parser.add_argument("--with-fixes", action="store_true",
                        help="also serve and measure Trellis with the candidate fixes of "
                             "candidate_fixes.py applied (patched_app.py)")
    parser.add_argument("--fixes-port", type=int, default=8303)
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.cases.split(",") if n.strip()]
    unknown = set(names) - set(CASE_NAMES)
    if unknown:
        parser.error(f"unknown cases: {', '.join(sorted(unknown))}")

    url = generate.ensure(args.contacts, args.seed, server=args.server)
    code = code_version()  # what the servers import, read before they start
    cases = build_cases(args.contacts, args.seed)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(exist_ok=True)
    log_dir = RESULTS / f"{stamp}-logs"
    log_dir.mkdir()

    env = generate.trellis_env(url)
    servers: list[Server] = []

    def stop_all(*_):
        for server in servers:
            server.stop()
        servers.clear()

    def interrupted(*_):
        raise KeyboardInterrupt  # stop the servers in ``finally`` below

    previous = signal.signal(signal.SIGTERM, interrupted)
    report_cases = []
    try:
        trellis = Server("trellis", "trellis.app:create_app()", args.trellis_port, env, args,
                         ROOT, log_dir)
        servers.append(trellis)
        baseline = Server("baseline", "baseline_app:create_app()", args.baseline_port,
                          {**env, "BENCH_DATABASE_URL": url}, args, BENCH, log_dir)
        servers.append(baseline)
        fixed = None
        if args.with_fixes:
            fixed = Server("trellis_fixed", "patched_app:create_app()", args.fixes_port, env,
                           args, BENCH, log_dir)
            servers.append(fixed)
        print(f"starting {args.workers} {args.worker_class} workers each: Trellis on "
              f"{HOST}:{args.trellis_port}, baseline on {HOST}:{args.baseline_port} ...")
        trellis.wait_ready()
        baseline.wait_ready()
        if fixed:
            fixed.wait_ready()
        for name in names:
            case = cases[name]
            auth = login(trellis.port)  # fresh: tokens live JWT_ACCESS_TOKEN_EXPIRES (900 s)
            check = compare(case, trellis.port, baseline.port, auth)
            runs: dict[str, list[dict]] = {"trellis": [], "baseline": []}
            if fixed:
                runs["trellis_fixed"] = []
                fixed_auth = login(fixed.port)
                check["trellis_fixed_same_rows"] = compare(case, fixed.port, baseline.port,
                                                           fixed_auth)["same_rows"]
            for n in range(args.rounds):
                order = [(baseline, {}), (trellis, auth)]
                if fixed:
                    order.append((fixed, fixed_auth))
                if n % 2:
                    order.reverse()
                for server, headers in order:
                    print(f"  {name:<16} {server.name:<8} round {n + 1}/{args.rounds}: "
                          f"{args.warmup:g}+{args.duration:g} s at concurrency "
                          f"{args.concurrency} ...", flush=True)
                    runs[server.name].append(measure(server, case["paths"], headers, args))
            t, b = median_round(runs["trellis"]), median_round(runs["baseline"])
            for side, summaries in runs.items():
                for summary in summaries:
                    if summary["ok"] != summary["requests"] or summary["errors"]:
                        print(f"  WARNING {name}/{side}: statuses {summary['statuses']} "
                              f"errors {summary['errors'][:3]}")
                    if summary["other_busy_cores"] > 0.25:
                        print(f"  WARNING {name}/{side}: other processes kept "
                              f"{summary['other_busy_cores']} cores busy during the run")
            entry = {
                "name": name, "about": case["about"], "example_path": case["paths"][0],
                "check": check, "trellis": t, "baseline": b,
                "rounds": runs if args.rounds > 1 else None,
                "ratio": {"req_per_s": ratio(t["req_per_s"], b["req_per_s"]),
                          "p50": ratio(t["p50_ms"], b["p50_ms"]),
                          "p99": ratio(t["p99_ms"], b["p99_ms"])},
            }
            if fixed:
                f = median_round(runs["trellis_fixed"])
                entry["trellis_fixed"] = f
                entry["ratio_fixed"] = {"req_per_s": ratio(f["req_per_s"], b["req_per_s"]),
                                        "p50": ratio(f["p50_ms"], b["p50_ms"]),
                                        "p99": ratio(f["p99_ms"], b["p99_ms"])}
            report_cases.append(entry)
        # Re-check after the load: unordered pages may change (see README).
        auth = login(trellis.port)
        after = {name: compare(cases[name], trellis.port, baseline.port, auth)["same_rows"]
                 for name in names}
    except KeyboardInterrupt:
        print("interrupted; stopping the servers")
        return 130
    finally:
        stop_all()
        signal.signal(signal.SIGTERM, previous)

    for case in report_cases:
        case["check"]["same_rows_after_load"] = after[case["name"]]
    result = {
        "timestamp": stamp,
        "command": " ".join(shlex.quote(a) for a in [".venv/bin/python", "bench/api_list.py",
                                                     *(argv if argv is not None else sys.argv[1:])]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "versions": versions(),
        "code": code,
        "data": {"database": url.rsplit("/", 1)[-1], "contacts": args.contacts,
                 "accounts": generate.ACCOUNTS, "seed": args.seed},
        "config": {k: getattr(args, k) for k in ("duration", "warmup", "concurrency", "workers",
                                                 "worker_class", "threads", "rounds")},
        "servers": {s: srv.command for s, srv in (("trellis", trellis), ("baseline", baseline),
                                                   ("trellis_fixed", fixed)) if srv},
        "cases": report_cases,
    }
    out = RESULTS / f"{stamp}.json"
    out.write_text(json.dumps(result, indent=2))
    print()
    print(f"code {code['commit'][:10]}{' + uncommitted changes' if code['dirty'] else ''}; "
          f"{args.contacts:,} contacts, {args.workers} {args.worker_class} workers each, "
          f"concurrency {args.concurrency}, {args.duration:g} s per run "
          f"(ratios: Trellis / baseline)")
    print(table(report_cases))
    if fixed:
        print("\nTrellis with the candidate fixes (candidate_fixes.py) vs the same baseline run:")
        print(table([{**c, "trellis": c["trellis_fixed"], "ratio": c["ratio_fixed"],
                      "check": {**c["check"], "same_rows": c["check"]["trellis_fixed_same_rows"]}}
                     for c in report_cases]))
    print()
    print(cpu_table(report_cases))
    noisy = max((s["other_busy_cores"] for c in report_cases
                 for side in ("trellis", "baseline") for s in [c[side]]), default=0)
    print(f"\nother processes on the machine: up to {noisy} cores busy during a run"
          + (" -- NOT a quiet machine, figures are disturbed" if noisy > 0.25 else ""))
    for case in report_cases:
        if not case["check"]["same_rows"] or not case["check"]["same_rows_after_load"]:
            print(f"note: {case['name']}: the two servers returned different rows "
                  f"(before load: {case['check']['same_rows']}, after: "
                  f"{case['check']['same_rows_after_load']}) {case['check']['notes'][:2]}")
    print(f"\nresults: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

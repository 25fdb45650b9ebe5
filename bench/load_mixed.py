"""A bounded load test: many clients reading and writing at once, zero errors expected.

    .venv/bin/python bench/load_mixed.py --contacts 100000 --concurrency 50 --duration 60

1. makes sure ``trellis_bench_<contacts>`` holds the generated data (generate.py);
2. starts Trellis and the bare-Flask baseline under gunicorn on 127.0.0.1, each
   with ``--workers`` sync workers (default 2 × cores + 1), on PostgreSQL;
3. drives Trellis with ``--concurrency`` clients for ``--duration`` seconds
   cycling a mix of requests: 3 × get one contact, 2 × a filtered page, 1 × the
   first page, 2 × create a contact (POST), 1 × rename a contact (PUT) — every
   answer must be 200/201;
4. drives both servers with the read share of the mix (the baseline has no
   writes), for the ratio Trellis / baseline;
5. prints the figures, writes ``bench/results/<stamp>-load.json`` and stops both
   servers.  Exit status 1 if any request failed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
from argparse import Namespace
from datetime import datetime, timezone

import api_list
import generate
from api_list import LIST, RESULTS, ROOT, BENCH, Server, load, login


def mix(contacts: int, seed: int) -> tuple[list, list]:
    rng = random.Random(seed)
    ids = [rng.randint(1, contacts) for _ in range(300)]
    filtered = LIST + "?q=(filters:!((col:last_name,opr:eq,value:Chen)),page:0,page_size:25)"
    first = LIST + "?q=(page:0,page_size:25)"
    reads: list = []
    mixed: list = []
    for n in range(100):
        one = [f"{LIST}{ids[(3 * n + k) % len(ids)]}" for k in range(3)]
        batch_reads = [*one, filtered, filtered, first]
        reads += batch_reads
        mixed += batch_reads + [
            {"method": "POST", "path": LIST,
             "body": {"first_name": "Load", "last_name": "Test {n}",
                      "email": "load-{n}@example.com"}},
            {"method": "POST", "path": LIST,
             "body": {"first_name": "Load", "last_name": "Test {n}b"}},
            {"method": "PUT", "path": f"{LIST}{ids[n]}",
             "body": {"last_name": "Renamed {n}"}},
        ]
    return reads, mixed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--server", default=generate.DEFAULT_SERVER)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1)
    parser.add_argument("--trellis-port", type=int, default=8311)
    parser.add_argument("--baseline-port", type=int, default=8312)
    args = parser.parse_args(argv)
    server_args = Namespace(workers=args.workers, worker_class="sync", threads=1)

    url = generate.ensure(args.contacts, args.seed, server=args.server)
    reads, mixed = mix(args.contacts, args.seed)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(exist_ok=True)
    log_dir = RESULTS / f"{stamp}-load-logs"
    log_dir.mkdir()
    env = generate.trellis_env(url)
    servers: list[Server] = []

    def interrupted(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    try:
        trellis = Server("trellis", "trellis.app:create_app()", args.trellis_port, env,
                         server_args, ROOT, log_dir)
        servers.append(trellis)
        baseline = Server("baseline", "baseline_app:create_app()", args.baseline_port,
                          {**env, "BENCH_DATABASE_URL": url}, server_args, BENCH, log_dir)
        servers.append(baseline)
        trellis.wait_ready()
        baseline.wait_ready()
        auth = login(args.trellis_port)
        figures = {
            "trellis_mixed": load(args.trellis_port, mixed, auth, args),
            "trellis_reads": load(args.trellis_port, reads, auth, args),
            "baseline_reads": load(args.baseline_port, reads, {}, args),
        }
    finally:
        for server in servers:
            server.stop()
    report = {"stamp": stamp, "contacts": args.contacts, "concurrency": args.concurrency,
              "duration_s": args.duration, "workers": args.workers,
              "code": api_list.code_version(), "figures": figures}
    (RESULTS / f"{stamp}-load.json").write_text(json.dumps(report, indent=2))
    print(f"{args.concurrency} clients, {args.duration:.0f} s each run, {args.workers} "
          f"gunicorn workers per server, {args.contacts:,} contacts on PostgreSQL")
    print(f"{'run':<16}{'requests':>9}{'ok':>9}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}  statuses")
    for name, f in figures.items():
        print(f"{name:<16}{f['requests']:>9}{f['ok']:>9}{f['req_per_s']:>8}"
              f"{f['p50_ms'] or 0:>9.1f}{f['p99_ms'] or 0:>9.1f}  {f['statuses']}"
              + (f"  errors: {f['errors'][:3]}" if f["errors"] else ""))
    t, b = figures["trellis_reads"], figures["baseline_reads"]
    if b["req_per_s"]:
        print(f"reads, Trellis / baseline: req/s {t['req_per_s'] / b['req_per_s']:.2f}, "
              f"p50 {t['p50_ms'] / b['p50_ms']:.2f}×")
    failed = [n for n, f in figures.items() if f["ok"] != f["requests"] or f["errors"]]
    if failed:
        print(f"FAILED requests in: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

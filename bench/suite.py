"""The benchmark suite: the seeded data set, then every benchmark beside its baseline.

    bench/run                       # scale 1: 1M contacts and accounts, 10M activities, ...
    bench/run --scale 0.01          # a quick run (about 3 minutes)
    bench/run --only api,pages      # some benchmarks only

1. :mod:`dataset` makes sure the database (``trellis_bench`` at scale 1) holds
   the scale's rows (generated set-based the first time, then kept);
2. each benchmark runs in its own Python process (``suite_*.py``: a JSON job on
   stdin, a JSON list of figures on stdout), so one app, one database pool and
   one failure stay inside it, and measures Trellis and its baseline on the
   same data, in the same run;
3. the figures go to ``bench/results/<UTC timestamp>.json`` and, as a Markdown
   table (figure, Trellis, baseline, ratio, target, pass/fail), to
   ``bench/results/<UTC timestamp>.md`` and stdout.

Exit status: 0 when every benchmark ran (a missed target is reported, not an
error), 1 when one failed, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
sys.path.insert(0, str(BENCH))

#: name -> (module, what it measures); run in this order
BENCHMARKS = {
    "api": ("suite_http", "REST API list/filter/get/create, event ingestion, admin list "
                          "pages and memory per worker (gunicorn, beside bare Flask + Core)"),
    "startup": ("suite_startup", "app start-up, every plugin beside the core alone"),
    "segments": ("suite_jobs", "segment evaluation beside hand-written SQL"),
    "campaign": ("suite_jobs", "campaign e-mail to a local SMTP server beside smtplib"),
    "webhooks": ("suite_jobs", "webhook delivery to a local HTTP server beside requests"),
    "import": ("suite_jobs", "CSV import beside COPY and multi-row INSERT"),
    "scoring": ("suite_jobs", "full CRM-value recompute beside hand-written SQL"),
}


# ------------------------------------------------------------------ figures


def figure(group: str, name: str, value: float | None, unit: str, baseline: str,
           baseline_value: float | None, better: str = "higher",
           target: dict[str, float] | None = None, note: str = "",
           **extra: Any) -> dict[str, Any]:
    """One figure beside its baseline.  ``ratio`` is Trellis / baseline in the
    figure's unit (``better`` says which way is good); ``target`` is
    ``{"ratio_min": x}``, ``{"ratio_max": x}`` or ``{"max": v}`` (on the value)."""
    ratio = (value / baseline_value) if value is not None and baseline_value else None
    passed = None
    if target and value is not None:
        checks = []
        if "ratio_min" in target:
            checks.append(ratio is not None and ratio >= target["ratio_min"])
        if "ratio_max" in target:
            checks.append(ratio is not None and ratio <= target["ratio_max"])
        if "max" in target:
            checks.append(value <= target["max"])
        passed = all(checks)
    return {"group": group, "figure": name, "value": _round(value), "unit": unit,
            "baseline": baseline, "baseline_value": _round(baseline_value),
            "ratio": _round(ratio), "better": better, "target": target, "pass": passed,
            "note": note, **extra}


def _round(v: float | None) -> float | None:
    """Four significant digits (one decimal from 1,000 up)."""
    if v is None:
        return None
    return float(f"{v:.4g}") if abs(v) < 1000 else round(v, 1)


def _num(v: float | None) -> str:
    if v is None:
        return "—"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def _target(t: dict | None, unit: str) -> str:
    if not t:
        return "—"
    parts = []
    if "ratio_min" in t:
        parts.append(f"≥ {t['ratio_min']:g}×")
    if "ratio_max" in t:
        parts.append(f"≤ {t['ratio_max']:g}×")
    if "max" in t:
        parts.append(f"≤ {t['max']:g} {unit}")
    return ", ".join(parts)


def markdown(figures: list[dict]) -> str:
    lines = ["| group | figure | Trellis | baseline | baseline value | ratio T/B | target | "
             "pass |", "|---|---|---|---|---|---|---|---|"]
    for f in figures:
        verdict = {True: "pass", False: "**FAIL**", None: "—"}[f["pass"]]
        ratio = "—" if f["ratio"] is None else f"{f['ratio']:.2f}"
        arrow = "↑" if f["better"] == "higher" else "↓"
        lines.append(f"| {f['group']} | {f['figure']} ({f['unit']}, {arrow} better) | "
                     f"{_num(f['value'])} | {f['baseline']} | {_num(f['baseline_value'])} | "
                     f"{ratio} | {_target(f['target'], f['unit'])} | {verdict} |")
    return "\n".join(lines)


# ------------------------------------------------------------------ running


def run_one(name: str, ctx: dict, timeout: float) -> dict:
    """Run benchmark ``name`` in its own process; its figures or its error."""
    module = BENCHMARKS[name][0]
    started = time.perf_counter()
    job = json.dumps({**ctx, "benchmark": name})
    proc = subprocess.Popen([sys.executable, str(BENCH / f"{module}.py"), name],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            cwd=ROOT, start_new_session=True)
    try:
        out, _ = proc.communicate(job, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)  # its own session only
        proc.wait()
        return {"name": name, "error": f"timed out after {timeout:.0f} s", "figures": []}
    seconds = round(time.perf_counter() - started, 1)
    if proc.returncode:
        return {"name": name, "error": f"exit status {proc.returncode}", "figures": [],
                "seconds": seconds}
    data = json.loads(out.strip().splitlines()[-1])
    return {"name": name, "seconds": seconds, **data}


def emit(result: dict) -> None:
    """How a benchmark process answers (the last line of its stdout)."""
    sys.stdout.flush()
    print(json.dumps(result, default=str), flush=True)


def read_job() -> dict:
    return json.loads(sys.stdin.read())


def log(*args: Any) -> None:
    """Progress, on stderr (stdout carries the result)."""
    print(*args, file=sys.stderr, flush=True)


def machine() -> dict:
    info = {"cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        mem = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1]
        info["memory_gb"] = round(int(mem) / 1024 / 1024, 1)
        info["load_avg_at_start"] = os.getloadavg()
    except OSError:
        pass
    return info


def versions() -> dict:
    from importlib import metadata

    out = {}
    for dist in ("trellis", "Flask", "Flask-AppBuilder", "SQLAlchemy", "psycopg", "gunicorn"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0,
                        help="data size: 1.0 = 1M contacts and accounts, 10M activities, "
                             "2M order lines, 200k deals, 500k tickets")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--server", default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
                        help="an existing database on the PostgreSQL server (to create ours)")
    parser.add_argument("--only", default="",
                        help=f"comma-separated, from: {', '.join(BENCHMARKS)}")
    parser.add_argument("--duration", type=float, default=None,
                        help="measured seconds per HTTP load (default 10; 2 below scale 0.1)")
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1,
                        help="gunicorn workers per server (default 2 × cores + 1)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0",
                        help="Redis for the web benchmarks' jobs (one trellis worker is "
                             "started; queues get a prefix of their own); 'none': jobs run "
                             "in the web requests")
    parser.add_argument("--force", action="store_true", help="regenerate the data")
    parser.add_argument("--smoke", action="store_true",
                        help="as few samples as possible: checks that everything runs "
                             "(tests/test_bench_smoke.py), the figures mean little")
    parser.add_argument("--out", default=str(RESULTS), help="where results go")
    parser.add_argument("--timeout", type=float, default=3600,
                        help="seconds any one benchmark may take")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(BENCHMARKS)
    unknown = set(names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmarks: {', '.join(sorted(unknown))}")
    if args.scale <= 0:
        parser.error("--scale must be positive")

    import dataset

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    commit = _commit()  # what the benchmark processes import
    url, data = dataset.ensure(args.scale, args.seed, args.server, args.force)
    quick = args.scale < 0.1
    ctx = {"url": url, "server": args.server, "scale": args.scale, "seed": args.seed,
           "sizes": data["sizes"], "database": data["database"],
           "empty_database": dataset.template_name(data["database"]),
           "duration": args.duration or (1 if args.smoke else 2 if quick else 10),
           "warmup": 0.2 if args.smoke else 1 if quick else 3, "smoke": args.smoke,
           "workers": args.workers, "concurrency": args.concurrency,
           "log_dir": str(out_dir / f"{stamp}-logs"),
           "redis": None if args.redis.lower() == "none" else args.redis}
    runs = []
    for name in names:
        print(f"\n== {name}: {BENCHMARKS[name][1]}", flush=True)
        result = run_one(name, ctx, args.timeout)
        runs.append(result)
        if result.get("error"):
            print(f"   FAILED: {result['error']}", flush=True)
        for f in result.get("figures", []):
            print(f"   {f['figure']}: {_num(f['value'])} {f['unit']} | {f['baseline']} "
                  f"{_num(f['baseline_value'])} | ratio {f['ratio']}", flush=True)
    figures = [f for r in runs for f in r.get("figures", [])]
    report = {
        "timestamp": stamp,
        "command": " ".join(shlex.quote(a) for a in ["bench/run", *(argv if argv is not None
                                                                    else sys.argv[1:])]),
        "seconds": round(time.perf_counter() - started, 1),
        "machine": machine(), "versions": versions(), "commit": commit,
        "data": data, "config": {k: v for k, v in ctx.items() if k not in ("url",)},
        "benchmarks": runs, "figures": figures,
    }
    (out_dir / f"{stamp}.json").write_text(json.dumps(report, indent=2, default=str))
    table = markdown(figures)
    head = (f"Benchmark suite, {stamp}, scale {args.scale:g} ({data['database']}: "
            + ", ".join(f"{v:,} {k}" for k, v in data["sizes"].items())
            + f"), commit {report['commit'][:10]}, {report['machine'].get('cpus')} CPUs, "
            f"{report['seconds']:.0f} s\n\n")
    (out_dir / f"{stamp}.md").write_text(head + table + "\n")
    print("\n" + head + table)
    print(f"\nresults: {out_dir / (stamp + '.json')} and .md")
    failed = [r["name"] for r in runs if r.get("error")]
    if failed:
        print(f"benchmarks that failed: {', '.join(failed)}")
    return 1 if failed else 0


def _commit() -> str:
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "platform", "plugins"],
                           cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return done.stdout.strip() + (" + uncommitted changes" if dirty else "")


if __name__ == "__main__":
    sys.exit(main())

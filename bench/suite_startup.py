"""Start-up time: a fresh Python process building the app, every plugin beside the core.

Run by suite.py.  Each sample is a new interpreter that imports Trellis and
calls ``create_app()`` on the suite's database (as a gunicorn worker does), and
reports the wall time from its start to the app being built and its RSS then;
with every installed plugin and with the core alone (``plugins=[]``),
interleaved, the median of ``repeat`` samples each.  The bare Flask + Core
baseline of the HTTP benchmarks is measured the same way, for scale.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import generate  # noqa: E402
from suite import emit, figure, log, read_job  # noqa: E402

PROBE = """
import json, os, sys, time
started = time.perf_counter()
kind = sys.argv[1]
if kind == "baseline":
    sys.path.insert(0, {bench!r})
    from baseline_app import create_app
    app = create_app()
else:
    from trellis.app import create_app
    app = create_app(plugins=[] if kind == "core" else None)
elapsed = time.perf_counter() - started
rss = next(l for l in open("/proc/self/status") if l.startswith("VmRSS:")).split()[1]
print(json.dumps({{"seconds": elapsed, "rss_mb": int(rss) / 1024,
                  "plugins": len(app.extensions["trellis"].plugins.order)
                  if "trellis" in app.extensions else 0}}))
"""


def sample(kind: str, env: dict) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE.format(bench=str(BENCH)), kind],
                          env=env, capture_output=True, text=True, cwd=BENCH.parent, timeout=300)
    if done.returncode:
        raise RuntimeError(f"{kind}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(job: dict) -> dict:
    env = {**generate.trellis_env(job["url"]), "BENCH_DATABASE_URL": job["url"]}
    repeat = 1 if job.get("smoke") else 3 if job["scale"] < 0.1 else 5
    samples: dict[str, list[dict]] = {"all": [], "core": [], "baseline": []}
    if not job.get("smoke"):
        sample("all", env)  # warm the file cache (.pyc) once, not measured
    for n in range(repeat):
        for kind in ("all", "core", "baseline"):
            samples[kind].append(sample(kind, env))
        log(f"  round {n + 1}/{repeat}: " + ", ".join(
            f"{k} {v[-1]['seconds']:.2f} s" for k, v in samples.items()))
    med = {k: statistics.median(s["seconds"] for s in v) for k, v in samples.items()}
    rss = {k: statistics.median(s["rss_mb"] for s in v) for k, v in samples.items()}
    plugins = samples["all"][0]["plugins"]
    return {"figures": [
        figure("startup", f"create_app(), all {plugins} plugins (core + {plugins - 1})",
               med["all"], "s", "the core alone", med["core"], better="lower",
               note=f"bare Flask + Core baseline app: {med['baseline']:.2f} s",
               samples=samples),
        figure("memory", "RSS of a process right after create_app(), all plugins",
               rss["all"], "MB", "the core alone", rss["core"], better="lower",
               note=f"bare Flask + Core baseline app: {rss['baseline']:.0f} MB"),
    ]}


if __name__ == "__main__":
    emit(run(read_job()))

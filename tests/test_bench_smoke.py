"""The benchmark suite (``bench/run``) runs end to end, so its one command cannot rot.

At a tiny scale (200 contacts) and with one sample per figure (``--smoke``):
the data set is generated afresh (``--force``; one ``trellis init``) into its
own ``trellis_bench*`` database, every
benchmark runs beside its baseline, and the results are written as JSON and a
Markdown table.  The figures themselves mean nothing at this size.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import suite  # noqa: E402

pytestmark = pytest.mark.postgres

SCALE = "0.0002"


def test_the_suite_runs_every_benchmark_beside_its_baseline(postgres_server_url, tmp_path):
    done = subprocess.run(
        [str(ROOT / "bench" / "run"), "--scale", SCALE, "--smoke", "--force", "--workers", "1",
         "--concurrency", "2", "--server", postgres_server_url, "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    [result] = tmp_path.glob("*.json")
    report = json.loads(result.read_text())
    assert report["data"]["sizes"]["contacts"] == 200
    assert report["data"]["sizes"]["activities"] == 2000
    assert [b["name"] for b in report["benchmarks"]] == list(suite.BENCHMARKS)
    assert not [b for b in report["benchmarks"] if b.get("error")]
    groups = {f["group"] for f in report["figures"]}
    assert groups == {"api", "ingest", "memory", "admin pages", "startup", "segments",
                      "campaign", "webhooks", "import", "scoring"}
    for f in report["figures"]:
        # every figure has its baseline, measured in the same run, and the ratio
        assert f["value"] and f["baseline_value"] and f["ratio"], f
        assert f["ratio"] == pytest.approx(f["value"] / f["baseline_value"], rel=0.02), f
    targets = [f for f in report["figures"] if f["target"]]
    assert {f["group"] for f in targets} == {"api", "admin pages"}
    assert all(f["pass"] in (True, False) for f in targets)

    table = result.with_suffix(".md").read_text()
    assert "| group | figure | Trellis | baseline | baseline value | ratio T/B | target | pass |" \
        in table
    assert table.count("\n| ") == len(report["figures"]) + 1  # header + one row a figure

    # the generated rows are there, and what the load wrote was taken out again
    url = sa.engine.make_url(postgres_server_url).set(
        database="trellis_bench_s0_0002").render_as_string(hide_password=False)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        counts = conn.execute(sa.text(
            "SELECT (SELECT count(*) FROM trellis_contact WHERE first_name <> 'Bench'), "
            "(SELECT count(*) FROM trellis_activity), (SELECT count(*) FROM service_ticket), "
            "(SELECT count(*) FROM integrations_web_event)")).one()
    engine.dispose()
    assert tuple(counts) == (200, 2000, 100, 0)

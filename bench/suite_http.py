"""The suite's HTTP benchmarks: Trellis and the bare Flask + Core baseline under gunicorn.

Run by suite.py (a JSON job on stdin, the figures as JSON on stdout).  Both
servers get the same ``workers`` sync workers on 127.0.0.1 and the same
database; ``loadgen.py`` (its own process, ``concurrency`` connections) drives
each case for ``warmup`` + ``duration`` seconds, baseline first, then Trellis.

* REST API: first page, filtered page (``last_name = Chen``), get one (1,000
  seeded ids), create (POST); both servers must return the same rows first.
* Event ingestion: ``POST /api/v1/ingest/events`` with 50 events a request
  (half of known contacts, so half go on the timeline too).
* Admin list pages (the HTML ``ModelView``, signed in through the login form):
  first page, filtered page and a late page of contacts, accounts and
  activities, one request at a time, median wall time on 127.0.0.1 (the
  server's time plus well under a millisecond of loopback); beside the same
  page's SQL (capped count and page) sent by hand through SQLAlchemy Core.
* Memory per web worker: RSS and PSS of each gunicorn worker after the load.

Trellis runs as in production (docs/operations.md): with ``redis`` set (the
default) its jobs and background event handlers go through Redis to one
``trellis worker`` started for the run (its own queue prefix), which shares
the machine's cores as it would on a one-machine install; without Redis they
would run inside the web requests.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from argparse import Namespace
from pathlib import Path

import sqlalchemy as sa

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import api_list  # noqa: E402
import generate  # noqa: E402
from sales_reports import Client, session_login  # noqa: E402
from suite import emit, figure, log, read_job  # noqa: E402

LIST = api_list.LIST
EVENTS = "/api/v1/ingest/events"
EVENTS_PER_REQUEST = 50


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def api_cases(contacts: int, seed: int) -> dict[str, dict]:
    rng = random.Random(seed)
    ids = [rng.randint(1, contacts) for _ in range(1000)]
    return {
        "list": [LIST + "?q=(page:0,page_size:25)"],
        "filter": [LIST + "?q=(filters:!((col:last_name,opr:eq,value:Chen)),page:0,"
                   "page_size:25)"],
        "get": [f"{LIST}{i}" for i in ids],
    }


def create_paths(tag: str) -> list[dict]:
    return [{"method": "POST", "path": LIST,
             "body": {"first_name": "Bench", "last_name": f"Create {tag} {{n}}",
                      "email": f"bench-create-{tag}-{{n}}@example.com"}}]


def events_paths(contacts: int, seed: int, per_request: int) -> list[dict]:
    rng = random.Random(seed + 1)
    out = []
    for k in range(20):
        events = []
        for j in range(per_request):
            if j % 2:
                events.append({"type": "page_view", "contact_id": rng.randint(1, contacts),
                               "url": f"https://shop.example.com/p/{j}", "title": f"Page {j}"})
            else:
                events.append({"type": "page_view", "visitor_id": f"v-{k}-{j}-{{n}}",
                               "url": f"https://shop.example.com/p/{j}", "title": f"Page {j}"})
        out.append({"method": "POST", "path": EVENTS, "body": {"events": events}})
    return out


def worker_memory(server: api_list.Server) -> list[dict]:
    """RSS and PSS (MB) of each worker (not the master)."""
    out = []
    for pid in server.pids()[1:]:
        try:
            rss = int(next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                           if line.startswith("VmRSS:")).split()[1])
            pss = int(next(line for line in
                           Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
                           if line.startswith("Pss:")).split()[1])
        except (OSError, StopIteration):
            continue
        out.append({"pid": pid, "rss_mb": round(rss / 1024, 1), "pss_mb": round(pss / 1024, 1)})
    return out


# ------------------------------------------------------------------ admin pages


def page_cases(sizes: dict) -> list[dict]:
    """(model, view, case, query string, hand-written SQL of the page)."""
    def late(n: int) -> int:
        return max(n // 2 // 25, 1)

    # the page of rows first, then their related names (one statement)
    contact_page = """SELECT c.id, c.first_name, c.last_name, c.email, a.name, u.username
        FROM (SELECT * FROM trellis_contact c {where} ORDER BY c.id LIMIT 25 OFFSET {off}) c
        LEFT JOIN trellis_account a ON a.id = c.account_id
        LEFT JOIN ab_user u ON u.id = c.owner_id ORDER BY c.id"""
    account_page = """SELECT a.id, a.name, a.domain, a.industry, a.country, u.username
        FROM (SELECT * FROM trellis_account a {where} ORDER BY a.id LIMIT 25 OFFSET {off}) a
        LEFT JOIN ab_user u ON u.id = a.owner_id ORDER BY a.id"""
    activity_page = """SELECT t.id, t.occurred_at, t.type, t.subject, c.first_name,
        c.last_name, a.name, t.plugin
        FROM (SELECT * FROM trellis_activity t {where} ORDER BY t.occurred_at DESC
              LIMIT 25 OFFSET {off}) t
        LEFT JOIN trellis_contact c ON c.id = t.contact_id
        LEFT JOIN trellis_account a ON a.id = t.account_id ORDER BY t.occurred_at DESC"""
    count = "SELECT count(*) FROM (SELECT 1 FROM {table} {alias} {where} LIMIT 10001) x"
    out = []
    for model, view, table, alias, page, n, flt, where in [
            ("contacts", "contactview", "trellis_contact", "c", contact_page,
             sizes["contacts"], "_flt_3_last_name=Chen", "WHERE c.last_name = 'Chen'"),
            ("accounts", "accountview", "trellis_account", "a", account_page,
             sizes["accounts"], "_flt_3_country=DE", "WHERE a.country = 'DE'"),
            ("activities", "activityview", "trellis_activity", "t", activity_page,
             sizes["activities"], "_flt_3_type=call", "WHERE t.type = 'call'")]:
        view_class = {"contactview": "ContactView", "accountview": "AccountView",
                      "activityview": "ActivityView"}[view]
        for case, query, w, off in [
                ("first page", "", "", 0),
                ("filtered page", flt, where, 0),
                (f"late page {late(n):,}", f"page_{view_class}={late(n)}", "",
                 late(n) * 25)]:
            out.append({"model": model, "case": case,
                        "path": f"/{view}/list/" + (f"?{query}" if query else ""),
                        "sql": [count.format(table=table, alias=alias, where=w),
                                page.format(where=w, off=off)]})
    return out


def time_pages(port: int, cookie: dict, url: str, cases: list[dict], repeat: int) -> list[dict]:
    client = Client(port, cookie)
    engine = sa.create_engine(url)
    results = []
    for case in cases:
        started = time.perf_counter()
        status, body = client.get(case["path"])  # warm (and checked)
        if status != 200 or b"<table" not in body:
            raise RuntimeError(f"{case['path']}: status {status}")
        slow = time.perf_counter() - started > 2  # seconds a page: 3 samples are enough
        trellis_ms = []
        for _ in range(min(repeat, 3) if slow else repeat):
            started = time.perf_counter()
            status, _ = client.get(case["path"])
            trellis_ms.append((time.perf_counter() - started) * 1000)
            if status != 200:
                raise RuntimeError(f"{case['path']}: status {status}")
        baseline_ms = []
        with engine.connect() as conn:
            for sql in case["sql"]:
                conn.execute(sa.text(sql)).all()  # warm
            for _ in range(min(repeat, 3) if slow else repeat):
                started = time.perf_counter()
                for sql in case["sql"]:
                    conn.execute(sa.text(sql)).all()
                baseline_ms.append((time.perf_counter() - started) * 1000)
        results.append({**case, "trellis_ms": trellis_ms, "baseline_ms": baseline_ms})
    engine.dispose()
    return results


# ------------------------------------------------------------------ main


def run(job: dict) -> dict:
    sizes, url = job["sizes"], job["url"]
    log_dir = Path(job["log_dir"]) / "http"
    log_dir.mkdir(parents=True, exist_ok=True)
    server_args = Namespace(workers=job["workers"], worker_class="sync", threads=1)
    load_args = Namespace(concurrency=job["concurrency"], warmup=job["warmup"],
                          duration=job["duration"])
    env = generate.trellis_env(url)
    worker = None
    prefix = f"trellis-bench-{os.getpid()}-"
    if job.get("redis"):
        env.update({"TRELLIS_REDIS_URL": job["redis"], "TRELLIS_QUEUE_PREFIX": prefix})
    servers: list[api_list.Server] = []
    figures, raw = [], {}
    try:
        if job.get("redis"):
            worker_log = open(log_dir / "worker.log", "w")
            worker = subprocess.Popen([str(generate.VENV_BIN / "trellis"), "worker"], env=env,
                                      stdout=worker_log, stderr=subprocess.STDOUT,
                                      cwd=api_list.ROOT, start_new_session=True)
        trellis = api_list.Server("trellis", "trellis.app:create_app()", free_port(), env,
                                  server_args, api_list.ROOT, log_dir)
        servers.append(trellis)
        baseline = api_list.Server("baseline", "baseline_app:create_app()", free_port(),
                                   {**env, "BENCH_DATABASE_URL": url}, server_args, BENCH,
                                   log_dir)
        servers.append(baseline)
        trellis.wait_ready()
        baseline.wait_ready()
        auth = api_list.login(trellis.port)
        cases = api_cases(sizes["contacts"], job["seed"])
        for name, paths in cases.items():
            check = api_list.compare({"paths": paths}, trellis.port, baseline.port, auth)
            if not check["same_rows"]:
                raise RuntimeError(f"{name}: the servers answer differently: {check['notes']}")
        loads = [(name, paths, paths) for name, paths in cases.items()]
        loads.append(("create", create_paths("t"), create_paths("b")))
        per_request = 5 if job.get("smoke") else EVENTS_PER_REQUEST
        loads.append(("events", events_paths(sizes["contacts"], job["seed"], per_request),
                      events_paths(sizes["contacts"], job["seed"], per_request)))
        for name, t_paths, b_paths in loads:
            log(f"  {name}: baseline, then Trellis ({job['warmup']:g}+{job['duration']:g} s)")
            b = api_list.measure(baseline, b_paths, {}, load_args)
            auth = api_list.login(trellis.port)
            t = api_list.measure(trellis, t_paths, auth, load_args)
            raw[name] = {"trellis": t, "baseline": b}
            for side, s in (("trellis", t), ("baseline", b)):
                if s["ok"] != s["requests"] or not s["ok"]:
                    raise RuntimeError(f"{name}/{side}: statuses {s['statuses']} "
                                       f"errors {s['errors'][:3]}")
            extra = {"trellis_run": t, "baseline_run": b}
            if name == "events":
                figures.append(figure(
                    "ingest", f"behaviour events ({per_request}/request, half of known "
                    "contacts)", t["req_per_s"] * per_request, "events/s",
                    "bare Flask + Core INSERTs", b["req_per_s"] * per_request,
                    note=f"p50 {t['p50_ms']:.0f} / {b['p50_ms']:.0f} ms per request", **extra))
                continue
            label = {"list": "list, first page", "filter": "list, filtered (last_name)",
                     "get": "get one", "create": "create (POST)"}[name]
            figures.append(figure("api", f"{label} throughput", t["req_per_s"], "req/s",
                                  "bare Flask + Core", b["req_per_s"],
                                  target={"ratio_min": 0.7}, **extra))
            figures.append(figure("api", f"{label} p50", t["p50_ms"], "ms",
                                  "bare Flask + Core", b["p50_ms"], better="lower"))
            figures.append(figure("api", f"{label} p99", t["p99_ms"], "ms",
                                  "bare Flask + Core", b["p99_ms"], better="lower"))
        # memory once every worker has served every kind of request
        t_mem, b_mem = worker_memory(trellis), worker_memory(baseline)
        figures.append(figure(
            "memory", "RSS per web worker (after the load)",
            statistics.mean(m["rss_mb"] for m in t_mem), "MB", "bare Flask + Core worker",
            statistics.mean(m["rss_mb"] for m in b_mem), better="lower",
            note="PSS (shared pages split) {:.0f} / {:.0f} MB".format(
                statistics.mean(m["pss_mb"] for m in t_mem),
                statistics.mean(m["pss_mb"] for m in b_mem)),
            workers={"trellis": t_mem, "baseline": b_mem}))
        # admin list pages, one request at a time
        cookie = session_login(trellis.port, generate.ADMIN_USER)
        repeat = 1 if job.get("smoke") else 5 if job["scale"] < 0.1 else 11
        for p in time_pages(trellis.port, cookie, url, page_cases(sizes), repeat):
            figures.append(figure(
                "admin pages", f"{p['model']}: {p['case']}",
                statistics.median(p["trellis_ms"]), "ms",
                "the page's SQL by hand (count + page)", statistics.median(p["baseline_ms"]),
                better="lower", target={"max": 200}, path=p["path"],
                trellis_ms=[round(v, 1) for v in p["trellis_ms"]],
                baseline_ms=[round(v, 1) for v in p["baseline_ms"]]))
    finally:
        for server in servers:
            server.stop()
        if worker is not None:
            _drain(job["redis"], prefix, worker)
        _clean(url)
    return {"figures": figures}


def _drain(redis_url: str, prefix: str, worker: subprocess.Popen, timeout: float = 120) -> None:
    """Let the worker finish the jobs the load queued, then stop it (warm shutdown)."""
    import redis

    conn = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and worker.poll() is None:
        if not sum(conn.llen(k) for k in conn.scan_iter(f"rq:queue:{prefix}*")):
            break
        time.sleep(1)
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)  # its own session only
            worker.wait()
    for key in conn.scan_iter(f"rq:queue:{prefix}*"):
        conn.delete(key)  # the run's own queues (empty unless the worker gave up)
    conn.close()


def _clean(url: str) -> None:
    """Take out what the load wrote, so every run starts from the same rows."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "DELETE FROM trellis_activity WHERE id IN "
            "(SELECT activity_id FROM integrations_web_event WHERE activity_id IS NOT NULL)"))
        conn.execute(sa.text("TRUNCATE integrations_web_event, integrations_visitor CASCADE"))
        conn.execute(sa.text("DELETE FROM trellis_contact WHERE first_name = 'Bench' "
                             "AND last_name LIKE 'Create %'"))
    engine.dispose()


if __name__ == "__main__":
    emit(run(read_job()))

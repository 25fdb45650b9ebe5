"""A small, bounded HTTP load generator (run as its own process by api_list.py).

Reads a JSON job from stdin, writes a JSON summary to stdout::

    {"port": 8301, "paths": ["/api/v1/contact/1", ...], "headers": {...},
     "concurrency": 8, "warmup": 3, "duration": 15}

``concurrency`` threads each keep one HTTP/1.1 connection to 127.0.0.1 (and
reconnect when the server closes it: gunicorn's sync workers close after every
response) and send GETs back to back, cycling through ``paths``.  Requests
completing during the first ``warmup`` seconds are discarded; the next
``duration`` seconds are measured; then every thread stops by itself (each
request has a socket timeout, so no loop can hang).
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import threading
import time

HOST = "127.0.0.1"  # never anything else


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * p // 100))  # ceil
    return sorted_values[int(rank) - 1]


def run(job: dict) -> dict:
    port, paths = int(job["port"]), list(job["paths"])
    headers = {"Accept": "application/json", **job.get("headers", {})}
    concurrency = int(job.get("concurrency", 8))
    warmup, duration = float(job.get("warmup", 3)), float(job.get("duration", 15))
    timeout = float(job.get("timeout", 30))

    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + duration
    results: list[list[tuple[float, int, int]]] = [[] for _ in range(concurrency)]
    reconnects = [0] * concurrency
    errors: list[str] = []

    def worker(index: int) -> None:
        out, conn, i = results[index], None, index
        while True:
            began = time.perf_counter()
            if began >= stop_at:
                break
            path = paths[i % len(paths)]
            i += concurrency
            method, body, send_headers = "GET", None, headers
            if isinstance(path, dict):  # a write: {"method", "path", "body"} ({n}: a counter)
                method = path["method"]
                body = json.dumps(path.get("body", {})).replace("{n}", f"{index}-{i}")
                send_headers = {**headers, "Content-Type": "application/json"}
                path = path["path"]
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
                    reconnects[index] += 1
                conn.request(method, path, body=body, headers=send_headers)
                response = conn.getresponse()
                body = response.read()
                status = response.status
                if response.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as exc:
                if conn is not None:
                    conn.close()
                conn = None
                if len(errors) < 20:
                    errors.append(f"{type(exc).__name__}: {exc}")
                status, body = 0, b""
            done = time.perf_counter()
            if measure_from <= done <= stop_at:
                out.append((done - began, status, len(body)))
        if conn is not None:
            conn.close()

    cpu_before = os.times()
    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=warmup + duration + timeout + 5)
    cpu_after = os.times()

    samples = [s for per_thread in results for s in per_thread]
    ok = sorted(lat for lat, status, _ in samples if status in (200, 201))
    statuses: dict[str, int] = {}
    for _, status, _ in samples:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    body_bytes = [size for _, status, size in samples if status in (200, 201)]
    ms = lambda v: None if v is None else round(v * 1000, 3)  # noqa: E731
    return {
        "requests": len(samples),
        "ok": len(ok),
        "statuses": statuses,
        "errors": errors,
        "duration_s": duration,
        "req_per_s": round(len(ok) / duration, 1),
        "p50_ms": ms(percentile(ok, 50)),
        "p90_ms": ms(percentile(ok, 90)),
        "p99_ms": ms(percentile(ok, 99)),
        "max_ms": ms(ok[-1] if ok else None),
        "mean_ms": ms(sum(ok) / len(ok) if ok else None),
        "bytes_per_response": round(sum(body_bytes) / len(body_bytes)) if body_bytes else None,
        "connections_opened": sum(reconnects),
        "client_cpu_s": round((cpu_after.user + cpu_after.system)
                              - (cpu_before.user + cpu_before.system), 2),
    }


if __name__ == "__main__":
    json.dump(run(json.load(sys.stdin)), sys.stdout)

"""Filtering and sorting the contact API by a custom field against a real column.

    .venv/bin/python bench/custom_fields.py --contacts 50000 [--postgres URL]

Builds a throwaway app (SQLite in a temporary folder, or the given empty
PostgreSQL database), inserts the contacts and one ``number`` custom field
value each (set-based), then times pages of ``GET /api/v1/contact/`` (25 rows)
in-process: filtered on ``cf_size > x`` (about 1 % of the contacts), sorted by
``cf_size``, and the same on the real column ``id`` for comparison.  Prints the
median and worst of ``--runs`` requests each.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import prison

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=50000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--postgres", default=None)
    args = parser.parse_args()

    from sqlalchemy import insert, select, text

    from trellis import customfields
    from trellis.db import db
    from trellis.models import Contact
    from trellis.testing import ADMIN, build_app, dispose

    folder = tempfile.mkdtemp()
    app = build_app(folder, database_url=args.postgres)
    client = app.test_client()
    token = client.post("/api/v1/security/login", json={
        "username": ADMIN[0], "password": ADMIN[1], "provider": "db"}).get_json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    answer = client.post("/api/v1/custom_field/", headers=headers, json={
        "model": "contact", "key": "size", "label": "Size", "type": "number"})
    assert answer.status_code == 201, answer.get_json()
    with app.test_request_context():
        started = time.perf_counter()
        for start in range(0, args.contacts, 10000):
            db.session.execute(insert(Contact), [
                {"first_name": f"F{i}", "last_name": f"L{i}"}
                for i in range(start, min(start + 10000, args.contacts))])
        ids = list(db.session.scalars(select(Contact.id)))
        customfields.write_values(db.session, "contact",
                                  {cid: {"cf_size": cid % 10000} for cid in ids})
        db.session.commit()
        db.session.execute(text("ANALYZE"))
        db.session.commit()
        print(f"{len(ids)} contacts with a value: {time.perf_counter() - started:.1f} s",
              flush=True)

    cases = {
        "filter cf_size > 9900": {"filters": [{"col": "cf_size", "opr": "gt", "value": 9900}]},
        "filter id > n - 1%": {"filters": [{"col": "id", "opr": "gt",
                                            "value": max(ids) - len(ids) // 100}]},
        "sort by cf_size desc": {"order_column": "cf_size", "order_direction": "desc"},
        "sort by id desc": {"order_column": "id", "order_direction": "desc"},
    }
    print(f"| request (page of 25, {len(ids)} contacts) | median ms | max ms |")
    print("|---|---|---|")
    for name, q in cases.items():
        url = f"/api/v1/contact/?q={prison.dumps({**q, 'page_size': 25})}"
        times = []
        for _ in range(args.runs):
            began = time.perf_counter()
            response = client.get(url, headers=headers)
            times.append((time.perf_counter() - began) * 1000)
            assert response.status_code == 200, response.get_json()
        print(f"| {name} | {statistics.median(times):.0f} | {max(times):.0f} |", flush=True)
    dispose(app)


if __name__ == "__main__":
    main()

"""Export of any list (the core's trellis.export, on every TrellisModelView): the
list's filters and the user's record rules, formula neutralising, XLSX, audit."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from openpyxl import load_workbook
from sqlalchemy import select

from trellis.db import db
from trellis.models import AuditEntry

PASSWORD = "pw-123456"


def rows_of(response):
    text = response.get_data(as_text=True).lstrip("\ufeff")
    return list(csv.DictReader(io.StringIO(text)))


def test_a_reps_export_holds_only_their_records(trellis_app_factory, make_user, web_login):
    from trellis_sales.models import Deal

    app = trellis_app_factory(plugins=["sales", "integrations"])
    rep = make_user(app, "rep", ["Sales Rep"])
    other = make_user(app, "other", ["Sales Rep"])
    with app.app_context():
        db.session.add_all([
            Deal(name="=HYPERLINK(\"http://evil.example\",\"click\")", owner_id=rep,
                 amount=Decimal("100")),
            Deal(name="+1 Renewal", owner_id=rep, amount=Decimal("250.50")),
            Deal(name="-Cross sell", owner_id=rep, amount=Decimal("-0")),
            Deal(name="@Other rep's deal", owner_id=other, amount=Decimal("999")),
        ])
        db.session.commit()
    client = app.test_client()
    web_login(client, "rep", PASSWORD)
    listing = client.get("/dealview/list/").get_data(as_text=True)
    assert "/dealview/export/csv" in listing and "/dealview/export/xlsx" in listing

    exported = client.get("/dealview/export/csv")
    assert exported.status_code == 200
    assert exported.headers["Content-Disposition"].startswith("attachment; filename=deal-")
    rows = rows_of(exported)
    names = sorted(r["name"] for r in rows)
    # only the rep's deals, each dangerous first character neutralised
    assert names == ["'+1 Renewal", "'-Cross sell",
                     "'=HYPERLINK(\"http://evil.example\",\"click\")"]
    assert {r["owner_id"] for r in rows} == {str(rep)}
    assert "id" in rows[0] and "amount" in rows[0]

    # the list's filters apply: "name contains Renewal"
    filtered = rows_of(client.get("/dealview/export/csv?_flt_2_name=Renewal"))
    assert [r["name"] for r in filtered] == ["'+1 Renewal"]

    book = load_workbook(io.BytesIO(client.get("/dealview/export/xlsx").data))
    sheet = book.active
    header = [c.value for c in next(sheet.iter_rows(max_row=1))]
    cells = [dict(zip(header, row)) for row in sheet.iter_rows(min_row=2)]
    values = [{k: c.value for k, c in row.items()} for row in cells]
    # XLSX keeps the text as it is, typed as text: never run as a formula
    assert sorted(v["name"] for v in values)[0] == "+1 Renewal"
    assert all(row["name"].data_type == "s" for row in cells)
    assert sorted(v["amount"] for v in values) == [0.0, 100.0, 250.5]  # numbers stay numbers
    assert client.get("/dealview/export/pdf").status_code == 404

    with app.app_context():
        audit = db.session.scalars(select(AuditEntry).where(
            AuditEntry.action == "exported").order_by(AuditEntry.id)).all()
        assert [(a.model, a.username, a.changes["format"], a.changes["rows"]) for a in audit] \
            == [("deal", "rep", "csv", 3), ("deal", "rep", "csv", 1), ("deal", "rep", "xlsx", 3)]
        assert audit[1].changes["filters"] == {"_flt_2_name": "Renewal"}


def test_export_needs_read_permission(trellis_app_factory, make_user, web_login):
    app = trellis_app_factory(plugins=["sales", "integrations"])
    make_user(app, "viewer", ["CRM Viewer"])
    client = app.test_client()
    web_login(client, "viewer", PASSWORD)
    assert client.get("/contactview/export/csv").status_code == 200  # may read contacts
    denied = client.get("/dealview/export/csv")  # may not read deals
    assert denied.status_code in (302, 403)
    anonymous = app.test_client().get("/contactview/export/csv")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]

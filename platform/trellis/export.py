"""Export of any list to CSV or XLSX: the *Export* buttons of every ``TrellisModelView``.

An export is the list as the user sees it: the FAB filters in the page's query
string (``_flt_0_email=...``), its sort order and the view's base filters,
which include the user's record rule, so a Sales Rep exports only their own
records.  It needs ``can_read`` on the view's resource, like the list, and
every export is written to the audit log (action ``exported``, with the row
count, the format and the filters).

The file has one column per table column of the model (``id`` and foreign-key
ids included, so it can be edited and imported again), then one per custom
field (``cf_<key>``; multiple choices joined by ``;``, yes/no as Yes/No), in
the order the list is sorted.

Spreadsheet formula injection: a text cell starting with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return is written with a leading apostrophe
(``'=HYPERLINK(...)``), so Excel and LibreOffice show it as text instead of
running it (OWASP "CSV Injection").  Numbers are written as numbers.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Iterable, Iterator

from flask import current_app, request, send_file
from flask_appbuilder.urltools import get_filter_args, get_order_args

FORMATS = {"csv": "text/csv; charset=utf-8",
           "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
DANGEROUS = ("=", "+", "-", "@", "\t", "\r")
BATCH = 2000


def neutralise(value: Any) -> Any:
    """A cell value that no spreadsheet will run as a formula."""
    if isinstance(value, str) and value.startswith(DANGEROUS):
        return "'" + value
    return value


def columns_of(model: type) -> list[str]:
    """Every table column of ``model``, in table order."""
    return [attr.key for attr in model.__mapper__.column_attrs]


def _cell(value: Any, xlsx: bool) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value if xlsx else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value if xlsx else value.isoformat()
    if isinstance(value, Decimal):
        return float(value) if xlsx else str(value)
    if isinstance(value, (dict, list)):
        value = json.dumps(value, default=str)
    if value is None:
        return None if xlsx else ""
    return value if xlsx else neutralise(value)  # XLSX: typed as text instead (below)


def write(rows: Iterable[Iterable[Any]], header: list[str], fmt: str) -> tuple[Any, int]:
    """Write ``rows`` under ``header`` into a temporary file; ``(file, row count)``."""
    out = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
    count = 0
    if fmt == "csv":
        text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
        text.write("\ufeff")  # so Excel reads UTF-8
        writer = csv.writer(text)
        writer.writerow([neutralise(h) for h in header])
        for row in rows:
            writer.writerow([_cell(v, False) for v in row])
            count += 1
        text.detach()
    else:
        from openpyxl import Workbook
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.styles import Font

        book = Workbook(write_only=True)
        sheet = book.create_sheet("Export")

        def text(value: Any, bold: bool = False) -> Any:
            cell = WriteOnlyCell(sheet, value=value)
            cell.data_type = "s"  # text, never a formula, whatever it starts with
            if bold:
                cell.font = Font(bold=True)
            return cell

        sheet.append([text(str(h), bold=True) for h in header])
        for row in rows:
            cells = [_cell(v, True) for v in row]
            sheet.append([text(c) if isinstance(c, str) else c for c in cells])
            count += 1
        book.save(out)
    out.seek(0)
    return out, count


def _records(query: Any, names: list[str], model: str | None = None) -> Iterator[list[Any]]:
    """The rows of ``query``; with the ``cf_*`` values of registry model ``model``
    loaded per batch (one query per :data:`BATCH` rows)."""
    from trellis import customfields

    custom = customfields.definitions(model) if model else []
    plain = [n for n in names if not n.startswith(customfields.PREFIX)]
    if not custom:
        for item in query.yield_per(BATCH):
            yield [getattr(item, name) for name in plain]
        return
    batch: list[Any] = []

    def rows(items: list[Any]) -> Iterator[list[Any]]:
        values = customfields.values_for(query.session, model, [i.id for i in items], custom)
        for item in items:
            yield [*(getattr(item, name) for name in plain),
                   *(customfields.display(f, values[item.id][f.name])
                     if f.type in ("multi_choice", "boolean")
                     else values[item.id][f.name] for f in custom)]

    for item in query.yield_per(BATCH):
        batch.append(item)
        if len(batch) >= BATCH:
            yield from rows(batch)
            batch = []
    if batch:
        yield from rows(batch)


def audit_export(model: str, fmt: str, rows: int, filters: dict[str, Any]) -> None:
    """One audit entry for an export (who, what, how many rows, which filters)."""
    from trellis import audit
    from trellis.db import db

    audit.log(db.session, "exported", model, "*",
              {"format": fmt, "rows": rows, "filters": filters})
    db.session.commit()


def download(fmt: str, name: str, header: list[str], rows: Iterable[Iterable[Any]], *,
             audited_as: str, filters: dict[str, Any] | None = None) -> Any:
    """A CSV/XLSX download of any table (a list, a report), audited as an export
    of ``audited_as``; cells that could run as formulas are neutralised."""
    out, count = write(rows, list(header), fmt)
    audit_export(audited_as, fmt, count, filters or {})
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")[:80] or "export"
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return send_file(out, mimetype=FORMATS[fmt], as_attachment=True,
                     download_name=f"{stem}-{stamp}.{fmt}")


def export_view(view: Any, fmt: str) -> Any:
    """The file for the list of FAB view ``view`` as the current request filters it."""
    model = view.datamodel.obj
    entry = current_app.extensions["trellis"].registry.for_class(model)
    name = entry.name if entry is not None else model.__tablename__
    get_filter_args(view._filters)
    order = get_order_args().get(view.__class__.__name__)
    order_column, order_direction = order if order else (view.base_order or ("", ""))
    joined = view._filters.get_joined_filters(view._base_filters)
    query = view.datamodel.apply_all(view.datamodel.session.query(model), joined,
                                     order_column, order_direction)
    from trellis import customfields

    names = columns_of(model) + [f.name for f in customfields.for_class(model)]
    filters = {k: v for k, v in request.args.items() if k.startswith("_flt_")}
    return download(fmt, name, names, _records(query, names, customfields.model_name(model)),
                    audited_as=name, filters=filters)

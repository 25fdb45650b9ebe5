"""Tables as CSV or XLSX downloads (report-builder exports).

Cells that a spreadsheet would run as a formula are neutralised: in CSV a text
cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets
a leading ``'`` (OWASP's advice against CSV injection); in XLSX every text cell
is written as text (openpyxl would otherwise store ``=...`` as a formula), so
numbers stay numbers and nothing is evaluated.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any, Iterable, Sequence

from flask import Response

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMATS = ("csv", "xlsx")


def safe_text(value: Any) -> Any:
    """A CSV cell that no spreadsheet runs as a formula (numbers are left alone)."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """UTF-8 CSV with a byte-order mark, so spreadsheets read accents correctly."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([safe_text(h) for h in header])
    for row in rows:
        writer.writerow(["" if v is None else safe_text(v) for v in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def to_xlsx(header: Sequence[str], rows: Iterable[Sequence[Any]], title: str = "Report") -> bytes:
    """An XLSX workbook of one sheet: a bold header row, then the rows."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = re.sub(r"[\[\]:*?/\\]", " ", title)[:31] or "Report"
    for row_index, row in enumerate([list(header), *map(list, rows)], start=1):
        for col_index, value in enumerate(row, start=1):
            cell = sheet.cell(row=row_index, column=col_index)
            if isinstance(value, str):
                cell.value = value
                cell.data_type = "s"  # text, never a formula
            else:
                cell.value = value
            if row_index == 1:
                cell.font = Font(bold=True)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def download(fmt: str, name: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Response:
    """A download response of the table in ``fmt`` (``csv`` or ``xlsx``)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")[:80] or "report"
    if fmt == "xlsx":
        body, mimetype = to_xlsx(header, rows, title=name), XLSX_TYPE
    else:
        body, mimetype = to_csv(header, rows), "text/csv; charset=utf-8"
    return Response(body, mimetype=mimetype, headers={
        "Content-Disposition": f'attachment; filename="{stem}.{fmt}"'})

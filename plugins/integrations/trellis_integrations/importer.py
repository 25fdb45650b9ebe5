"""Import of CSV and XLSX files into any registered model, and its revert.

An import (:class:`~trellis_integrations.models.ImportRun`) names a registry
model, a column mapping (file column -> model field), a match key (``email``,
``phone``, ``domain`` or ``none``), what to do with a match (``update``,
``skip`` or ``create``) and a mode:

* ``skip_bad``: bad rows are reported and left out; good rows are written and
  committed batch by batch (the progress is visible as it goes);
* ``all_or_nothing``: one transaction; a single bad row rolls everything back
  and nothing is written.

``dry_run`` does the whole import, counts and reports it, then rolls back.

Per batch of :data:`BATCH` rows: values are normalised (e-mail, E.164 phone,
domain; :mod:`.normalise`), validated by the model's marshmallow schema from
the registry (``partial`` for an update), foreign keys checked in one query
per column, matches looked up in one query per batch (``lower(email) IN
(...)``).  Rows are then written set-based: a multi-row ``INSERT … RETURNING``
for new records and a bulk ``UPDATE`` by primary key for changed ones —
unless the model has rules (``ModelSpec.before_save``/``validate``), which
only run for ORM writes: those models are written through the ORM, one
savepoint per row, so their rules, audit rows and record events apply.

Blank cells never clear a field.  Every write is journaled
(:class:`~trellis_integrations.models.ImportWrite`): the ids created per batch
and, per updated record, each field's value before and after, so
:func:`revert` deletes what the import created and restores what it updated
(fields changed again since are left alone and counted).
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Callable, Iterator

from flask import current_app
from marshmallow import ValidationError
from sqlalchemy import bindparam, delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from trellis import customfields
from trellis.audit import jsonable
from trellis.db import db, utcnow
from trellis.duplicates import digits
from trellis.merge import row_from_json
from trellis.models import Account, AuditEntry
from trellis.settings import get_settings

from trellis_integrations import normalise
from trellis_integrations.models import ImportMapping, ImportRowError, ImportRun, ImportWrite

log = logging.getLogger(__name__)

PLUGIN = "integrations"
BATCH = 2000
#: Rows created after which PostgreSQL's statistics are refreshed (then each
#: time the table has doubled through the import).
ANALYZE_EVERY = 20_000
#: Pseudo-field: the domain of the contact's company, resolved to ``account_id``.
ACCOUNT_DOMAIN = "account_domain"
MATCH_COLUMNS = {"email": "email", "phone": "phone", "domain": "domain"}


class ImportFailed(Exception):
    """The file cannot be read at all (not CSV/XLSX, no header row)."""


# ------------------------------------------------------------------ reading files


def detect_format(filename: str, data: bytes) -> str:
    if filename.lower().endswith((".xlsx", ".xlsm")) or data[:2] == b"PK":
        return "xlsx"
    return "csv"


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def read(data: bytes, fmt: str) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The header and an iterator of ``(line number, cells)`` of a file."""
    if fmt == "xlsx":
        from openpyxl import load_workbook

        try:
            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds
            raise ImportFailed(f"Not a readable XLSX file: {exc}") from None
        rows = book.worksheets[0].iter_rows(values_only=True)
        header = [_cell(v) for v in next(rows, ())]

        def xlsx_rows() -> Iterator[tuple[int, list[str]]]:
            for number, row in enumerate(rows, start=2):
                cells = [_cell(v) for v in row]
                if any(cells):
                    yield number, cells
            book.close()

        body = xlsx_rows()
    else:
        text = _decode(data)
        sample = text[:4096]
        try:
            dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        except csv.Error:
            dialect = csv.excel
        reader = csv.reader(io.StringIO(text), dialect)
        header = [h.strip() for h in next(reader, [])]

        def csv_rows() -> Iterator[tuple[int, list[str]]]:
            for row in reader:
                if any(c.strip() for c in row):
                    yield reader.line_num, [c.strip() for c in row]

        body = csv_rows()
    if not any(header):
        raise ImportFailed("The file has no header row.")
    return header, body


def count_rows(data: bytes, fmt: str) -> int:
    _, rows = read(data, fmt)
    return sum(1 for _ in rows)


# ------------------------------------------------------------------ models and fields


def registry_entry(model: str) -> Any:
    return current_app.extensions["trellis"].registry.get(model)


def importable_models() -> list[Any]:
    """Registry models of enabled plugins that have a single integer ``id`` key."""
    ext = current_app.extensions["trellis"]
    out = []
    for entry in ext.registry:
        key = entry.model.__mapper__.primary_key
        if len(key) == 1 and key[0].name == "id" and ext.is_enabled(entry.plugin):
            out.append(entry)
    return out


def fields_of(entry: Any) -> list[str]:
    """The fields an import can fill: the schema's loadable fields that are columns,
    plus ``account_domain`` for models with an ``account_id``."""
    columns = {c.key for c in entry.model.__mapper__.column_attrs}
    schema = entry.schema()
    names = [n for n, f in schema.fields.items() if not f.dump_only and n in columns
             and n != "id"]
    if "account_id" in columns:
        names.append(ACCOUNT_DOMAIN)
    return names + [f.name for f in customfields.definitions(entry.name)]


def match_keys(entry: Any) -> list[str]:
    columns = {c.key for c in entry.model.__mapper__.column_attrs}
    return ["none", *[k for k, col in MATCH_COLUMNS.items() if col in columns]]


def _simple(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


ALIASES = {"emailaddress": "email", "mail": "email", "firstname": "first_name",
           "givenname": "first_name", "lastname": "last_name", "surname": "last_name",
           "familyname": "last_name", "phonenumber": "phone", "telephone": "phone",
           "mobile": "phone", "jobtitle": "title", "company": "name", "website": "domain",
           "companydomain": ACCOUNT_DOMAIN, "companywebsite": ACCOUNT_DOMAIN}


def suggest_mapping(header: list[str], entry: Any, source: str | None = None) -> dict[str, str]:
    """A saved mapping for ``source``, else columns matched to fields by name."""
    if source:
        saved = db.session.scalar(select(ImportMapping.mapping).where(
            ImportMapping.source == source, ImportMapping.model == entry.name))
        if saved:
            return {col: f for col, f in saved.items() if col in header}
    fields = fields_of(entry)
    by_simple = {_simple(f): f for f in fields}
    out = {}
    for column in header:
        key = _simple(column)
        target = by_simple.get(key) or ALIASES.get(key)
        if target in fields and target not in out.values():
            out[column] = target
    return out


def save_mapping(source: str, model: str, mapping: dict[str, str]) -> None:
    row = db.session.scalar(select(ImportMapping).where(ImportMapping.source == source,
                                                        ImportMapping.model == model))
    if row is None:
        row = ImportMapping(source=source, model=model)
        db.session.add(row)
    row.mapping = dict(mapping)


def check_options(entry: Any, header: list[str], mapping: dict[str, str], match_on: str,
                  on_match: str, mode: str) -> dict[str, list[str]]:
    """Field errors in an import's options (before anything runs)."""
    from trellis_integrations.models import IMPORT_MODES, ON_MATCH

    errors: dict[str, list[str]] = {}
    fields = set(fields_of(entry))
    unknown_cols = [c for c in mapping if c not in header]
    if unknown_cols:
        errors["mapping"] = [f"No column {c!r} in the file." for c in unknown_cols]
    bad = [f for f in mapping.values() if f not in fields]
    if bad:
        errors.setdefault("mapping", []).extend(
            f"{entry.label} has no importable field {f!r}." for f in bad)
    targets = list(mapping.values())
    if len(targets) != len(set(targets)):
        errors.setdefault("mapping", []).append("Two columns are mapped to the same field.")
    if not mapping:
        errors.setdefault("mapping", []).append("Map at least one column to a field.")
    if match_on not in match_keys(entry):
        errors["match_on"] = [f"Choose one of {', '.join(match_keys(entry))}."]
    elif match_on != "none" and MATCH_COLUMNS[match_on] not in targets:
        errors["match_on"] = [f"Map a column to {MATCH_COLUMNS[match_on]!r} to match on it."]
    if on_match not in ON_MATCH:
        errors["on_match"] = [f"Choose one of {', '.join(ON_MATCH)}."]
    if mode not in IMPORT_MODES:
        errors["mode"] = [f"Choose one of {', '.join(IMPORT_MODES)}."]
    return errors


# ------------------------------------------------------------------ one run


@dataclass
class Counts:
    processed: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    errors: int = 0
    error_rows: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Row:
    number: int
    raw: dict[str, str]
    data: dict[str, Any] = field(default_factory=dict)
    key: str | None = None
    match_id: int | None = None
    #: parsed custom field values (``cf_*``), written after the record
    custom: dict[str, Any] = field(default_factory=dict)


class Importer:
    """Runs one :class:`ImportRun` (see the module docstring)."""

    def __init__(self, run: ImportRun, progress: Callable[[Counts], None] | None = None,
                 batch_size: int = BATCH) -> None:
        self.run = run
        self.entry = registry_entry(run.model)
        self.model = self.entry.model
        self.table = self.model.__table__
        self.schema = self.entry.schema()
        self.progress = progress
        self.batch_size = batch_size
        self.region = get_settings(PLUGIN)["default_phone_region"]
        spec = self.entry.spec
        self.orm_path = bool(spec.before_save or spec.validate)
        self.match_column = MATCH_COLUMNS.get(run.match_on)
        self.counts = Counts()
        self.single_transaction = run.mode == "all_or_nothing" or run.dry_run
        # plain copies: the run's attributes are reloaded after every commit
        self.run_id = run.id
        self.mapping = dict(run.mapping or {})
        self.match_on, self.on_match = run.match_on, run.on_match
        self._analyzed_at = 0

    # ------------------------------------------------ rows to records

    def _normalise(self, row: Row) -> dict[str, list[str]]:
        errors: dict[str, list[str]] = {}
        data: dict[str, Any] = {}
        for column, target in self.mapping.items():
            value = row.raw.get(column, "")
            if value == "":
                continue
            try:
                if target == "email":
                    value = normalise.email(value)
                elif target == "phone":
                    value = normalise.phone(value, self.region)
                elif target in ("domain", ACCOUNT_DOMAIN):
                    value = normalise.domain(value)
            except normalise.BadPhone as exc:
                errors[target] = [str(exc)]
                continue
            data[target] = value
        row.data = data
        if self.match_column:
            value = data.get(self.match_column)
            row.key = (normalise.phone_digits(value) if self.match_on == "phone"
                       else value) or None
        return errors

    def _lookup(self, rows: list[Row]) -> None:
        """Match rows to existing records, one query for the batch."""
        keys = sorted({r.key for r in rows if r.key})
        if not keys or self.on_match == "create":
            return
        column = self.table.c[self.match_column]
        expr = digits(column) if self.match_on == "phone" else func.lower(column)
        found: dict[str, int] = {}
        for record_id, key in db.session.execute(
                select(self.table.c.id, expr).where(expr.in_(keys)).order_by(self.table.c.id)):
            found.setdefault(key, record_id)  # the oldest record wins
        for row in rows:
            row.match_id = found.get(row.key) if row.key else None

    def _accounts(self, rows: list[Row]) -> dict[str, list[str]]:
        domains = sorted({r.data[ACCOUNT_DOMAIN] for r in rows if r.data.get(ACCOUNT_DOMAIN)})
        if not domains:
            return {}
        found = dict(db.session.execute(select(func.lower(Account.domain), func.min(Account.id))
                                        .where(func.lower(Account.domain).in_(domains))
                                        .group_by(func.lower(Account.domain))).all())
        for row in rows:
            domain = row.data.pop(ACCOUNT_DOMAIN, None)
            if domain is None:
                continue
            if domain in found:
                row.data["account_id"] = found[domain]
            else:
                row.data["_account_error"] = f"No account with domain {domain}."
        return {}

    def _validate(self, row: Row) -> dict[str, list[str]]:
        # Models with rules fill columns in at save time (a deal's stage): their
        # schema checks the values given, the rules and the database the rest.
        partial = self.orm_path or (row.match_id is not None and self.on_match == "update")
        account_error = row.data.pop("_account_error", None)
        row.data, custom = customfields.split(row.data)
        row.custom, custom_errors = customfields.load(
            self.entry.name, custom,
            partial=row.match_id is not None and self.on_match == "update")
        try:
            loaded = self.schema.load(row.data, partial=partial)
        except ValidationError as exc:
            messages = exc.messages if isinstance(exc.messages, dict) else {"_": exc.messages}
            errors = {k: [str(m) for m in (v if isinstance(v, list) else [v])]
                      for k, v in messages.items()}
        else:
            errors = {}
            row.data = loaded if isinstance(loaded, dict) else {
                k: getattr(loaded, k) for k in row.data}
        errors.update(custom_errors)
        if account_error:
            errors[ACCOUNT_DOMAIN] = [account_error]
        return errors

    def _check_references(self, rows: list[Row], errors: dict[int, dict[str, list[str]]]) -> None:
        for column in self.table.columns:
            if not column.foreign_keys:
                continue
            values = {r.data[column.name] for r in rows
                      if r.number not in errors and r.data.get(column.name) is not None}
            if not values:
                continue
            target = next(iter(column.foreign_keys)).column
            found = set(db.session.scalars(select(target).where(target.in_(values))))
            label = target.table.name.removeprefix("trellis_").removeprefix("ab_")
            for row in rows:
                value = row.data.get(column.name)
                if row.number not in errors and value is not None and value not in found:
                    errors.setdefault(row.number, {})[column.name] = [
                        f"No {label} with id {value}."]

    # ------------------------------------------------ writing

    def _error(self, row: Row, messages: dict[str, list[str]]) -> None:
        self.counts.errors += 1
        for name, msgs in messages.items():
            for message in msgs:
                self.counts.error_rows.append({"import_id": self.run_id,
                                               "row_number": row.number, "field": name,
                                               "message": message, "raw": row.raw})

    def _current(self, ids: list[int], names: set[str]) -> dict[int, dict[str, Any]]:
        if not ids:
            return {}
        cols = [self.table.c.id, *[self.table.c[n] for n in sorted(names)]]
        return {r.id: dict(r._mapping) for r in db.session.execute(
            select(*cols).where(self.table.c.id.in_(ids)))}

    def _write(self, rows: list[Row]) -> None:
        creates = [r for r in rows if r.match_id is None]
        updates = [r for r in rows if r.match_id is not None]
        if self.on_match == "skip":
            self.counts.skipped += len(updates)
            updates = []
        names = {n for r in updates for n in r.data}
        current = self._current([r.match_id for r in updates], names)
        custom_now = customfields.values_for(
            db.session, self.entry.name, [r.match_id for r in updates if r.custom])
        changed: list[tuple[Row, dict[str, Any], dict[str, Any]]] = []
        for row in updates:
            before = current.get(row.match_id, {})
            diff = {k: v for k, v in row.data.items() if before.get(k) != v}
            was = custom_now.get(row.match_id, {})
            row.custom = {k: v for k, v in row.custom.items() if was.get(k) != v}
            if diff or row.custom:
                changed.append((row, {k: before.get(k) for k in diff}, diff))
            else:
                self.counts.unchanged += 1
        if self.orm_path:
            self._write_orm(creates, changed)
        else:
            self._write_bulk(creates, changed)
        # custom field values: one DELETE per field and one INSERT for the batch
        customfields.write_values(db.session, self.entry.name, {
            r.match_id: r.custom for r in [*creates, *(c[0] for c in changed)]
            if r.custom and r.match_id is not None})

    def _uniform(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Every row with the same keys, so the batch is one multi-row INSERT (rows
        with different keys would be split into many statements).  A blank cell
        becomes the column's default, else NULL."""
        keys = {k for r in records for k in r}
        fill = {}
        for key in keys:
            default = self.table.c[key].default
            if default is None:
                fill[key] = None
            elif default.is_scalar:
                fill[key] = default.arg
            elif default.is_callable:
                fill[key] = default.arg(None)
            else:
                fill[key] = None
        return [{**fill, **r} for r in records]

    def _write_bulk(self, creates: list[Row], changed: list[tuple[Row, dict, dict]]) -> None:
        if creates:
            # Core INSERT … VALUES (…), (…) … RETURNING id in pages of rows; the
            # journal needs the set of new ids, not which row got which
            result = db.session.execute(
                insert(self.table).returning(self.table.c.id, sort_by_parameter_order=True),
                self._uniform([r.data for r in creates]))
            ids = [i for (i,) in result]
            for row, new_id in zip(creates, ids):
                row.match_id = new_id  # for its custom field values
            db.session.execute(insert(ImportWrite.__table__), [{
                "import_id": self.run_id, "action": "created", "record_ids": ids}])
            self.counts.created += len(ids)
        if changed:
            if any(diff for _, _, diff in changed):
                db.session.execute(update(self.model), [{"id": row.match_id, **diff}
                                                        for row, _, diff in changed if diff])
            self._journal_updates(changed)

    def _journal_updates(self, changed: list[tuple[Row, dict, dict]]) -> None:
        db.session.execute(insert(ImportWrite.__table__), [{
            "import_id": self.run_id, "action": "updated", "record_id": row.match_id,
            "old": {k: jsonable(v) for k, v in old.items()},
            "new": {k: jsonable(v) for k, v in diff.items()}} for row, old, diff in changed])
        self.counts.updated += len(changed)

    def _write_orm(self, creates: list[Row], changed: list[tuple[Row, dict, dict]]) -> None:
        from trellis.validation import RecordInvalid

        created_ids: list[int] = []
        done: list[tuple[Row, dict, dict]] = []
        objects = {o.id: o for o in db.session.scalars(
            select(self.model).where(self.model.id.in_([r.match_id for r, _, _ in changed])))}
        for row, old, diff in [(r, None, None) for r in creates] + changed:
            try:
                with db.session.begin_nested():
                    if old is None:
                        obj = self.model(**row.data)
                        db.session.add(obj)
                    else:
                        obj = objects[row.match_id]
                        for name, value in diff.items():
                            setattr(obj, name, value)
                    db.session.flush()
            except RecordInvalid as exc:
                self._error(row, exc.messages if isinstance(exc.messages, dict)
                            else {"_": [str(exc.messages)]})
                continue
            except IntegrityError as exc:
                self._error(row, {"_row": ["The database refused the row: "
                                           f"{str(exc.orig).splitlines()[0][:200]}"]})
                continue
            if old is None:
                created_ids.append(obj.id)
                row.match_id = obj.id  # for its custom field values
            else:
                done.append((row, old, diff))
        if created_ids:
            db.session.execute(insert(ImportWrite.__table__), [{
                "import_id": self.run_id, "action": "created", "record_ids": created_ids}])
            self.counts.created += len(created_ids)
        if done:
            self._journal_updates(done)

    # ------------------------------------------------ the loop

    def _batch(self, rows: list[Row]) -> None:
        errors: dict[int, dict[str, list[str]]] = {}
        for row in rows:
            problem = self._normalise(row)
            if problem:
                # report every field of a bad row, not only the first problem
                row.data.pop(ACCOUNT_DOMAIN, None)
                errors[row.number] = {**self._validate(row), **problem}
        good = [r for r in rows if r.number not in errors]
        if self.entry.model.__mapper__.has_property("account_id"):
            self._accounts(good)
        self._lookup(good)
        # a key twice in one batch: the later rows wait for the next round, when
        # the first one's record exists and they match it
        seen: set[str] = set()
        now, later = [], []
        for row in good:
            if row.key and self.on_match != "create":
                if row.key in seen:
                    later.append(row)
                    continue
                seen.add(row.key)
            now.append(row)
        for row in now:
            problem = self._validate(row)
            if problem:
                errors[row.number] = problem
        self._check_references(now, errors)
        for row in rows:
            if row.number in errors:
                self._error(row, errors[row.number])
        self._write([r for r in now if r.number not in errors])
        self.counts.processed += len(rows) - len(later)
        if later:
            for row in later:
                row.match_id = None
            self._batch_again(later)

    def _batch_again(self, rows: list[Row]) -> None:
        """Rows held back because an earlier row of the batch had their key."""
        for row in rows:
            row.data, row.key = {}, None
        self._batch(rows)

    def execute(self, data: bytes) -> Counts:
        header, body = read(data, self.run.file_format)
        index = {name: i for i, name in enumerate(header)}
        batch: list[Row] = []
        for number, cells in body:
            raw = {name: (cells[i] if i < len(cells) else "") for name, i in index.items()
                   if name in self.mapping}
            batch.append(Row(number, raw))
            if len(batch) >= self.batch_size:
                self._flush_batch(batch)
                batch = []
        if batch:
            self._flush_batch(batch)
        return self.counts

    def _analyze(self) -> None:
        """Refresh PostgreSQL's statistics of the table once the import has grown it
        a lot: planned with the stats of a (nearly) empty table, every batch's
        ``lower(email) IN (…)`` would scan the whole table instead of the index."""
        if db.engine.dialect.name != "postgresql":
            return
        grown = self.counts.created - self._analyzed_at
        if grown >= ANALYZE_EVERY and grown >= self._analyzed_at:
            db.session.execute(text(f'ANALYZE "{self.table.name}"'))
            self._analyzed_at = self.counts.created

    def _flush_batch(self, batch: list[Row]) -> None:
        self._batch(batch)
        self._analyze()
        if not self.single_transaction:
            self._save_errors()
            self._store_counts()
            db.session.commit()
        if self.progress is not None:
            self.progress(self.counts)

    def _save_errors(self) -> None:
        if self.counts.error_rows:
            db.session.execute(insert(ImportRowError.__table__), self.counts.error_rows)
            self.counts.error_rows = []

    def _store_counts(self) -> None:
        c = self.counts
        db.session.execute(update(ImportRun).where(ImportRun.id == self.run_id).values(
            processed_rows=c.processed, created_count=c.created, updated_count=c.updated,
            unchanged_count=c.unchanged, skipped_count=c.skipped, error_count=c.errors))


def _side_progress(run_id: int) -> Callable[[Counts], None]:
    """Progress written on its own connection, visible while the import's
    transaction is still open (PostgreSQL; SQLite would lock)."""

    def write(counts: Counts) -> None:
        if db.engine.dialect.name == "sqlite":
            return
        with db.engine.begin() as conn:
            conn.execute(update(ImportRun.__table__).where(ImportRun.__table__.c.id == run_id)
                         .values(processed_rows=counts.processed))

    return write


def execute_run(import_id: int, progress: Callable[[Counts], None] | None = None,
                batch_size: int | None = None) -> dict[str, Any]:
    """Run import ``import_id`` (the body of the ``integrations.run_import`` job).

    Idempotent: only a ``pending`` import is claimed (a conditional UPDATE), so
    a retried job does not import twice.
    """
    from trellis.events import emit

    claimed = db.session.execute(update(ImportRun).where(
        ImportRun.id == import_id, ImportRun.status == "pending").values(
        status="running", started_at=utcnow()))
    db.session.commit()
    if not claimed.rowcount:
        return {"import_id": import_id, "skipped": "not pending"}
    run = db.session.get(ImportRun, import_id)
    data = run.data or b""
    if not run.total_rows:
        run.total_rows = count_rows(data, run.file_format)
        db.session.commit()
    importer = Importer(run, batch_size=batch_size or get_settings(PLUGIN)["import_batch_size"])
    side = _side_progress(run.id)
    importer.progress = (lambda c: (side(c), progress(c) if progress else None)) \
        if importer.single_transaction else progress
    failed: str | None = None
    try:
        counts = importer.execute(data)
    except Exception as exc:  # noqa: BLE001 - the import fails, the job reports it
        db.session.rollback()
        log.exception("import %s failed", import_id)
        counts, failed = importer.counts, f"The import stopped: {exc}"
    rollback = failed is None and (run.dry_run or (
        run.mode == "all_or_nothing" and counts.errors > 0))
    if rollback:
        db.session.rollback()
    errors = importer.counts.error_rows
    if importer.single_transaction and not rollback and failed is None:
        importer._save_errors()
    elif errors:
        db.session.execute(insert(ImportRowError.__table__), errors)
    run = db.session.get(ImportRun, import_id)
    run.processed_rows, run.error_count = counts.processed, counts.errors
    run.created_count, run.updated_count = counts.created, counts.updated
    run.unchanged_count, run.skipped_count = counts.unchanged, counts.skipped
    run.finished_at = utcnow()
    run.data = None if not run.dry_run else run.data
    if failed:
        run.status, run.message = "failed", failed
    elif run.dry_run:
        run.status = "done"
        run.message = (f"Dry run: {counts.created} would be created, {counts.updated} updated, "
                       f"{counts.errors} rejected. Nothing was written.")
    elif rollback:
        run.status = "failed"
        run.message = (f"All or nothing: {counts.errors} bad row(s), so nothing was written. "
                       "Fix them and import again.")
        run.created_count = run.updated_count = run.unchanged_count = 0
    else:
        run.status = "done"
        run.message = (f"{counts.created} created, {counts.updated} updated, "
                       f"{counts.unchanged} unchanged, {counts.skipped} skipped, "
                       f"{counts.errors} rejected.")
    if not run.dry_run and run.status == "done":
        _audit(run, "imported")
    db.session.commit()
    emit("integrations.import_finished", {"import_id": run.id, "model": run.model,
                                          "status": run.status, "dry_run": run.dry_run,
                                          "created": run.created_count,
                                          "updated": run.updated_count,
                                          "errors": run.error_count}, plugin=PLUGIN)
    return {"import_id": run.id, "status": run.status, "created": run.created_count,
            "updated": run.updated_count, "unchanged": run.unchanged_count,
            "skipped": run.skipped_count, "errors": run.error_count}


def _audit(run: ImportRun, action: str, **extra: Any) -> None:
    from trellis.context import current_actor

    actor = current_actor()
    db.session.execute(insert(AuditEntry.__table__).values(
        occurred_at=utcnow(), user_id=actor.user_id if actor else run.created_by_id,
        username=actor.username if actor else None, source=actor.source if actor else "job",
        action=action, model=run.model, record_id="*",
        changes={"import_id": run.id, "created": run.created_count,
                 "updated": run.updated_count, "errors": run.error_count, **extra}))


# ------------------------------------------------------------------ revert


class RevertRefused(ValueError):
    pass


def revert(import_id: int) -> dict[str, int]:
    """Undo a finished import: delete the records it created and put back the
    fields it updated (those not changed again since; they are counted as
    ``kept``).  Set-based: one ``DELETE`` per chunk of ids, one ``UPDATE`` per
    field over all records.  The caller commits."""
    from sqlalchemy import and_

    run = db.session.get(ImportRun, import_id)
    if run is None:
        raise RevertRefused(f"No import with id {import_id}.")
    if run.status != "done" or run.dry_run:
        raise RevertRefused("Only a finished import (not a dry run) can be reverted."
                            if run.status != "reverted" else "This import was reverted already.")
    table = registry_entry(run.model).model.__table__
    deleted = restored = kept = 0
    updates = db.session.execute(select(ImportWrite.record_id, ImportWrite.old, ImportWrite.new)
                                 .where(ImportWrite.import_id == run.id,
                                        ImportWrite.action == "updated")
                                 .order_by(ImportWrite.id.desc())).all()
    by_field: dict[str, list[dict[str, Any]]] = {}
    for record_id, old, new in updates:
        old_py = row_from_json(table, old or {})
        new_py = row_from_json(table, new or {})
        for name in new_py:
            by_field.setdefault(name, []).append(
                {"rid": record_id, "old_v": old_py.get(name), "new_v": new_py[name]})
    for name, params in by_field.items():
        column = table.c[name]
        stmt = update(table).where(and_(table.c.id == bindparam("rid"),
                                        column.is_not_distinct_from(bindparam("new_v")))
                                   ).values({name: bindparam("old_v")})
        result = db.session.connection().execute(stmt, params)
        changed = result.rowcount if result.rowcount is not None and result.rowcount >= 0 \
            else len(params)
        restored += changed
        kept += len(params) - changed
    for (ids,) in db.session.execute(select(ImportWrite.record_ids).where(
            ImportWrite.import_id == run.id, ImportWrite.action == "created")):
        for start in range(0, len(ids or []), 5000):
            chunk = ids[start:start + 5000]
            customfields.delete_values(db.session, run.model, chunk)
            deleted += db.session.execute(delete(table).where(table.c.id.in_(chunk))).rowcount
    run.status = "reverted"
    run.reverted_at = utcnow()
    _audit(run, "import_reverted", deleted=deleted, restored=restored, kept=kept)
    return {"deleted": deleted, "restored_fields": restored, "kept_fields": kept}


def error_report(import_id: int) -> tuple[list[str], list[list[Any]]]:
    """The per-row error report: row, field, message, then the row's cells."""
    errors = db.session.scalars(select(ImportRowError).where(
        ImportRowError.import_id == import_id).order_by(ImportRowError.row_number,
                                                        ImportRowError.id)).all()
    columns: list[str] = []
    for error in errors:
        for name in (error.raw or {}):
            if name not in columns:
                columns.append(name)
    header = ["row", "field", "message", *columns]
    rows = [[e.row_number, e.field, e.message, *[(e.raw or {}).get(c, "") for c in columns]]
            for e in errors]
    return header, rows


def create_run(*, model: str, data: bytes, filename: str, mapping: dict[str, str],
               match_on: str = "email", on_match: str = "update", mode: str = "skip_bad",
               dry_run: bool = False, source: str | None = None,
               user_id: int | None = None) -> ImportRun:
    """Check the options and add a pending :class:`ImportRun` (the caller commits
    and enqueues ``integrations.run_import``).  Raises ``ValidationError`` with
    field errors."""
    try:
        entry = registry_entry(model)
    except KeyError:
        raise ValidationError({"model": [f"No model named {model!r}."]}) from None
    if entry.name not in {e.name for e in importable_models()}:
        raise ValidationError({"model": [f"{entry.label} cannot be imported."]})
    fmt = detect_format(filename, data)
    try:
        header, _ = read(data, fmt)
    except ImportFailed as exc:
        raise ValidationError({"file": [str(exc)]}) from None
    errors = check_options(entry, header, mapping, match_on, on_match, mode)
    if errors:
        raise ValidationError(errors)
    run = ImportRun(model=entry.name, data=data, filename=filename[:255], file_format=fmt,
                    mapping=mapping, match_on=match_on, on_match=on_match, mode=mode,
                    dry_run=dry_run, source=source or None, created_by_id=user_id,
                    total_rows=count_rows(data, fmt))
    db.session.add(run)
    if source:
        save_mapping(source, entry.name, mapping)
    return run


"""``trellis import`` (with a progress bar) and ``trellis integrations …``."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask.cli import with_appcontext
from marshmallow import ValidationError

from trellis.context import acting_as
from trellis.db import db


def _mapping(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        column, sep, field = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r}: use COLUMN=FIELD", param_hint="--map")
        out[column.strip()] = field.strip()
    return out


@click.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--model", default="contact", show_default=True, help="registry model to fill")
@click.option("--map", "maps", multiple=True, metavar="COLUMN=FIELD",
              help="column mapping (repeat); default: the saved mapping of --source, "
                   "else columns named like fields")
@click.option("--source", default=None, help="name the mapping is saved under")
@click.option("--match-on", default="email", show_default=True,
              type=click.Choice(["none", "email", "phone", "domain"]))
@click.option("--on-match", default="update", show_default=True,
              type=click.Choice(["update", "skip", "create"]))
@click.option("--all-or-nothing", is_flag=True, help="one bad row: write nothing")
@click.option("--dry-run", is_flag=True, help="report what would happen, write nothing")
@click.option("--batch-size", type=int, default=None,
              help="rows per batch (default: the import_batch_size setting)")
@with_appcontext
def import_command(path: Path, model: str, maps: tuple[str, ...], source: str | None,
                   match_on: str, on_match: str, all_or_nothing: bool, dry_run: bool,
                   batch_size: int | None) -> None:
    """Import a CSV or XLSX file into a model, here and now (with a progress bar)."""
    from trellis_integrations import importer

    data = path.read_bytes()
    try:
        entry = importer.registry_entry(model)
        header, _ = importer.read(data, importer.detect_format(path.name, data))
    except KeyError:
        raise click.BadParameter(f"no model named {model!r}", param_hint="--model") from None
    except importer.ImportFailed as exc:
        raise click.ClickException(str(exc)) from None
    mapping = _mapping(maps) or importer.suggest_mapping(header, entry, source)
    try:
        run = importer.create_run(model=model, data=data, filename=path.name, mapping=mapping,
                                  match_on=match_on, on_match=on_match,
                                  mode="all_or_nothing" if all_or_nothing else "skip_bad",
                                  dry_run=dry_run, source=source)
    except ValidationError as exc:
        db.session.rollback()
        lines = [f"{k}: {' '.join(map(str, v))}" for k, v in exc.messages.items()]
        raise click.ClickException("cannot import\n  " + "\n  ".join(lines)) from None
    db.session.commit()
    click.echo(f"Import #{run.id}: {path.name} -> {entry.label} "
               f"(mapping {json.dumps(mapping)})")
    with click.progressbar(length=run.total_rows or 1, label="Importing",
                           show_pos=True) as bar, acting_as(None, None, "cli"):
        seen = {"n": 0}

        def progress(counts: importer.Counts) -> None:
            bar.update(counts.processed - seen["n"])
            seen["n"] = counts.processed

        result = importer.execute_run(run.id, progress=progress, batch_size=batch_size)
    click.echo(", ".join(f"{k}: {v}" for k, v in result.items()))
    run = db.session.get(importer.ImportRun, run.id)
    if run.message:
        click.echo(run.message)
    if run.error_count:
        header, rows = importer.error_report(run.id)
        for row in rows[:20]:
            click.echo(f"  row {row[0]}: {row[1]}: {row[2]}", err=True)
        if len(rows) > 20:
            click.echo(f"  … {len(rows) - 20} more (trellis integrations errors {run.id})",
                       err=True)
    if run.status == "failed":
        raise SystemExit(1)


@click.group("integrations")
def integrations_group() -> None:
    """Imports, duplicates and webhooks."""


@integrations_group.command("revert-import")
@click.argument("import_id", type=int)
@with_appcontext
def revert_import(import_id: int) -> None:
    """Delete what an import created and restore what it updated."""
    from trellis_integrations import importer

    try:
        with acting_as(None, None, "cli"):
            result = importer.revert(import_id)
    except importer.RevertRefused as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(json.dumps(result))


@integrations_group.command("errors")
@click.argument("import_id", type=int)
@with_appcontext
def errors(import_id: int) -> None:
    """Print an import's error report as CSV."""
    import csv
    import sys

    from trellis_integrations import importer

    header, rows = importer.error_report(import_id)
    writer = csv.writer(sys.stdout)
    writer.writerow(header)
    writer.writerows(rows)


@integrations_group.command("find-duplicates")
@with_appcontext
def find_duplicates() -> None:
    """Refresh the duplicate candidates of contacts and accounts."""
    from trellis_integrations.dedupe import find_duplicates as find

    click.echo(json.dumps(find()))


COMMANDS = [import_command, integrations_group]

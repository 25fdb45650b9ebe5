"""`trellis backup` / `trellis restore`: a round trip gives back every table,
row for row, on SQLite and PostgreSQL; a wrong or broken file changes nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from flask.cli import ScriptInfo
from sqlalchemy import MetaData, delete, select, update

from trellis.cli import main
from trellis.db import db
from trellis.models import Activity, Contact


def snapshot(app) -> dict[str, list[tuple]]:
    """Every table of the database, its rows in primary-key order."""
    with app.app_context():
        db.session.remove()
        meta = MetaData()
        meta.reflect(bind=db.engine)
        out = {}
        with db.engine.connect() as conn:
            for table in meta.sorted_tables:
                order = list(table.primary_key.columns) or list(table.columns)
                out[table.name] = [tuple(r) for r in conn.execute(
                    select(table).order_by(*order))]
        return out


def cli(app, *args):
    return app.test_cli_runner().invoke(main, list(args),
                                        obj=ScriptInfo(create_app=lambda: app))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def site(request, trellis_app_factory, api_login):
    database_url = request.getfixturevalue("postgres_url") if request.param == "postgres" \
        else None
    app = trellis_app_factory(plugins=["sales"], database_url=database_url)
    client = app.test_client()
    admin = api_login(client)
    for i in range(5):
        contact = client.post("/api/v1/contact/", headers=admin, json={
            "first_name": f"C{i}", "last_name": "Üñîçødé", "email": f"c{i}@example.com"})
        client.post("/api/v1/deal/", headers=admin, json={
            "name": f"Deal {i}", "contact_id": contact.get_json()["id"], "amount": 100 * i})
    return app


def test_backup_then_restore_gives_back_every_table(site, tmp_path):
    before = snapshot(site)
    assert len(before["trellis_contact"]) == 5 and before["sales_deal"]
    result = cli(site, "backup", "-o", str(tmp_path / "site.bak"))
    assert result.exit_code == 0, result.output
    with site.app_context():  # damage: changes, deletions and additions
        db.session.execute(update(Contact).values(first_name="changed"))
        db.session.execute(delete(Activity))
        from trellis_sales.models import Deal

        db.session.execute(update(Deal).values(amount=Decimal("1")))
        db.session.add(Contact(first_name="New", last_name="Comer"))
        db.session.commit()
    assert snapshot(site) != before
    result = cli(site, "restore", str(tmp_path / "site.bak"), "--yes")
    assert result.exit_code == 0, result.output
    after = snapshot(site)
    assert set(after) == set(before)
    for table, rows in before.items():
        assert after[table] == rows, table


def test_restore_refuses_a_file_that_is_not_a_backup_and_changes_nothing(site, tmp_path):
    before = snapshot(site)
    bogus = tmp_path / "notes.txt"
    bogus.write_text("not a backup")
    result = cli(site, "restore", str(bogus), "--yes")
    assert result.exit_code == 1 and "is not a" in result.output
    truncated = tmp_path / "cut.bak"
    assert cli(site, "backup", "-o", str(truncated)).exit_code == 0
    truncated.write_bytes(truncated.read_bytes()[:4096])
    result = cli(site, "restore", str(truncated), "--yes")
    assert result.exit_code == 1
    assert "nothing was changed" in result.output and "Traceback" not in result.output
    assert snapshot(site) == before

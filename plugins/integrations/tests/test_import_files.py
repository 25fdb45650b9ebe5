"""CSV/XLSX import: mapping, validation, matching, per-row report, modes, dry run,
revert, saved mappings, the CLI, and an import job on a real rq worker."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import func, select

from trellis.db import db
from trellis.models import Account, AuditEntry, Contact

from trellis_integrations.models import ImportMapping, ImportRun, ImportWrite

MAPPING = {"First name": "first_name", "Last name": "last_name", "E-mail": "email",
           "Phone": "phone", "Company domain": "account_domain"}

# Rows 2-8.  Row 3: bad e-mail; row 5: no last name and a bad phone; rows 6 and 8 are
# duplicates (an existing contact, in other case; an earlier row of the file).
CSV = """First name,Last name,E-mail,Phone,Company domain
Ada,Lovelace,ada@example.com,+44 20 7946 0018,analytical.example
Bob,Bad,not-an-email,,
Cy,Young,cy@example.com,+1 202 555 0143,
Dee,,dee@example.com,12,
Grace,Hopper-Updated,GRACE@Navy.example,+1 202 555 0101,
Eve,Online,eve@example.com,,
Ada,Lovelace-King,Ada@Example.com,,
"""


@pytest.fixture
def site(trellis_app_factory, api_login):
    app = trellis_app_factory(plugins=["integrations"])
    with app.app_context():
        account = Account(name="Analytical Engines", domain="analytical.example")
        grace = Contact(first_name="Grace", last_name="Hopper", email="grace@navy.example",
                        phone="+1 202 555 0100", title="Rear Admiral")
        db.session.add_all([account, grace])
        db.session.commit()
        ids = {"account": account.id, "grace": grace.id}
    client = app.test_client()
    return app, client, api_login(client), ids


def start(client, headers, text, mapping=MAPPING, filename="people.csv", **options):
    data = {"file": (io.BytesIO(text.encode() if isinstance(text, str) else text), filename),
            "model": options.pop("model", "contact"), "mapping": json.dumps(mapping),
            **{k: str(v).lower() if isinstance(v, bool) else v for k, v in options.items()}}
    return client.post("/api/v1/import/", headers=headers, data=data,
                       content_type="multipart/form-data")


def contacts(app):
    with app.app_context():
        return {c.email: (c.first_name, c.last_name, c.phone, c.account_id, c.title)
                for c in db.session.scalars(select(Contact).order_by(Contact.id))}


def test_good_bad_and_duplicate_rows(site):
    """Acceptance: the report names each bad row and field, the good rows land,
    duplicates update the right contacts; the same file twice creates nothing new."""
    app, client, headers, ids = site
    response = start(client, headers, CSV)
    assert response.status_code == 202, response.get_json()
    run_id = response.get_json()["id"]
    status = client.get(f"/api/v1/import/{run_id}", headers=headers).get_json()
    assert (status["status"], status["total"], status["processed"]) == ("done", 7, 7)
    # Ada, Cy, Eve new; Grace updated (matched ignoring case); the second Ada row
    # updates the Ada created by row 2
    assert (status["created"], status["updated"], status["errors"]) == (3, 2, 2)
    report = client.get(f"/api/v1/import/{run_id}/errors", headers=headers).get_json()["result"]
    assert sorted((r["row"], r["field"]) for r in report) == [
        (3, "email"), (5, "last_name"), (5, "phone")]
    assert {r["row"]: r["raw"]["E-mail"] for r in report} == {3: "not-an-email",
                                                             5: "dee@example.com"}
    people = contacts(app)
    assert set(people) == {"grace@navy.example", "ada@example.com", "cy@example.com",
                           "eve@example.com"}
    assert people["ada@example.com"] == ("Ada", "Lovelace-King", "+442079460018",
                                         ids["account"], None)
    assert people["cy@example.com"][2] == "+12025550143"  # E.164
    # Grace: the same contact (id kept), fields updated, fields not in the file kept
    assert people["grace@navy.example"] == ("Grace", "Hopper-Updated", "+12025550101", None,
                                            "Rear Admiral")
    with app.app_context():
        assert db.session.scalar(select(Contact.id).where(
            Contact.email == "grace@navy.example")) == ids["grace"]
        audit = db.session.scalars(select(AuditEntry).where(
            AuditEntry.action == "imported")).all()
        assert [(a.model, a.changes["import_id"], a.changes["created"]) for a in audit] == [
            ("contact", run_id, 3)]
    # The error report as a file, for the user to fix and re-import.
    csv_report = client.get(f"/api/v1/import/{run_id}/errors?format=csv", headers=headers)
    lines = csv_report.get_data(as_text=True).lstrip("\ufeff").splitlines()
    assert lines[0].startswith("row,field,message,")
    assert lines[1].startswith("3,email,Not a valid e-mail address.")

    again = start(client, headers, CSV).get_json()
    # nothing new; Grace, Cy and Eve unchanged; the file's two Ada rows disagree on her
    # last name, so row 2 sets "Lovelace" and row 8 "Lovelace-King" again
    assert (again["created"], again["updated"], again["unchanged"], again["errors"]) == (
        0, 2, 3, 2)
    assert contacts(app) == people


def test_revert_deletes_what_was_created_and_restores_updated_fields(site):
    app, client, headers, ids = site
    before = contacts(app)
    run_id = start(client, headers, CSV).get_json()["id"]
    with app.app_context():  # an edit after the import is kept by the revert
        cy = db.session.scalar(select(Contact).where(Contact.email == "cy@example.com"))
        grace = db.session.get(Contact, ids["grace"])
        grace.phone = "+1 202 555 0199"  # changed again since the import
        db.session.commit()
    reverted = client.post(f"/api/v1/import/{run_id}/revert", headers=headers)
    assert reverted.status_code == 200, reverted.get_json()
    # 3 created contacts deleted; Grace's last name restored (and Ada's, set by row 8,
    # before Ada goes); Grace's phone kept: it was changed again since the import
    assert reverted.get_json() == {"deleted": 3, "restored_fields": 2, "kept_fields": 1}
    after = contacts(app)
    assert set(after) == set(before)
    assert after["grace@navy.example"] == ("Grace", "Hopper", "+1 202 555 0199", None,
                                           "Rear Admiral")
    assert cy is not None
    again = client.post(f"/api/v1/import/{run_id}/revert", headers=headers)
    assert again.status_code == 400
    assert again.get_json()["message"] == {"status": ["This import was reverted already."]}


def test_all_or_nothing_writes_nothing_when_a_row_is_bad(site):
    app, client, headers, _ = site
    before = contacts(app)
    status = start(client, headers, CSV, mode="all_or_nothing").get_json()
    assert status["status"] == "failed" and status["errors"] == 2
    assert (status["created"], status["updated"]) == (0, 0)
    assert "nothing was written" in status["message"]
    assert contacts(app) == before
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ImportWrite)) == 0
    report = client.get(f"/api/v1/import/{status['id']}/errors",
                        headers=headers).get_json()["result"]
    assert {r["row"] for r in report} == {3, 5}
    # without the bad rows it goes through in one piece
    good = "\n".join(line for i, line in enumerate(CSV.splitlines()) if i not in (2, 4))
    status = start(client, headers, good, mode="all_or_nothing").get_json()
    assert (status["status"], status["created"], status["updated"]) == ("done", 3, 2)


def test_dry_run_reports_and_writes_nothing(site):
    app, client, headers, _ = site
    before = contacts(app)
    status = start(client, headers, CSV, dry_run=True).get_json()
    assert (status["status"], status["created"], status["updated"], status["errors"]) == (
        "done", 3, 2, 2)
    assert status["message"].startswith("Dry run: 3 would be created, 2 updated, 2 rejected.")
    assert contacts(app) == before
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ImportWrite)) == 0


def test_options_are_checked_before_anything_runs(site):
    app, client, headers, _ = site
    bad = start(client, headers, CSV, mapping={"Nope": "email", "E-mail": "shoe_size"},
                match_on="phone", on_match="merge")
    assert bad.status_code == 400
    message = bad.get_json()["message"]
    assert message["mapping"] == ["No column 'Nope' in the file.",
                                  "Contact has no importable field 'shoe_size'."]
    assert message["match_on"] == ["Map a column to 'phone' to match on it."]
    assert message["on_match"] == ["Choose one of update, skip, create."]
    assert start(client, headers, "", mapping=MAPPING).get_json()["message"] == {
        "file": ["The file has no header row."]}
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ImportRun)) == 0


def test_match_on_phone_skip_matches_and_accounts_by_domain(site):
    app, client, headers, ids = site
    text = "Name,Phone,Website\nNew Co,,https://www.newco.example/about\n" \
           "Analytical Engines Ltd,,http://analytical.example\n"
    status = start(client, headers, text, model="account", match_on="domain",
                   mapping={"Name": "name", "Website": "domain"}).get_json()
    assert (status["created"], status["updated"]) == (1, 1)
    with app.app_context():
        assert db.session.get(Account, ids["account"]).name == "Analytical Engines Ltd"
        assert db.session.scalar(select(Account.domain).where(Account.name == "New Co")) == \
            "newco.example"
    # Grace is matched by her phone written another way; "skip" leaves her alone
    text = "First,Last,Phone\nGrace,Changed,(202) 555-0100\nNew,Person,+1 202 555 0177\n"
    status = start(client, headers, text, match_on="phone", on_match="skip",
                   mapping={"First": "first_name", "Last": "last_name",
                            "Phone": "phone"}).get_json()
    assert (status["created"], status["updated"], status["skipped"]) == (1, 0, 1)
    assert contacts(app)["grace@navy.example"][1] == "Hopper"


def test_xlsx_files_and_saved_mappings_per_source(site):
    from openpyxl import Workbook

    app, client, headers, _ = site
    book = Workbook()
    sheet = book.active
    sheet.append(["Vorname", "Nachname", "Mail", "Telefon"])
    sheet.append(["Hedy", "Lamarr", "hedy@example.com", "030 1234567"])  # a Berlin number
    buffer = io.BytesIO()
    book.save(buffer)
    mapping = {"Vorname": "first_name", "Nachname": "last_name", "Mail": "email",
               "Telefon": "phone"}
    with app.app_context():
        from trellis.settings import update_settings

        update_settings("integrations", {"default_phone_region": "DE"})
    status = start(client, headers, buffer.getvalue(), mapping=mapping, filename="de.xlsx",
                   source="Messe Berlin").get_json()
    assert (status["status"], status["created"]) == ("done", 1)
    assert contacts(app)["hedy@example.com"][2] == "+49301234567"
    with app.app_context():
        saved = db.session.scalar(select(ImportMapping).where(
            ImportMapping.source == "Messe Berlin"))
        assert (saved.model, saved.mapping) == ("contact", mapping)
    preview = client.post("/api/v1/import/preview", headers=headers, data={
        "file": (io.BytesIO(buffer.getvalue()), "again.xlsx"), "model": "contact",
        "source": "Messe Berlin"}, content_type="multipart/form-data").get_json()
    assert preview["header"] == ["Vorname", "Nachname", "Mail", "Telefon"]
    assert preview["rows"] == [["Hedy", "Lamarr", "hedy@example.com", "030 1234567"]]
    assert preview["suggested"] == mapping
    assert preview["total"] == 1


def test_a_plugin_model_is_imported_through_its_rules(trellis_app_factory, api_login):
    """A model with rules (the sales plugin's deals) is written through the ORM, so
    its rules run per row: a lost deal without a reason is rejected with the field."""
    app = trellis_app_factory(plugins=["sales", "integrations"])
    client = app.test_client()
    headers = api_login(client)
    with app.app_context():
        from trellis_sales.models import Stage

        lost = db.session.scalar(select(Stage.id).where(Stage.is_lost.is_(True)))
    text = f"Deal,Amount,Stage\nBig one,1000,\nGone,50,{lost}\nBad amount,lots,\n"
    status = start(client, headers, text, model="deal", match_on="none",
                   mapping={"Deal": "name", "Amount": "amount", "Stage": "stage_id"}).get_json()
    assert (status["created"], status["errors"]) == (1, 2)
    report = client.get(f"/api/v1/import/{status['id']}/errors",
                        headers=headers).get_json()["result"]
    assert [(r["row"], r["field"]) for r in report] == [(3, "lost_reason"), (4, "amount")]
    with app.app_context():
        from trellis_sales.models import Deal, DealStageHistory

        deal = db.session.scalar(select(Deal).where(Deal.name == "Big one"))
        assert deal.stage_id is not None and deal.currency == "EUR"  # the rules' defaults
        assert db.session.scalar(select(func.count()).select_from(DealStageHistory)) == 1

    # an inbound webhook whose target is the sales plugin's leads
    import time

    from trellis_integrations.webhooks import sign

    made = client.post("/api/v1/inbound_source/", headers=headers, json={
        "name": "Web form", "slug": "webform", "target": "lead",
        "mapping": {"last_name": "who.last", "email": "who.email", "company": "org"}})
    assert made.status_code == 201, made.get_json()
    secret = client.get(f"/api/v1/inbound_source/{made.get_json()['id']}",
                        headers=headers).get_json()["result"]["secret"]
    for body, status in ((b'{"who": {"last": "Lee", "email": "lee@example.com"}, "org": "Acme"}',
                          200), (b'{"who": {"email": "nobody@example.com"}}', 400)):
        stamp = int(time.time())
        answer = client.post("/integrations/hooks/webform", data=body, headers={
            "Content-Type": "application/json", "X-Trellis-Timestamp": str(stamp),
            "X-Trellis-Signature": f"v1={sign(secret, stamp, body)}"})
        assert answer.status_code == status, answer.get_json()
    assert answer.get_json()["message"] == {"last_name": ["Missing data for required field."]}
    with app.app_context():
        from trellis_sales.models import Lead

        assert [(lead.last_name, lead.company, lead.owner_id) for lead in
                db.session.scalars(select(Lead))] == [("Lee", "Acme", None)]


def test_cli_import_shows_progress_and_reports(site, tmp_path):
    app, _, _, _ = site
    path = tmp_path / "people.csv"
    path.write_text(CSV)
    runner = app.test_cli_runner()
    maps = [arg for column, field in MAPPING.items() for arg in ("--map", f"{column}={field}")]
    result = runner.invoke(args=["import", str(path), "--model", "contact", *maps,
                                 "--batch-size", "50"])
    assert result.exit_code == 0, result.output
    assert "Importing" in result.output
    assert "created: 3, updated: 2, unchanged: 0, skipped: 0, errors: 2" in result.output
    assert "row 3: email: Not a valid e-mail address." in result.output
    dry = runner.invoke(args=["import", str(path), *maps, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "Dry run: 0 would be created, 2 updated, 2 rejected. Nothing was written." in \
        dry.output
    strict = runner.invoke(args=["import", str(path), *maps, "--all-or-nothing"])
    assert strict.exit_code == 1 and "nothing was written" in strict.output
    first = min(_run_ids(app))
    reverted = runner.invoke(args=["integrations", "revert-import", str(first)])
    assert reverted.exit_code == 0, reverted.output
    assert json.loads(reverted.output)["deleted"] == 3


def _run_ids(app):
    with app.app_context():
        return db.session.scalars(select(ImportRun.id)).all()


@pytest.mark.postgres
def test_all_or_nothing_and_revert_on_postgres(trellis_app_factory, api_login, postgres_url):
    """One transaction with progress written on a side connection (PostgreSQL), then
    a dry run, the real run and its revert."""
    app = trellis_app_factory(plugins=["integrations"], database_url=postgres_url)
    client = app.test_client()
    headers = api_login(client)
    with app.app_context():
        from trellis.settings import update_settings

        update_settings("integrations", {"import_batch_size": 50})
        db.session.add(Contact(first_name="Grace", last_name="Hopper",
                               email="grace@navy.example"))
        db.session.commit()
    rows = "\n".join(f"P,N{n},p{n}@example.com" for n in range(180))
    text = f"First name,Last name,E-mail\n{rows}\nGrace,Hopper-Updated,GRACE@navy.example\n"
    mapping = {"First name": "first_name", "Last name": "last_name", "E-mail": "email"}
    bad = start(client, headers, text + "X,,x@example.com\n", mapping=mapping,
                mode="all_or_nothing").get_json()
    assert (bad["status"], bad["errors"], bad["processed"]) == ("failed", 1, 182)
    assert len(contacts(app)) == 1
    dry = start(client, headers, text, mapping=mapping, dry_run=True).get_json()
    assert (dry["created"], dry["updated"]) == (180, 1) and len(contacts(app)) == 1
    done = start(client, headers, text, mapping=mapping, mode="all_or_nothing").get_json()
    assert (done["status"], done["created"], done["updated"]) == ("done", 180, 1)
    assert contacts(app)["grace@navy.example"][1] == "Hopper-Updated"
    reverted = client.post(f"/api/v1/import/{done['id']}/revert", headers=headers).get_json()
    assert reverted == {"deleted": 180, "restored_fields": 1, "kept_fields": 0}
    assert contacts(app) == {"grace@navy.example": ("Grace", "Hopper", None, None, None)}

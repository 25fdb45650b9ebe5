"""The `trellis` command and the settings form, as an admin uses them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trellis.testing import csrf_token

TRELLIS = str(Path(sys.executable).parent / "trellis")


@pytest.fixture
def cli(tmp_path):
    env = {**os.environ, "TRELLIS_INSTANCE_PATH": str(tmp_path),
           "TRELLIS_PLUGINS": "sales,scoring", "TRELLIS_PLUGIN_STATE_TTL": "0"}
    env.pop("TRELLIS_DATABASE_URL", None)
    env.pop("TRELLIS_REDIS_URL", None)

    def run(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([TRELLIS, *args], env=env, capture_output=True, text=True,
                              timeout=300, input=input)

    result = run("init", "--admin-password", "pw-123456")
    assert result.returncode == 0, result.stderr
    assert "Admin user: admin  password: pw-123456" in result.stdout
    return run


def test_plugins_enable_disable_and_dependencies_from_the_cli(cli):
    rows = {r["name"]: r for r in json.loads(cli("plugins", "list", "--json").stdout)}
    assert rows["scoring"]["enabled"] and rows["scoring"]["depends"] == ["sales"]
    assert rows["sales"]["dependents"] == ["scoring"]
    refused = cli("plugins", "disable", "sales")
    assert refused.returncode == 1
    assert refused.stderr.strip() == ("Error: plugin 'sales' cannot be disabled: enabled "
                                      "plugin(s) 'scoring' depend on it; disable them first")
    assert cli("plugins", "disable", "scoring", "sales").returncode == 0
    listing = cli("plugins", "list").stdout
    assert "sales            0.1.0      disabled" in listing
    assert "scoring          0.1.0      disabled  depends: sales" in listing
    refused = cli("plugins", "enable", "scoring")
    assert refused.stderr.strip() == "Error: plugin 'scoring' depends on 'sales': enable it first"
    assert cli("plugins", "enable", "sales", "scoring").returncode == 0
    info = json.loads(cli("plugins", "info", "sales").stdout)
    assert info["enabled"] is True
    assert {"sales.Deal", "sales.Lead", "sales.Overview"} <= set(info["permissions"])
    assert all(p.startswith("sales.") for p in info["permissions"])
    assert {"lead", "deal", "order", "task"} <= set(info["models"])
    assert cli("plugins", "info", "nope").stderr.strip() == (
        "Error: no plugin named 'nope' is installed")


def test_uninstall_needs_a_disabled_plugin_and_a_confirmation(cli):
    assert "is enabled: disable it before uninstalling" in cli(
        "plugins", "uninstall", "scoring", "--yes").stderr
    assert cli("plugins", "disable", "scoring").returncode == 0
    aborted = cli("plugins", "uninstall", "scoring", input="n\n")
    assert aborted.returncode == 1 and "Aborted!" in aborted.stderr
    assert cli("plugins", "uninstall", "scoring", "--yes").stdout.strip() == "scoring: uninstalled"
    rows = {r["name"]: r for r in json.loads(cli("plugins", "list", "--json").stdout)}
    assert rows["scoring"]["enabled"] is False


def test_settings_from_the_cli_are_validated_per_field(cli):
    bad = cli("settings", "set", "sales", "company_currency=eur", "stale_deal_days=0")
    assert bad.returncode == 1
    assert bad.stderr.splitlines() == [
        "Error: invalid settings",
        "  company_currency: Use an ISO 4217 code, e.g. EUR.",
        "  stale_deal_days: Must be greater than or equal to 1 and less than or equal to 365."]
    assert json.loads(cli("settings", "get", "sales").stdout)["company_currency"] == "EUR"
    assert cli("settings", "set", "sales", "company_currency=USD").returncode == 0
    assert json.loads(cli("settings", "get", "sales").stdout)["company_currency"] == "USD"
    assert "use FIELD=VALUE" in cli("settings", "set", "sales", "oops").stderr
    assert "has no settings" in cli("settings", "get", "nosuchplugin").stderr


def test_demo_fills_the_database_once(cli):
    short = cli("demo", "--users-password", "short")
    assert short.returncode != 0 and "--users-password" in short.stderr
    first = cli("demo", "--contacts", "30", "--users-password", "demo-pass-1")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("Demo data: 12 accounts, 30 contacts, ")
    for part in ("3 sales users", "8 products", "1 follow-up plans", "40 leads", "30 deals"):
        assert part in first.stdout
    assert "already present" in cli("demo").stdout


def test_settings_form_shows_field_errors_and_saves_valid_input(trellis_app_factory, web_login):
    app = trellis_app_factory(plugins=["sales"])
    client = app.test_client()
    web_login(client)
    page = client.get("/settings/sales").get_data(as_text=True)
    token = csrf_token(page)
    response = client.post("/settings/sales", data={
        "csrf_token": token, "company_currency": "euro", "stale_deal_days": "x",
        "lead_response_hours": "4"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Use an ISO 4217 code, e.g. EUR." in html and "Not a valid integer." in html
    assert 'value="euro"' in html  # what the admin typed is kept for correction
    response = client.post("/settings/sales", data={
        "csrf_token": token, "company_currency": "GBP", "stale_deal_days": "21",
        "lead_response_hours": "8", "lead_response_warn_minutes": "30"},
        follow_redirects=True)  # checkbox unticked: False
    assert "Settings saved." in response.get_data(as_text=True)
    with app.app_context():
        from trellis.settings import get_settings

        assert get_settings("sales") == {"company_currency": "GBP", "stale_deal_days": 21,
                                         "lead_response_hours": 8,
                                         "lead_response_warn_minutes": 30,
                                         "create_order_on_won": False}

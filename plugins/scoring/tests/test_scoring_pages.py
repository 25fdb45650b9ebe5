"""The contact page's scoring panel and the tier-filtered list page."""

from __future__ import annotations

import re

from trellis.jobs import execute
from scoring_testkit import four_customers


def panel_html(page: str) -> str:
    match = re.search(r'id="panel-scoring-scores".*?</table>', page, re.S)
    return match.group(0) if match else ""


def test_contact_page_shows_crm_value_tier_and_explanation(trellis_app_factory, web_login,
                                                           make_user):
    app = trellis_app_factory(plugins=["sales", "scoring"])
    ids = four_customers(app)
    web = app.test_client()
    web_login(web)
    before = web.get(f"/contactview/show/{ids['D']}").get_data(as_text=True)
    assert "Not scored yet" in before
    with app.app_context():
        execute("scoring.recompute", {})
    page = web.get(f"/contactview/show/{ids['D']}").get_data(as_text=True)
    panel = panel_html(page)
    assert "64.58" in panel and "high tier" in panel
    # one explanation row per feature: value, score, weight, contribution
    assert re.search(r"Interaction frequency</td>\s*<td[^>]*>2</td>\s*<td[^>]*>50.00</td>\s*"
                     r"<td[^>]*>0.25</td>\s*<td[^>]*>12.50</td>", panel), panel
    assert re.search(r"Purchase amount</td>\s*<td[^>]*>500</td>\s*<td[^>]*>100.00</td>",
                     panel), panel
    assert "Satisfaction (not available)" in panel
    # the list page filters by tier
    high = web.get("/customerscoreview/list/?_flt_3_tier=high").get_data(as_text=True)
    assert "D Customer" in high and "A Customer" not in high
    low = web.get("/customerscoreview/list/?_flt_3_tier=low").get_data(as_text=True)
    assert "C Customer" in low and "D Customer" not in low
    # users without the scoring permission do not get the panel
    make_user(app, "nobody", ["CRM Viewer"])
    other = app.test_client()
    web_login(other, "nobody", "pw-123456")
    assert 'id="panel-scoring-scores"' not in other.get(
        f"/contactview/show/{ids['D']}").get_data(as_text=True)

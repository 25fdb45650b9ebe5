"""List pages stay bounded however many related records there are (bench/: admin pages).

FAB rendered every related record into a list page's filter drop-down (every
account on each contact list page: 2.7 s and 780 kB of HTML at 10,000
accounts); Trellis offers the first ``search_options_limit`` and filtering by
any record's id still works.  Pages have a stable order (id) without one asked.
"""

from __future__ import annotations

import json
import re

import sqlalchemy as sa

from trellis.db import db
from trellis.models import Account, Contact
from trellis.views import TrellisModelView


def _select(page: str, name: str) -> str:
    start = page.index(f'name="{name}"')
    return page[start:page.index("</select>", start)]


def _filter_widget(page: str, column: str) -> str:
    """The HTML of the search form's widget for ``column`` (FAB puts every filter's
    widget into a JSON object in the page's script)."""
    found = [json.loads(m) for m in re.findall(r'\{"%s": ("(?:[^"\\]|\\.)*")' % column, page)]
    widgets = [html for html in found if "<select" in html or "<input" in html]
    assert len(widgets) == 1, f"no filter widget for {column}"
    return widgets[0]


def test_filter_drop_downs_are_bounded_and_any_record_still_filters(trellis_app_factory,
                                                                     web_login):
    app = trellis_app_factory()
    limit = TrellisModelView.search_options_limit
    with app.app_context():
        db.session.execute(sa.insert(Account), [{"name": f"Company {n:04d}"}
                                                for n in range(limit + 100)])
        last = db.session.scalar(sa.select(sa.func.max(Account.id)))
        db.session.add_all([Contact(first_name="Far", last_name="Away", account_id=last),
                            Contact(first_name="Near", last_name="By", account_id=1)])
        db.session.commit()
    client = app.test_client()
    web_login(client)
    page = client.get("/contactview/list/").get_data(as_text=True)
    # the search form's account filter: at most ``limit`` accounts (and the blank)
    options = re.findall(r'<option[^>]*value="(\d+)"', _filter_widget(page, "account"))
    assert 0 < len(options) <= limit
    assert str(last) not in options
    # ... and an account past them still filters the list
    filtered = client.get(f"/contactview/list/?_flt_0_account={last}").get_data(as_text=True)
    assert "Far" in filtered and "Near" not in filtered
    # the add form keeps every account (it validates the choice against its options)
    form = client.get("/contactview/add").get_data(as_text=True)
    assert f'value="{last}"' in _select(form, "account")


def test_list_pages_have_a_stable_order(trellis_app_factory, web_login, postgres_url):
    app = trellis_app_factory(database_url=postgres_url)
    with app.app_context():
        db.session.add_all([Contact(first_name=f"P{n:02d}", last_name="Paged")
                            for n in range(30)])
        db.session.commit()
        # PostgreSQL writes an updated row anew at the end of the table: a scan
        # without ORDER BY now returns P00 last
        first_id = db.session.scalar(sa.select(sa.func.min(Contact.id)))
        db.session.get(Contact, first_id).last_name = "Paged again"
        db.session.commit()
    client = app.test_client()
    web_login(client)
    first = client.get("/contactview/list/").get_data(as_text=True)
    second = client.get("/contactview/list/?page_ContactView=1").get_data(as_text=True)
    names = re.findall(r"P(\d\d)", first) + re.findall(r"P(\d\d)", second)
    ordered = list(dict.fromkeys(names))
    assert ordered == [f"{n:02d}" for n in range(30)]

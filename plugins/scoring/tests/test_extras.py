"""RFM quintiles and segments, and product associations, with hand-computed values."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from trellis.db import db
from trellis.jobs import execute
from trellis.models import Contact
from scoring_testkit import add_order
from trellis_scoring.extras import segment_of
from trellis_scoring.models import Association, CustomerRfm


@pytest.fixture
def app(trellis_app_factory):
    app = trellis_app_factory(plugins=["sales", "scoring"])
    with app.app_context():
        from trellis.settings import update_settings

        update_settings("scoring", {"recompute_on_events": ""})
    return app


def contacts(app, *names) -> dict[str, int]:
    with app.app_context():
        rows = {n: Contact(first_name=n, last_name="Buyer") for n in names}
        db.session.add_all(rows.values())
        db.session.commit()
        return {n: c.id for n, c in rows.items()}


def test_segment_rules():
    assert segment_of(5, 5, 5) == "champions"
    assert segment_of(4, 5, 3) == "loyal"
    assert segment_of(5, 1, 1) == "new customers"
    assert segment_of(1, 5, 5) == "cannot lose them"
    assert segment_of(2, 3, 1) == "at risk"
    assert segment_of(2, 1, 1) == "hibernating"
    assert segment_of(1, 1, 1) == "lost"


def test_rfm_quintiles_and_segments(app, api_login):
    ids = contacts(app, "c1", "c2", "c3", "c4", "c5", "none")
    with app.app_context():
        add_order(ids["c1"], "10", 300)
        add_order(ids["c2"], "20", 200)
        add_order(ids["c2"], "20", 190)
        for days in (50, 40, 30):
            add_order(ids["c3"], "100", days)
        for days in (20, 15, 10, 5):
            add_order(ids["c4"], "100", days)
        add_order(ids["c5"], "1000", 1)
        db.session.commit()
        result = execute("scoring.recompute", {})
    assert result["rfm"] == 5  # "none" never bought: no RFM row
    with app.app_context():
        got = {r.contact_id: (r.r, r.f, r.m, r.segment, r.frequency, float(r.monetary))
               for r in db.session.scalars(select(CustomerRfm))}
    # R by last order (oldest 1): c1 300 d, c2 190, c3 30, c4 5, c5 1 -> 1..5
    # F by orders (ties by id): c1 1, c5 1, c2 2, c3 3, c4 4 -> c1 1, c5 2, c2 3, c3 4, c4 5
    # M by spent: c1 10, c2 40, c3 300, c4 400, c5 1000 -> 1..5
    assert got == {
        ids["c1"]: (1, 1, 1, "lost", 1, 10.0),
        ids["c2"]: (2, 3, 2, "at risk", 2, 40.0),
        ids["c3"]: (3, 4, 3, "loyal", 3, 300.0),
        ids["c4"]: (4, 5, 4, "champions", 4, 400.0),
        ids["c5"]: (5, 2, 5, "potential loyalists", 1, 1000.0),
    }
    client = app.test_client()
    body = client.get(f"/api/v1/scoring/contact/{ids['c4']}",
                      headers=api_login(client)).get_json()
    assert body["rfm"]["segment"] == "champions" and body["rfm"]["frequency"] == 4


def test_associations_support_confidence_lift_and_recommendations(app, api_login, web_login):
    from trellis_sales.models import Product

    ids = contacts(app, "A", "B", "C", "X")
    with app.app_context():
        products = {n: Product(sku=n[:3].upper(), name=n, price=Decimal("1"))
                    for n in ("bread", "butter", "jam", "milk")}
        db.session.add_all(products.values())
        db.session.commit()
        p = {n: x.id for n, x in products.items()}

        def basket(contact, *names, days=10):
            add_order(ids[contact], "0", days, lines=[(p[n], 1, "1") for n in names])

        basket("A", "bread", "butter")
        basket("A", "bread", "butter", "jam")
        basket("B", "bread", "jam")
        basket("C", "milk")
        basket("C", "bread", "butter")
        basket("X", "butter")  # 6 orders: N = 6
        db.session.commit()
        result = execute("scoring.recompute", {})
        rows = {(a.antecedent_name, a.consequent_name):
                (a.orders, round(a.support, 4), round(a.confidence, 4), round(a.lift, 4))
                for a in db.session.scalars(select(Association))}
    # n(bread) 4, n(butter) 4, n(jam) 2, n(milk) 1; N 6; pairs seen in at least 2 orders:
    # bread+butter 3: support 3/6, confidence 3/4 both ways, lift 3·6/(4·4) = 1.125
    # bread+jam 2: support 2/6; bread->jam 2/4, jam->bread 2/2; lift 2·6/(4·2) = 1.5
    # butter+jam 1 order only: left out
    assert rows == {
        ("bread", "butter"): (3, 0.5, 0.75, 1.125),
        ("butter", "bread"): (3, 0.5, 0.75, 1.125),
        ("bread", "jam"): (2, 0.3333, 0.5, 1.5),
        ("jam", "bread"): (2, 0.3333, 1.0, 1.5),
    }
    assert result["associations"] == 4
    client = app.test_client()
    body = client.get(f"/api/v1/scoring/contact/{ids['X']}",
                      headers=api_login(client)).get_json()
    assert body["recommendations"] == [{"product_id": p["bread"], "product_name": "bread",
                                        "lift": 1.125, "confidence": 0.75, "support": 0.5}]
    # B bought bread and jam: butter is recommended (via bread), jam is not (owned)
    body = client.get(f"/api/v1/scoring/contact/{ids['B']}",
                      headers=api_login(client)).get_json()
    assert [r["product_name"] for r in body["recommendations"]] == ["butter"]
    web = app.test_client()
    web_login(web)
    page = web.get(f"/contactview/show/{ids['X']}").get_data(as_text=True)
    assert "scoring-recommendations" in page and "bread" in page
    assert "lift 1.12" in page or "lift 1.13" in page

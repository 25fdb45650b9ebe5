"""Customer data shared through core hooks: purchase lines, features and actions,
as the sales plugin offers them, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from trellis import actions, features, purchases
from trellis.db import db, utcnow
from trellis.models import Activity, Contact, ExchangeRate, Tag
from trellis.specs import FeatureSpec
from trellis import hookimpl
from trellis.specs import Manifest


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shop(request, trellis_app_factory, make_user):
    """Three contacts: Ana (two orders: one with lines, one USD total-only), Bo
    (one order), Cy (none); a USD rate of 0.9 from 2026-01-01."""
    from trellis_sales.models import Order, OrderLine, Product

    database_url = request.getfixturevalue("postgres_url") if request.param == "postgres" \
        else None
    app = trellis_app_factory(plugins=["sales"], database_url=database_url)
    rep = make_user(app, "rep", ["Sales Rep"])
    with app.app_context():
        ana = Contact(first_name="Ana", last_name="A", owner_id=rep)
        bo = Contact(first_name="Bo", last_name="B")
        cy = Contact(first_name="Cy", last_name="C")
        kettle = Product(sku="K", name="Kettle", price=Decimal("30"), currency="EUR")
        mug = Product(sku="M", name="Mug", price=Decimal("5"), currency="EUR")
        db.session.add_all([ana, bo, cy, kettle, mug,
                            ExchangeRate(currency="USD", rate=Decimal("0.9"),
                                         valid_from=utc(2026, 1, 1).date())])
        db.session.flush()
        first = Order(contact_id=ana.id, ordered_at=utc(2026, 2, 1), currency="EUR",
                      lines=[OrderLine(product_id=kettle.id, quantity=1),
                             OrderLine(product_id=mug.id, quantity=4)])
        second = Order(contact_id=ana.id, ordered_at=utc(2026, 5, 1), currency="USD",
                       total=Decimal("100"))
        third = Order(contact_id=bo.id, ordered_at=utc(2026, 3, 1), currency="EUR",
                      lines=[OrderLine(product_id=mug.id, quantity=2)])
        db.session.add_all([first, second, third])
        db.session.add_all([Activity(type="call", contact_id=ana.id,
                                     occurred_at=utcnow() - timedelta(days=d))
                            for d in (1, 10, 200)])
        db.session.commit()
        ids = {"ana": ana.id, "bo": bo.id, "cy": cy.id, "kettle": kettle.id, "mug": mug.id,
               "first": first.id, "second": second.id, "rep": rep}
    return app, ids


def test_purchase_lines_cover_lines_and_line_less_orders_in_company_currency(shop):
    app, ids = shop
    with app.app_context():
        p = purchases.lines().subquery()
        rows = db.session.execute(select(p.c.contact_id, p.c.order_id, p.c.product_name,
                                         p.c.quantity, p.c.amount)
                                  .order_by(p.c.ordered_at, p.c.product_name)).all()
    got = [(c, o, name, q, Decimal(a).quantize(Decimal("0.01"))) for c, o, name, q, a in rows]
    assert got == [
        (ids["ana"], ids["first"], "Kettle", 1, Decimal("30.00")),
        (ids["ana"], ids["first"], "Mug", 4, Decimal("20.00")),
        (ids["bo"], ids["first"] + 2, "Mug", 2, Decimal("10.00")),
        (ids["ana"], ids["second"], None, 1, Decimal("90.00")),  # 100 USD at 0.9
    ]


def test_features_by_name_hand_computed(shop):
    app, ids = shop
    with app.app_context():
        total = features.values(db.session, "purchase_total")
        count = features.values(db.session, "purchase_count")
        last = features.values(db.session, "last_purchase_at")
        recent = features.values(db.session, "interactions_90d")
        names = [f.name for f in features.all()]
    assert {k: Decimal(v).quantize(Decimal("0.01")) for k, v in total.items()} == {
        ids["ana"]: Decimal("140.00"), ids["bo"]: Decimal("10.00")}
    assert count == {ids["ana"]: 2, ids["bo"]: 1}
    assert {k: v.date() if hasattr(v, "date") else v for k, v in last.items()}[ids["ana"]] \
        .isoformat().startswith("2026-05-01")
    assert recent == {ids["ana"]: 2}
    assert {"purchase_total", "purchase_count", "interactions_90d",
            "days_since_last_interaction"} <= set(names)


def test_features_of_a_disabled_plugin_are_not_offered(shop):
    from trellis import lifecycle

    app, _ = shop
    with app.app_context():
        lifecycle.disable(app.extensions["trellis"], "sales")
        assert features.get("purchase_total") is None
        assert features.query("purchase_total") is None
        with pytest.raises(KeyError, match="purchase_total"):
            features.values(db.session, "purchase_total")
        p = purchases.lines().subquery()
        assert db.session.scalar(select(func.count()).select_from(p)) == 0
        assert actions.get("sales.create_task") is None


def test_core_and_sales_actions_run_set_based_with_validated_params(shop):
    from trellis_sales.models import Task

    app, ids = shop
    with app.app_context():
        s = db.session
        assert actions.run(s, "core.add_tag", "contact", [ids["ana"], ids["bo"]],
                           {"tag": "VIP"}) == {"tagged": 2}
        assert actions.run(s, "core.add_tag", "contact", [ids["ana"], ids["cy"]],
                           {"tag": "VIP"}) == {"tagged": 1}  # Ana had it already
        assert actions.run(s, "core.remove_tag", "contact", [ids["bo"]],
                           {"tag": "VIP"}) == {"untagged": 1}
        s.commit()
        vip = s.scalar(select(Tag).where(Tag.name == "VIP"))
        assert sorted(c.id for c in s.scalars(select(Contact).where(Contact.tags.contains(vip)))) \
            == [ids["ana"], ids["cy"]]
        # an order's contact gets the tag
        assert actions.run(s, "core.add_tag", "order", [ids["second"]],
                           {"tag": "Buyer"}) == {"tagged": 1}
        assert actions.run(s, "core.update_field", "contact", [ids["cy"]],
                           {"field": "title", "value": "CTO"}) == {"updated": 1}
        assert actions.run(s, "sales.create_task", "contact", [ids["ana"], ids["cy"]],
                           {"subject": "Call back", "kind": "call", "due_in_days": 2}) \
            == {"tasks": 2}
        s.commit()
        tasks = s.execute(select(Task.contact_id, Task.owner_id, Task.kind, Task.origin)
                          .order_by(Task.contact_id)).all()
        assert tasks == [(ids["ana"], ids["rep"], "call", "automation"),
                         (ids["cy"], None, "call", "automation")]
        assert s.get(Contact, ids["cy"]).title == "CTO"


BAD_ACTIONS = [
    ("core.add_tag", "contact", {}, "tag"),
    ("core.add_tag", "contact", {"tag": ""}, "tag"),
    ("sales.create_task", "contact", {"subject": "x", "kind": "fax"}, "kind"),
    ("sales.create_task", "contact", {"subject": "x", "due_in_days": -1}, "due_in_days"),
    ("sales.create_task", "product", {"subject": "x"}, "action"),
    ("nope.nothing", "contact", {}, "action"),
    ("core.update_field", "contact", {"field": "email", "value": "not-an-address"}, "value"),
    ("core.update_field", "contact", {"field": "password", "value": "x"}, "field"),
    ("core.add_tag", "contact", ["VIP"], "params"),
]


def test_bad_action_input_names_the_field_and_changes_nothing(trellis_app_factory):
    app = trellis_app_factory(plugins=["sales"])
    with app.app_context():
        contact = Contact(first_name="Ana", last_name="A", email="ana@example.com")
        db.session.add(contact)
        db.session.commit()
        for name, model, params, field in BAD_ACTIONS:
            with pytest.raises(actions.ActionError) as err:
                actions.run(db.session, name, model, [contact.id], params)
            assert field in err.value.messages, (name, params, err.value.messages)
            db.session.rollback()
        assert db.session.scalar(select(func.count()).select_from(Tag)) == 0
        assert db.session.get(Contact, contact.id).email == "ana@example.com"


class _Clash:
    """A plugin offering a feature name the sales plugin already has."""

    @hookimpl
    def trellis_manifest(self):
        return Manifest(label="Clash", depends=["sales"])

    @hookimpl
    def trellis_customer_features(self):
        return [FeatureSpec("purchase_total", "Mine", lambda: None)]


def test_a_feature_name_offered_twice_fails_the_second_plugin_naming_both(trellis_app_factory):
    app = trellis_app_factory(plugins=["sales"], extra_plugins=[("clash", _Clash())])
    plugin = app.extensions["trellis"].plugins.by_name["clash"]
    assert plugin.error and "'purchase_total'" in plugin.error and "'sales'" in plugin.error
    with app.app_context():
        assert features.plugin_of("purchase_total") == "sales"

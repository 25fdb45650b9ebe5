"""Trellis Scoring: CRM value, RFM, lead scoring, churn risk, lifetime value and recommendations.

Where things are: ``models.py`` (tables), ``engine.py`` (normalisation and
weighted models, pure numpy), ``compute.py`` (full set-based recompute and
incremental updates), ``customer_data.py`` (features offered to other
plugins), ``extras.py`` (RFM, lifetime value, churn, associations),
``web.py`` (views and REST APIs), ``panels.py`` (the panel on the contact page),
``handlers.py`` (events that rescore a customer).
See plugins/scoring/README.md and docs/scoring.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from marshmallow import ValidationError, Schema, fields, validate, validates_schema

from trellis import hookimpl
from trellis.overview import overview_api, overview_view
from trellis.specs import Manifest, ModelSpec, RoleSpec, ViewSpec

__version__ = "0.1.0"

#: Events that rescore the customer they concern (fnmatch patterns).
DEFAULT_RECOMPUTE_ON = ("order.created,order.updated,*rating*.created,*survey*.updated,"
                        "*feedback*.created")


class ScoringSettings(Schema):
    high_tier_from = fields.Float(
        load_default=70.0, validate=validate.Range(min=0, max=100),
        metadata={"label": "CRM value from which a customer is high tier"})
    medium_tier_from = fields.Float(
        load_default=40.0, validate=validate.Range(min=0, max=100),
        metadata={"label": "CRM value from which a customer is medium tier"})
    recompute_on_events = fields.String(
        load_default=DEFAULT_RECOMPUTE_ON, validate=validate.Length(max=1000),
        metadata={"label": "Events that rescore their customer (comma-separated patterns)"})
    association_min_orders = fields.Integer(
        load_default=2, validate=validate.Range(min=1, max=100000),
        metadata={"label": "Orders a product pair needs before it is recommended"})
    lead_half_life_days = fields.Float(
        load_default=30.0, validate=validate.Range(min=0.1, max=3650),
        metadata={"label": "Days after which a lead's behaviour points count half"})
    lead_qualify_from = fields.Float(
        load_default=50.0, validate=validate.Range(min=0, max=100),
        metadata={"label": "Lead score (0–100) at which a lead is qualified"})
    churn_horizon_days = fields.Integer(
        load_default=90, validate=validate.Range(min=7, max=730),
        metadata={"label": "Churned: no purchase for this many days (churn model horizon)"})
    clv_discount_rate = fields.Float(
        load_default=0.10, validate=validate.Range(min=0, max=1),
        metadata={"label": "Yearly discount rate of the lifetime value estimate"})

    @validates_schema
    def _tiers_ordered(self, data, **kwargs):
        if data.get("medium_tier_from", 0) >= data.get("high_tier_from", 100):
            raise ValidationError("must be below high_tier_from", field_name="medium_tier_from")


@hookimpl
def trellis_manifest() -> Manifest:
    return Manifest(label="Scoring", description="CRM value, RFM, lead scoring, churn risk, lifetime value and recommendations.",
                    depends=['sales'], soft_depends=['service'], icon="fa-star")


@hookimpl
def trellis_settings_schema() -> type[Schema]:
    return ScoringSettings


@hookimpl
def trellis_models() -> list[ModelSpec]:
    from trellis.models import Contact
    from trellis_scoring import models as m
    from trellis_scoring import web

    return [
        ModelSpec(m.ScoringModel, "scoring_model", "Scoring model", searchable=("name",),
                  before_save=web.model_before_save, validate=web.model_validate),
        ModelSpec(m.ScoringTerm, "scoring_term", "Scoring model term",
                  before_save=web.term_before_save, validate=web.term_validate),
        ModelSpec(m.CustomerScore, "customer_score", "Customer score", audited=False,
                  contact_field="contact_id", parent=("contact_id", Contact)),
        ModelSpec(m.ScoreHistory, "score_history", "Score history", audited=False,
                  contact_field="contact_id", parent=("contact_id", Contact)),
        ModelSpec(m.ScoringRun, "scoring_run", "Scoring run", audited=False),
        ModelSpec(m.CustomerRfm, "customer_rfm", "Customer RFM", audited=False,
                  contact_field="contact_id", parent=("contact_id", Contact)),
        ModelSpec(m.Association, "product_association", "Product association", audited=False),
        ModelSpec(m.LeadRule, "lead_rule", "Lead scoring rule", validate=web.lead_rule_validate),
        ModelSpec(m.LeadSignal, "lead_signal", "Lead signal", audited=False),
        ModelSpec(m.LeadScore, "lead_score", "Lead score", audited=False),
        ModelSpec(m.ChurnModel, "churn_model", "Churn model", audited=False),
        ModelSpec(m.CustomerValue, "customer_value", "Customer value", audited=False,
                  contact_field="contact_id", parent=("contact_id", Contact)),
    ]


@hookimpl
def trellis_views() -> list[ViewSpec]:
    from trellis_scoring import web

    return [
        ViewSpec(web.CustomerScoreView, "Customer scores", icon="fa-star-half-alt"),
        ViewSpec(web.ScoreHistoryView, "Score history", icon="fa-history"),
        ViewSpec(web.RfmView, "RFM segments", icon="fa-th"),
        ViewSpec(web.AssociationView, "Bought together", icon="fa-link"),
        ViewSpec(web.LeadScoreView, "Lead scores", icon="fa-user-check"),
        ViewSpec(web.ScoringModelView, "Scoring models", icon="fa-sliders-h"),
        ViewSpec(web.LeadRuleView, "Lead scoring rules", icon="fa-list-ol"),
        ViewSpec(web.ScoringTermView),
        ViewSpec(overview_view("scoring"), "Scoring overview", icon="fa-star"),
    ]


@hookimpl
def trellis_apis() -> list[type]:
    from trellis_scoring import web

    return [web.ScoringModelApi, web.ScoringTermApi, web.CustomerScoreApi, web.ScoreHistoryApi,
            web.AssociationApi, web.LeadRuleApi, web.LeadScoreApi, web.ScoresApi,
            overview_api("scoring")]


READ = ["scoring.CustomerScore", "scoring.ScoreHistory", "scoring.Scores", "scoring.Overview",
        "scoring.CustomerRfm", "scoring.Association", "scoring.LeadScore"]
ADMIN = ["scoring.ScoringModel", "scoring.ScoringTerm", "scoring.Scores", "scoring.LeadRule"]


@hookimpl
def trellis_roles() -> list[RoleSpec]:
    read = [("can_read", r) for r in READ]
    return [
        RoleSpec("CRM User", read),
        RoleSpec("Sales Rep", read),
        RoleSpec("Sales Manager", read),
        RoleSpec("Manager", read + [("can_read", "scoring.ScoringModel"),
                                    ("can_read", "scoring.ScoringTerm")]),
        RoleSpec("Scoring Admin", read + [(p, r) for r in ADMIN
                                          for p in ("can_read", "can_write")]),
    ]


@hookimpl
def trellis_jobs() -> list:
    from trellis.specs import JobSpec
    from trellis_scoring import compute, leads

    return [JobSpec("scoring.recompute", compute.recompute_all, timeout=1800,
                    description="recompute every customer's scores (set-based)"),
            JobSpec("scoring.recompute_contacts", compute.recompute_contacts,
                    description="rescore a few customers after an order, rating or activity"),
            JobSpec("scoring.lead_scores", leads.score_leads,
                    description="score leads (profile fit + decaying behaviour)"),
            JobSpec("scoring.sweep_activities", compute.sweep_activities,
                    description="rescore the customers with new timeline activities")]


@hookimpl
def trellis_schedules() -> list:
    from trellis.specs import ScheduleSpec

    return [ScheduleSpec("scoring.recompute", cron="30 2 * * *"),
            ScheduleSpec("scoring.sweep_activities", interval=15),
            ScheduleSpec("scoring.lead_scores", interval=3600)]


@hookimpl
def trellis_event_handlers() -> list:
    from trellis.specs import EventHandler
    from trellis_scoring.handlers import rescore_on_event, score_lead_on_event

    return [EventHandler("*", rescore_on_event), EventHandler("*", score_lead_on_event)]


@hookimpl
def trellis_customer_features() -> list:
    from trellis_scoring.customer_data import features

    return features()


@hookimpl
def trellis_record_panels() -> list:
    from trellis_scoring.panels import panels

    return panels()


@hookimpl
def trellis_actions() -> list:
    from trellis_scoring.customer_data import actions

    return actions()


@hookimpl
def trellis_migrations() -> str:
    return str(Path(__file__).parent / "migrations" / "versions")

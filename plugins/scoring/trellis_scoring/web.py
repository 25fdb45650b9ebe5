"""Admin views and REST APIs of the scoring plugin.

* ``Scoring models`` (``scoring.ScoringModel``, ``scoring.ScoringTerm``): the
  weighted models and their terms — features, weights, normalisation — for
  admins.  Every save is checked by the term rules (:func:`term_validate`).
* ``Customer scores`` (``scoring.CustomerScore``): every customer's current
  score per model, filterable by model, tier and value; ``Score history``.
* ``/api/v1/scoring/contact/<id>``: a contact's scores with the explanation of
  each (feature value, normalised score, weight, contribution) and history;
  ``POST /api/v1/scoring/recompute`` queues the full recompute.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import request
from flask_appbuilder.api import BaseApi, expose, safe
from flask_appbuilder.security.decorators import permission_name, protect
from marshmallow import Schema, fields, validate
from sqlalchemy import func, inspect, select
from sqlalchemy.orm import object_session

from trellis import features, rules
from trellis.api import model_api
from trellis.datamodel import TrellisSQLAInterface
from trellis.db import db
from trellis.models import Contact
from trellis.views import TrellisModelView
from trellis_scoring import engine
from trellis_scoring.models import (DIRECTIONS, LEAD_FIELDS, LEAD_RULE_KINDS, METHODS,
                                    Association, CustomerRfm, CustomerScore, LeadRule, LeadScore,
                                    ScoreHistory, ScoringModel, ScoringRun, ScoringTerm)

# ------------------------------------------------------------------ rules


def term_before_save(session: Any, term: ScoringTerm, action: str) -> None:
    """Defaults of the columns a client may leave out (the API's optional columns)."""
    term.method = term.method or "percentile"
    term.direction = term.direction or "higher"
    term.position = term.position if term.position is not None else 0
    term.missing_score = term.missing_score if term.missing_score is not None else 0.0
    if term.cap_percentile is None and action == "created":
        term.cap_percentile = 95.0


def term_validate(term: ScoringTerm) -> dict[str, list[str]]:
    """Model rule of a term, on every save: a registered number feature (when
    the feature is set or changed), a
    non-negative weight, a known method and direction, sane bounds, and a model
    whose weights do not all become 0."""
    errors: dict[str, list[str]] = {}
    state = inspect(term)
    # a term may keep a feature whose plugin is disabled (it is then left out);
    # a new or changed feature must be on offer
    check_feature = state.transient or state.pending or state.attrs["feature"].history.has_changes()
    spec = features.get(term.feature or "")
    if not check_feature:
        pass
    elif spec is None:
        errors["feature"] = [f"No enabled plugin offers the feature {term.feature!r}."]
    elif spec.kind != "number":
        errors["feature"] = [f"{term.feature!r} is a {spec.kind} feature; a score needs a number."]
    if term.weight is None or float(term.weight) < 0:
        errors["weight"] = ["Must not be negative."]
    if term.method not in METHODS:
        errors["method"] = [f"Must be one of: {', '.join(METHODS)}."]
    if term.direction not in DIRECTIONS:
        errors["direction"] = [f"Must be one of: {', '.join(DIRECTIONS)}."]
    if term.cap_percentile is not None and not 0 < float(term.cap_percentile) <= 100:
        errors["cap_percentile"] = ["Must be above 0 and at most 100."]
    if term.floor is not None and term.cap is not None and float(term.cap) <= float(term.floor):
        errors["cap"] = ["Must be greater than the floor."]
    if term.missing_score is not None and not 0 <= float(term.missing_score) <= 100:
        errors["missing_score"] = ["Must be between 0 and 100."]
    if "weight" not in errors and float(term.weight or 0) == 0:
        session = object_session(term)
        model_id = term.model_id or (term.model.id if term.model is not None else None)
        if session is not None and model_id is not None:
            with session.no_autoflush:
                others = session.scalar(select(func.coalesce(func.sum(ScoringTerm.weight), 0))
                                        .where(ScoringTerm.model_id == model_id,
                                               ScoringTerm.id != (term.id or 0)))
            if not others:
                errors["weight"] = ["The model's weights must not all be 0."]
    return errors


def model_before_save(session: Any, model: ScoringModel, action: str) -> None:
    if model.active is None:
        model.active = True


def model_validate(model: ScoringModel) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    import re

    if not re.match(r"^[a-z][a-z0-9_]{1,49}$", model.key or ""):
        errors["key"] = ["Use 2–50 lower-case letters, digits or _, starting with a letter."]
    if not (model.name or "").strip():
        errors["name"] = ["Missing data for required field."]
    return errors


def lead_rule_validate(rule: LeadRule) -> dict[str, list[str]]:
    """Model rule of a lead scoring rule, on every save."""
    errors: dict[str, list[str]] = {}
    if rule.kind not in LEAD_RULE_KINDS:
        errors["kind"] = [f"Must be one of: {', '.join(LEAD_RULE_KINDS)}."]
    elif rule.kind == "profile":
        if rule.field not in LEAD_FIELDS:
            errors["field"] = [f"A profile rule matches one of: {', '.join(LEAD_FIELDS)}."]
        if not (rule.value or "").strip():
            errors["value"] = ["A profile rule needs a value to match (* for any text)."]
    elif not (rule.field or "").strip():
        errors["field"] = ["Name the signal, e.g. demo.requested."]
    if rule.points is None or not -100 <= float(rule.points) <= 100:
        errors["points"] = ["Must be between -100 and 100."]
    return errors


class TermSchema(Schema):
    """Input rules the API checks before the model rules (same messages)."""

    weight = fields.Float(required=True, validate=validate.Range(
        min=0, error="Must not be negative."))
    method = fields.String(validate=validate.OneOf(METHODS, error=f"Must be one of: "
                                                                   f"{', '.join(METHODS)}."))
    direction = fields.String(validate=validate.OneOf(
        DIRECTIONS, error=f"Must be one of: {', '.join(DIRECTIONS)}."))
    cap_percentile = fields.Float(allow_none=True, validate=validate.Range(
        min=0, max=100, min_inclusive=False, error="Must be above 0 and at most 100."))
    missing_score = fields.Float(validate=validate.Range(min=0, max=100,
                                                         error="Must be between 0 and 100."))


# ------------------------------------------------------------------ views


class ScoringTermView(TrellisModelView):
    datamodel = TrellisSQLAInterface(ScoringTerm)
    list_columns = ["model", "position", "feature", "label", "weight", "method", "direction",
                    "floor", "cap", "cap_percentile", "missing_score"]
    add_columns = edit_columns = show_columns = list_columns
    base_order = ("position", "asc")
    description_columns = {
        "feature": "the name of a number feature (see the scoring overview for the list)",
        "weight": "not negative; the model's weights are divided by their sum",
        "method": "percentile (percentile rank) or minmax (capped min-max)",
        "direction": "higher (more is better) or lower (less is better)",
        "cap_percentile": "minmax: cap at this percentile of the values unless a cap is set",
        "missing_score": "the score (0–100) of a customer without a value",
    }


class ScoringModelView(TrellisModelView):
    datamodel = TrellisSQLAInterface(ScoringModel)
    list_columns = ["key", "name", "active", "created_on"]
    add_columns = edit_columns = ["key", "name", "description", "active"]
    show_columns = ["key", "name", "description", "active", "created_on"]
    related_views = [ScoringTermView]


class CustomerScoreView(TrellisModelView):
    datamodel = TrellisSQLAInterface(CustomerScore)
    #: also where the contact panel's template lives (scoring/panel.html)
    template_folder = str(Path(__file__).parent / "templates")
    base_permissions = ["can_read"]
    list_columns = ["contact", "model", "value", "tier", "computed_at"]
    show_columns = ["contact", "model", "value", "tier", "computed_at", "run"]
    # no contact filter: its picker would list every contact
    search_columns = ["model", "tier", "value", "computed_at"]
    base_order = ("value", "desc")
    label_columns = {"value": "Score (0–100)"}


class ScoreHistoryView(TrellisModelView):
    datamodel = TrellisSQLAInterface(ScoreHistory)
    base_permissions = ["can_read"]
    list_columns = ["contact", "model", "value", "tier", "computed_at"]
    search_columns = ["model", "tier", "computed_at"]
    base_order = ("computed_at", "desc")


class RfmView(TrellisModelView):
    datamodel = TrellisSQLAInterface(CustomerRfm)
    base_permissions = ["can_read"]
    list_columns = ["contact", "segment", "r", "f", "m", "recency_days", "frequency",
                    "monetary", "computed_at"]
    search_columns = ["segment", "r", "f", "m", "frequency", "monetary"]
    label_columns = {"r": "R", "f": "F", "m": "M", "recency_days": "Days since last order",
                     "frequency": "Orders", "monetary": "Spent"}
    base_order = ("monetary", "desc")


class AssociationView(TrellisModelView):
    datamodel = TrellisSQLAInterface(Association)
    base_permissions = ["can_read"]
    list_columns = ["antecedent_name", "consequent_name", "orders", "support", "confidence",
                    "lift"]
    search_columns = ["antecedent_name", "consequent_name", "orders", "lift"]
    label_columns = {"antecedent_name": "Bought", "consequent_name": "Also bought"}
    base_order = ("lift", "desc")


class LeadRuleView(TrellisModelView):
    datamodel = TrellisSQLAInterface(LeadRule)
    list_columns = add_columns = edit_columns = show_columns = ["kind", "field", "value",
                                                                "points"]
    description_columns = {
        "kind": "profile (a lead field) or behaviour (a signal, decaying over time)",
        "field": f"profile: one of {', '.join(LEAD_FIELDS)}; behaviour: the signal, "
                 "e.g. demo.requested",
        "value": "profile: the value to match, * as wildcard, ignoring case",
        "points": "-100 to 100",
    }


class LeadScoreView(TrellisModelView):
    datamodel = TrellisSQLAInterface(LeadScore)
    base_permissions = ["can_read"]
    list_columns = ["lead_id", "score", "profile_points", "behaviour_points", "qualified_at",
                    "computed_at"]
    search_columns = ["score", "qualified_at"]
    base_order = ("score", "desc")


# ------------------------------------------------------------------ APIs


def _api(model: type, name: str, columns: list[str], **kwargs: Any) -> type:
    return model_api(model, name, columns, tag=f"Scoring: {model.__name__}s", **kwargs)


ScoringModelApi = _api(ScoringModel, "scoring_model", ["key", "name", "description", "active"],
                       read_only=["created_on"], optional_columns=["active"])
ScoringTermApi = _api(ScoringTerm, "scoring_term",
                      ["model_id", "position", "feature", "label", "weight", "method",
                       "direction", "floor", "cap", "cap_percentile", "missing_score"],
                      schema=TermSchema,
                      optional_columns=["position", "method", "direction", "cap_percentile",
                                        "missing_score"])
CustomerScoreApi = _api(CustomerScore, "customer_score",
                        ["model_id", "contact_id", "value", "tier", "computed_at", "run_id",
                         "explanation"],
                        search=["model_id", "contact_id", "value", "tier", "computed_at"],
                        include_route_methods={"get_list", "get", "info"})
ScoreHistoryApi = _api(ScoreHistory, "score_history",
                       ["model_id", "contact_id", "value", "tier", "computed_at", "run_id"],
                       search=["model_id", "contact_id", "tier", "computed_at"],
                       include_route_methods={"get_list", "get", "info"})

AssociationApi = _api(Association, "product_association",
                      ["antecedent_id", "consequent_id", "antecedent_name", "consequent_name",
                       "orders", "support", "confidence", "lift", "computed_at"],
                      include_route_methods={"get_list", "get", "info"})

LeadRuleApi = _api(LeadRule, "lead_rule", ["kind", "field", "value", "points"],
                   validators_columns={
                       "kind": validate.OneOf(LEAD_RULE_KINDS, error=f"Must be one of: "
                                              f"{', '.join(LEAD_RULE_KINDS)}."),
                       "points": validate.Range(min=-100, max=100,
                                                error="Must be between -100 and 100.")})


class LeadScoreApi(BaseApi):
    """``/api/v1/lead_score/<lead_id>``: a lead's score and its parts."""

    resource_name = "lead_score"
    class_permission_name = "scoring.LeadScore"
    method_permission_name = {"get": "read"}
    allow_browser_login = True
    openapi_spec_tag = "Scoring: lead scores"

    @expose("/<int:lead_id>", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def get(self, lead_id: int):
        """A lead's score: profile points, decayed behaviour points, qualified_at.
        ---
        get:
          parameters:
          - {in: path, name: lead_id, schema: {type: integer}}
          responses:
            200: {description: "lead_id, score, profile_points, behaviour_points, qualified_at"}
            404: {$ref: '#/components/responses/404'}
        """
        from trellis_scoring.leads import lead_model

        lead = lead_model()
        if lead_id > 2**31 - 1 or db.session.scalar(rules.restrict(
                select(lead.id).where(lead.id == lead_id), lead)) is None:
            return self.response_404()
        row = db.session.get(LeadScore, lead_id)
        if row is None:
            return self.response_404()
        return self.response(200, lead_id=lead_id, score=row.score,
                             profile_points=row.profile_points,
                             behaviour_points=row.behaviour_points,
                             qualified_at=row.qualified_at.isoformat() if row.qualified_at
                             else None)


class SignalSchema(Schema):
    lead_id = fields.Integer(required=True, validate=validate.Range(min=1, max=2**31 - 1))
    kind = fields.String(required=True, validate=validate.Length(min=1, max=64))
    occurred_at = fields.AwareDateTime(load_default=None, allow_none=True)


def contact_scores(contact_id: int, history: int = 20) -> list[dict[str, Any]]:
    """Every model's current score of one contact, explained, with recent history."""
    rows = db.session.execute(
        select(CustomerScore, ScoringModel, ScoringRun)
        .join(ScoringModel, ScoringModel.id == CustomerScore.model_id)
        .outerjoin(ScoringRun, ScoringRun.id == CustomerScore.run_id)
        .where(CustomerScore.contact_id == contact_id)
        .order_by(ScoringModel.id)).all()
    out = []
    for score, model, run in rows:
        past = db.session.execute(
            select(ScoreHistory.computed_at, ScoreHistory.value, ScoreHistory.tier)
            .where(ScoreHistory.contact_id == contact_id, ScoreHistory.model_id == model.id)
            .order_by(ScoreHistory.computed_at.desc(), ScoreHistory.id.desc())
            .limit(history)).all()
        out.append({
            "model": model.key, "model_name": model.name, "value": float(score.value),
            "tier": score.tier, "computed_at": score.computed_at.isoformat(),
            "run_id": score.run_id,
            "explanation": engine.explain(run.terms if run else [], score.explanation or []),
            "history": [{"computed_at": at.isoformat(), "value": float(v), "tier": t}
                        for at, v, t in past]})
    return out


class ScoresApi(BaseApi):
    """``/api/v1/scoring/``: explained scores of a contact, and the recompute."""

    resource_name = "scoring"
    class_permission_name = "scoring.Scores"
    method_permission_name = {"contact": "read", "recompute": "write", "lead_signal": "write"}
    allow_browser_login = True
    openapi_spec_tag = "Scoring: scores"

    @expose("/contact/<int:contact_id>", methods=["GET"])
    @protect()
    @safe
    @permission_name("contact")
    def contact(self, contact_id: int):
        """A contact's scores, each explained (value, normalised score, weight,
        contribution per feature), with their recent history.
        ---
        get:
          parameters:
          - {in: path, name: contact_id, schema: {type: integer}}
          responses:
            200: {description: "result: [{model, value, tier, explanation, history}]"}
            404: {$ref: '#/components/responses/404'}
        """
        if contact_id > 2**31 - 1:
            return self.response_404()
        visible = db.session.scalar(rules.restrict(select(Contact.id)
                                                   .where(Contact.id == contact_id), Contact))
        if visible is None:
            return self.response_404()
        from trellis_scoring import extras

        return self.response(200, result=contact_scores(contact_id),
                             **extras.contact_extras(contact_id))

    @expose("/recompute", methods=["POST"])
    @protect()
    @safe
    @permission_name("recompute")
    def recompute(self):
        """Queue the full recompute of every active model (or ``models``).
        ---
        post:
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    models: {type: array, items: {type: string}}
          responses:
            202: {description: queued}
            400: {$ref: '#/components/responses/400'}
        """
        from trellis.jobs import enqueue

        body = request.get_json(silent=True) or {}
        models = body.get("models") if isinstance(body, dict) else None
        if models is not None:
            if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
                return self.response_400(message={"models": ["Must be a list of model keys."]})
            known = set(db.session.scalars(select(ScoringModel.key)))
            unknown = [m for m in models if m not in known]
            if unknown:
                return self.response_400(message={"models": [
                    f"No scoring model {', '.join(map(repr, unknown))}."]})
        enqueue("scoring.recompute", models=models)
        return self.response(202, message="queued")

    @expose("/lead_signal", methods=["POST"])
    @protect()
    @safe
    @permission_name("lead_signal")
    def lead_signal(self):
        """Record what a lead did (``kind``: e.g. demo.requested) and rescore it.
        ---
        post:
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    lead_id: {type: integer}
                    kind: {type: string}
                    occurred_at: {type: string, format: date-time}
          responses:
            201: {description: recorded}
            400: {$ref: '#/components/responses/400'}
        """
        from marshmallow import ValidationError

        from trellis.jobs import enqueue
        from trellis_scoring.leads import lead_model, record_signal

        body = request.get_json(silent=True)
        try:
            data = SignalSchema().load(body if isinstance(body, dict) else {})
        except ValidationError as exc:
            return self.response_400(message=exc.messages)
        lead = lead_model()
        if db.session.scalar(rules.restrict(select(lead.id).where(lead.id == data["lead_id"]),
                                            lead)) is None:
            return self.response_400(message={"lead_id": [f"No lead with id {data['lead_id']}."]})
        signal = record_signal(data["lead_id"], data["kind"], data["occurred_at"])
        db.session.commit()
        enqueue("scoring.lead_scores", lead_ids=[data["lead_id"]])
        return self.response(201, id=signal.id)

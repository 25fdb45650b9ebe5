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
from trellis_scoring.models import (DIRECTIONS, METHODS, CustomerScore, ScoreHistory,
                                    ScoringModel, ScoringRun, ScoringTerm)

# ------------------------------------------------------------------ rules


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


def model_validate(model: ScoringModel) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    import re

    if not re.match(r"^[a-z][a-z0-9_]{1,49}$", model.key or ""):
        errors["key"] = ["Use 2–50 lower-case letters, digits or _, starting with a letter."]
    if not (model.name or "").strip():
        errors["name"] = ["Missing data for required field."]
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
    method_permission_name = {"contact": "read", "recompute": "write"}
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

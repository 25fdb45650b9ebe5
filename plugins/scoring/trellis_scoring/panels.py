"""The scoring panel on the contact page: CRM value, tier and its explanation
(each feature's value, normalised score, weight and contribution), the other
models' scores, and the extra scores (RFM, lifetime value, churn risk,
recommendations) once computed."""

from __future__ import annotations

from typing import Any

from flask import render_template

from trellis.specs import PanelSpec
from trellis_scoring.models import CRM_VALUE


def scores_panel(record: Any) -> str | None:
    from trellis_scoring import extras
    from trellis_scoring.web import contact_scores

    scores = contact_scores(record.id, history=5)
    more = extras.contact_extras(record.id)
    if not scores and not any(more.values()):
        return render_template("scoring/panel.html", crm=None, others=[], more={},
                               empty=True)
    crm = next((s for s in scores if s["model"] == CRM_VALUE), None)
    others = [s for s in scores if s["model"] != CRM_VALUE]
    return render_template("scoring/panel.html", crm=crm, others=others, more=more,
                           empty=False)


def panels() -> list[PanelSpec]:
    return [PanelSpec("scores", "Scoring: CRM value, tier and why", scores_panel,
                      models=("contact",), permission=("can_read", "scoring.CustomerScore"),
                      order=30)]

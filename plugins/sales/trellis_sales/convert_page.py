"""The lead's *Convert* page: the web form of lead conversion
(:func:`trellis_sales.conversion.convert_lead`, also ``POST
/api/v1/lead/<id>/convert``).

The *Convert lead* action on a lead's page (``can_write`` on ``sales.Lead``)
leads to ``/leadconvert/convert/<id>``: deal name, amount and pipeline (or no
deal), then the contact's page, with what was matched and what was created.
Someone who may not see the lead gets 404.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_appbuilder import BaseView, action, expose, has_access
from flask_wtf import FlaskForm
from sqlalchemy import select

from trellis.db import db
from trellis.i18n import person_name
from trellis.validation import RecordInvalid
from trellis_sales.conversion import convert_lead
from trellis_sales.models import Lead, Pipeline
from trellis_sales.plans import visible

HERE = Path(__file__).parent


class ConvertForm(FlaskForm):
    """CSRF only; the fields are read from the posted form."""


class ConvertLeadAction:
    """Mixin for the lead view: a *Convert lead* action on the lead's page."""

    def __init__(self, **kwargs: Any) -> None:
        self.method_permission_name = {**self.method_permission_name, "convert_lead": "write"}
        super().__init__(**kwargs)

    @action("convert_lead", "Convert lead", icon="fa-exchange-alt", multiple=False)
    def convert_lead(self, items: Any):
        item = items[0] if isinstance(items, list) and len(items) == 1 else items
        if item is None or isinstance(item, list):
            abort(404)
        return redirect(url_for("LeadConvertView.convert", pk=item.id))


def _form_values() -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The conversion options from the posted form, and field errors."""
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {"create_deal": request.form.get("create_deal") == "y",
                              "deal_name": (request.form.get("deal_name") or "").strip() or None,
                              "amount": None, "pipeline_id": None}
    raw_amount = (request.form.get("amount") or "").strip()
    if raw_amount:
        try:
            values["amount"] = Decimal(raw_amount)
            if not values["amount"].is_finite():
                raise InvalidOperation
        except InvalidOperation:
            errors["amount"] = [_("Not a valid number.")]
    raw_pipeline = request.form.get("pipeline_id") or ""
    if raw_pipeline:
        if not raw_pipeline.isdigit():
            errors["pipeline_id"] = [_("No such pipeline.")]
        else:
            values["pipeline_id"] = int(raw_pipeline)
    return values, errors


def _converted_message(result: Any) -> str:
    """The flash message after a conversion: what was matched and what was created."""
    contact = result.contact.name
    parts = [_("contact %(name)s (new)", name=contact) if result.contact_created
             else _("contact %(name)s (existing)", name=contact)]
    if result.account is not None:
        account = result.account.name
        parts.append(_("account %(name)s (new)", name=account) if result.account_created
                     else _("account %(name)s (existing)", name=account))
    if result.deal is not None:
        parts.append(_("deal %(name)s", name=result.deal.name))
    listed = parts[0]
    for part in parts[1:]:  # the language's own list separator
        listed = _("%(first)s, %(next)s", first=listed, next=part)
    return _("Lead converted: %(parts)s.", parts=listed)


class LeadConvertView(BaseView):
    """``/leadconvert/convert/<id>``: convert one lead from the web UI."""

    route_base = "/leadconvert"
    class_permission_name = "sales.Lead"
    template_folder = str(HERE / "templates")
    default_view = "index"
    method_permission_name = {"convert": "write", "index": "write"}

    @expose("/")
    @has_access
    def index(self):
        return redirect(url_for("LeadView.list"))

    @expose("/convert/<int:pk>", methods=["GET", "POST"])
    @has_access
    def convert(self, pk: int):
        lead = visible(Lead, pk)
        if lead is None:
            abort(404)
        form = ConvertForm()
        errors: dict[str, list[str]] = {}
        values: dict[str, Any] = {"create_deal": True, "deal_name": None, "amount": None,
                                  "pipeline_id": None}
        if request.method == "POST":
            values, errors = _form_values()
            if not form.validate_on_submit():
                errors = {"_form": [_("The form expired; please try again.")]}
            elif not errors:
                try:
                    result = convert_lead(lead, **values)
                    db.session.commit()
                except RecordInvalid as exc:
                    db.session.rollback()
                    errors = exc.messages  # type: ignore[assignment]
                else:
                    flash(_converted_message(result), "success")
                    return redirect(url_for("ContactView.show", pk=result.contact.id))
        pipelines = db.session.scalars(select(Pipeline).order_by(
            Pipeline.is_default.desc(), Pipeline.name)).all()
        person = person_name(lead.first_name, lead.last_name)
        default_name = _("%(name)s deal", name=lead.company or person)
        return self.render_template(
            "sales/convert_lead.html", lead=lead, form=form, errors=errors, values=values,
            pipelines=pipelines, default_name=default_name,
            back=url_for("LeadView.show", pk=pk)), 400 if errors else 200

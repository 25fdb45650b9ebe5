"""The pipeline board: one kanban page per pipeline, one column per stage.

Column figures (number of deals, total and weighted total per currency) come
from one grouped query; each column shows at most :data:`CARDS_PER_COLUMN`
cards (the most recently updated), with a link to the filtered deal list for
the rest.  Everything goes through the record rules (``rules.restrict``), so
counts and totals cover only the deals the user may see.

Dragging a card calls the deal REST API (``PUT /api/v1/deal/<id>``) from the
browser with the session cookie, so a move is checked exactly like the edit
form: ``can_write`` on ``sales.Deal``, the record rule, the model rules (a
lost deal needs a reason) and the stage history.  The page itself only reads.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import abort, jsonify, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import exists, func, select

from trellis import rules
from trellis.db import db
from trellis.i18n import format_number
from trellis.models import Account
from trellis_sales.models import Deal, Pipeline, Stage

HERE = Path(__file__).resolve().parent
#: Cards rendered per column; the rest are reached through the deal list.
CARDS_PER_COLUMN = 50
CENT = Decimal("0.01")


def _money(value: Any) -> str:
    """An amount with two decimals, grouped for the user's locale (``1,234.50``)."""
    return format_number(Decimal(value or 0).quantize(CENT), 2)


def _pipelines() -> list[Pipeline]:
    """Every pipeline, the default one first."""
    return list(db.session.scalars(
        select(Pipeline).order_by(Pipeline.is_default.desc(), Pipeline.id)))


def _stages(pipeline_id: int) -> list[Stage]:
    return list(db.session.scalars(
        select(Stage).where(Stage.pipeline_id == pipeline_id)
        .order_by(Stage.position, Stage.id)))


def _visible(stmt: Any, pipeline_id: int, owner_id: int | None) -> Any:
    """Deals of the pipeline the user may see (and of ``owner_id`` when given)."""
    stmt = rules.restrict(stmt.where(Deal.pipeline_id == pipeline_id), Deal)
    if owner_id is not None:
        stmt = stmt.where(Deal.owner_id == owner_id)
    return stmt


def column_figures(pipeline_id: int, owner_id: int | None = None) -> dict[int, dict[str, Any]]:
    """``{stage_id: {"count": n, "totals": [{currency, amount, weighted}]}}`` for
    the deals the current user may see, in one grouped query.  Amounts in
    different currencies are never added together."""
    stmt = _visible(
        select(Deal.stage_id, Deal.currency, func.count(Deal.id),
               func.sum(Deal.amount), func.sum(Deal.amount * Deal.probability))
        .group_by(Deal.stage_id, Deal.currency)
        .order_by(Deal.stage_id, Deal.currency),
        pipeline_id, owner_id)
    out: dict[int, dict[str, Any]] = defaultdict(lambda: {"count": 0, "totals": []})
    for stage_id, currency, count, amount, weighted in db.session.execute(stmt):
        column = out[stage_id]
        column["count"] += count
        column["totals"].append({
            "currency": currency,
            "amount": Decimal(amount or 0).quantize(CENT),
            "weighted": (Decimal(weighted or 0) / 100).quantize(CENT),
        })
    return out


def column_cards(pipeline_id: int, stage_id: int, owner_id: int | None,
                 limit: int) -> list[dict[str, Any]]:
    """The ``limit`` most recently updated deals of one column, as card data
    (read backwards from the index ``ix_sales_deal_stage_updated``: no sort of
    the column's deals)."""
    stmt = _visible(
        select(Deal.id, Deal.name, Deal.amount, Deal.currency, Deal.probability,
               Deal.expected_close, Deal.owner_id, Account.name.label("account"),
               User.first_name, User.last_name)
        .outerjoin(Account, Deal.account_id == Account.id)
        .outerjoin(User, Deal.owner_id == User.id)
        .where(Deal.stage_id == stage_id)
        .order_by(Deal.updated_on.desc(), Deal.id.desc())
        .limit(limit),
        pipeline_id, owner_id)
    return [{
        "id": row.id,
        "name": row.name,
        "account": row.account,
        "amount": _money(row.amount),
        "currency": row.currency,
        "probability": row.probability,
        "expected_close": row.expected_close.isoformat() if row.expected_close else None,
        "owner": " ".join(p for p in (row.first_name, row.last_name) if p) or None,
    } for row in db.session.execute(stmt)]


def assignable_owners() -> list[tuple[int, str]]:
    """The users whose deals the current user may filter the board by."""
    ids = rules.visible_owner_ids()
    stmt = select(User.id, User.first_name, User.last_name).order_by(
        User.first_name, User.last_name, User.id)
    if ids is None:
        # EXISTS: one index probe (ix_sales_deal_owner) per user, not a DISTINCT
        # over every deal
        stmt = stmt.where(exists().where(Deal.owner_id == User.id))
    else:
        stmt = stmt.where(User.id.in_(ids))
    return [(uid, f"{first or ''} {last or ''}".strip() or f"#{uid}")
            for uid, first, last in db.session.execute(stmt)]


def _shown_totals(column: dict[str, Any]) -> list[dict[str, str]]:
    """A column's totals as the page shows them (``1,234.50``)."""
    return [{"currency": t["currency"], "amount": _money(t["amount"]),
             "weighted": _money(t["weighted"])} for t in column["totals"]]


def _json_figures(figures: dict[int, dict[str, Any]], stages: list[Stage]) -> list[dict]:
    empty = {"count": 0, "totals": []}
    return [{"stage_id": stage.id, "count": figures.get(stage.id, empty)["count"],
             "totals": _shown_totals(figures.get(stage.id, empty))} for stage in stages]


class PipelineBoardView(BaseView):
    """``/sales/board/``: the kanban board of a pipeline."""

    route_base = "/sales/board"
    default_view = "index"
    template_folder = str(HERE / "templates")
    #: Shares ``sales.Deal`` with the deal form and API: whoever may read deals
    #: sees the board; ``can_write`` decides whether cards can be dragged.  Both
    #: are listed so FAB's permission sync never drops ``can_write`` from the
    #: resource (it removes a resource's permissions a view does not list).
    class_permission_name = "Deal"
    method_permission_name = {"index": "read", "pipeline": "read", "figures": "read"}
    base_permissions = ["can_read", "can_write"]

    def create_blueprint(self, appbuilder: Any, endpoint: str | None = None,
                         static_folder: str | None = None) -> Any:
        # The board's JS and CSS are served by Trellis from the plugin package.
        return super().create_blueprint(appbuilder, endpoint,
                                        static_folder or str(HERE / "static"))

    # ---------------------------------------------------------------- helpers

    def _owner_arg(self) -> tuple[int | None, dict[str, list[str]]]:
        raw = (request.args.get("owner") or "").strip()
        if not raw:
            return None, {}
        try:
            owner_id = int(raw)
        except ValueError:
            return None, {"owner": ["Not a valid user id."]}
        ids = rules.visible_owner_ids()
        if ids is not None and owner_id not in ids:
            return None, {"owner": [f"No user with id {owner_id}."]}
        return owner_id, {}

    def _deal_list_url(self, pipeline_id: int, stage_id: int, owner_id: int | None) -> str:
        args = {"_flt_0_pipeline": pipeline_id, "_flt_0_stage": stage_id}
        if owner_id is not None:
            args["_flt_0_owner"] = owner_id
        return url_for("DealView.list") + "?" + urlencode(args)

    # ---------------------------------------------------------------- pages

    @expose("/")
    @has_access
    def index(self) -> Any:
        pipelines = _pipelines()
        return self._render(pipelines, pipelines[0] if pipelines else None)

    @expose("/<int:pipeline_id>")
    @has_access
    def pipeline(self, pipeline_id: int) -> Any:
        pipelines = _pipelines()
        current = next((p for p in pipelines if p.id == pipeline_id), None)
        if current is None:
            abort(404)
        return self._render(pipelines, current)

    def _render(self, pipelines: list[Pipeline], current: Pipeline | None) -> Any:
        owner_id, errors = self._owner_arg()
        if errors:
            return self.render_template("sales/board_error.html", errors=errors), 400
        columns = []
        if current is not None:
            figures = column_figures(current.id, owner_id)
            for stage in _stages(current.id):
                column = figures.get(stage.id, {"count": 0, "totals": []})
                cards = column_cards(current.id, stage.id, owner_id, CARDS_PER_COLUMN)
                columns.append({
                    "stage": stage,
                    "count": column["count"],
                    "totals": _shown_totals(column),
                    "cards": cards,
                    "more": column["count"] - len(cards),
                    "list_url": self._deal_list_url(current.id, stage.id, owner_id),
                })
        owners = assignable_owners()
        return self.render_template(
            "sales/board.html",
            pipelines=pipelines,
            current=current,
            columns=columns,
            owners=owners if len(owners) > 1 else [],
            owner_id=owner_id,
            can_write=self.appbuilder.sm.has_access("can_write", self.class_permission_name),
            cards_per_column=CARDS_PER_COLUMN,
        )

    @expose("/<int:pipeline_id>/figures")
    @has_access
    def figures(self, pipeline_id: int) -> Any:
        """The column figures as JSON, re-read by the page after a move."""
        if db.session.get(Pipeline, pipeline_id) is None:
            return jsonify(message="Not found"), 404
        owner_id, errors = self._owner_arg()
        if errors:
            return jsonify(message=errors), 400
        stages = _stages(pipeline_id)
        return jsonify(pipeline_id=pipeline_id, owner_id=owner_id,
                       columns=_json_figures(column_figures(pipeline_id, owner_id), stages))

"""The notification inbox and "My preferences": web pages and REST APIs.

Everything here shows and changes only the **current user's** rows, whatever
their roles: an admin's inbox is theirs alone.  That is a filter on
``user_id`` (not a record rule, which would give ``all`` users everybody's).
"""

from __future__ import annotations

from typing import Any
from zoneinfo import available_timezones

from flask import abort, flash, g, redirect, request, session, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.api import BaseApi, safe
from flask_appbuilder.models.sqla.filters import FilterEqualFunction
from flask_appbuilder.security.decorators import permission_name, protect
from flask_babel import gettext as _
from flask_babel import lazy_gettext, refresh
from marshmallow import Schema, ValidationError, fields
from sqlalchemy import select

from trellis.admin import ActionForm
from trellis.api import API_PERMISSIONS, TrellisModelApi
from trellis.datamodel import TrellisSQLAInterface
from trellis.db import db
from trellis.models import Notification, UserPreference
from trellis.notifications import _safe_link, mark_read, unread_count

#: Resources of the two features (the core's CRM User and CRM Viewer get both).
NOTIFICATION = "core.Notification"
PREFERENCE = "core.Preference"
PAGE_SIZE = 50


def current_user_id() -> int | None:
    user = getattr(g, "user", None)
    return user.id if getattr(user, "is_authenticated", False) else None


def _own(pk: int) -> Notification | None:
    return db.session.scalar(select(Notification).where(
        Notification.id == pk, Notification.user_id == current_user_id()))


# ------------------------------------------------------------------ preferences


def _language(value: str | None) -> None:
    from flask import current_app

    from trellis.i18n import LANGUAGES

    offered = current_app.config.get("LANGUAGES", LANGUAGES)
    if value is not None and value not in offered:
        raise ValidationError(f"Unknown language; use one of {', '.join(offered)}.")


def _timezone(value: str | None) -> None:
    if value is not None and value not in available_timezones():
        raise ValidationError("Unknown time zone; use a name such as Europe/Berlin.")


class PreferenceSchema(Schema):
    email_notifications = fields.Boolean(
        metadata={"label": lazy_gettext("E-mail me my notifications")})
    locale = fields.String(allow_none=True, validate=_language,
                           metadata={"label": lazy_gettext("Language")})
    timezone = fields.String(allow_none=True, validate=_timezone,
                             metadata={"label": lazy_gettext("Time zone")})


def preferences(user_id: int) -> dict[str, Any]:
    pref = db.session.get(UserPreference, user_id)
    return {"email_notifications": bool(pref and pref.email_notifications),
            "locale": pref.locale if pref else None,
            "timezone": pref.timezone if pref else None}


def save_preferences(user_id: int, data: Any) -> dict[str, Any]:
    """Validate ``data`` (some of the fields) and store it; raises ``ValidationError``."""
    if not isinstance(data, dict):
        raise ValidationError({"_schema": ["The body must be a JSON object."]})
    values = PreferenceSchema().load(data, partial=True)
    pref = db.session.get(UserPreference, user_id) or UserPreference(
        user_id=user_id, email_notifications=False)
    for name, value in values.items():
        setattr(pref, name, bool(value) if name == "email_notifications" else value or None)
    db.session.add(pref)
    db.session.commit()
    return preferences(user_id)


# ------------------------------------------------------------------ web pages


class NotificationsView(BaseView):
    """The current user's notifications: open one (marks it read), mark read."""

    route_base = "/notifications"
    default_view = "list"
    class_permission_name = NOTIFICATION
    method_permission_name = {"list": "read", "open": "read", "read": "write"}

    @expose("/")
    @has_access
    def list(self):
        user_id = current_user_id()
        page = max(request.args.get("page", 0, type=int), 0)
        unread_only = request.args.get("unread") == "1"
        stmt = select(Notification).where(Notification.user_id == user_id)
        if unread_only:
            stmt = stmt.where(Notification.read_at.is_(None))
        rows = db.session.scalars(stmt.order_by(Notification.id.desc())
                                  .limit(PAGE_SIZE + 1).offset(page * PAGE_SIZE)).all()
        return self.render_template(
            "trellis/notifications.html", rows=rows[:PAGE_SIZE], page=page,
            more=len(rows) > PAGE_SIZE, unread_only=unread_only,
            unread=unread_count(db.session, user_id), form=ActionForm())

    @expose("/open/<int:pk>")
    @has_access
    def open(self, pk: int):
        note = _own(pk)
        if note is None:
            abort(404)
        mark_read(db.session, note.user_id, [note.id])
        db.session.commit()
        try:
            link = _safe_link(note.link)
        except ValueError:
            link = None
        return redirect(link or url_for(".list"))

    @expose("/read", methods=["POST"])
    @has_access
    def read(self):
        """Mark the ticked notifications (``id``) or ``all`` of them read."""
        if not ActionForm().validate_on_submit():
            flash(_("The form expired; please try again."), "danger")
            return redirect(url_for(".list"))
        ids = None if request.form.get("all") else [
            int(v) for v in request.form.getlist("id") if v.isdigit()]
        count = mark_read(db.session, current_user_id(), ids)
        db.session.commit()
        flash(_("Marked %(count)s notification(s) read.", count=count), "success")
        return redirect(url_for(".list"))


class PreferencesView(BaseView):
    """My preferences: e-mail notifications, language, time zone."""

    route_base = "/preferences"
    default_view = "show"
    class_permission_name = PREFERENCE
    method_permission_name = {"show": "read", "save": "write"}

    def _page(self, values: dict[str, Any], errors: dict[str, Any], form: Any) -> Any:
        from flask import current_app

        from trellis.i18n import LANGUAGES

        return self.render_template("trellis/preferences.html", values=values, errors=errors,
                                    form=form, schema=PreferenceSchema(),
                                    languages=current_app.config.get("LANGUAGES", LANGUAGES))

    @expose("/", methods=["GET"])
    @has_access
    def show(self):
        return self._page(preferences(current_user_id()), {}, ActionForm())

    @expose("/", methods=["POST"])
    @has_access
    def save(self):
        form = ActionForm()
        submitted = {"email_notifications": request.form.get("email_notifications") is not None,
                     "locale": request.form.get("locale", "").strip() or None,
                     "timezone": request.form.get("timezone", "").strip() or None}
        if not form.validate_on_submit():
            return self._page(submitted, {"_form": [_("The form expired; please try again.")]},
                              form)
        try:
            saved = save_preferences(current_user_id(), submitted)
        except ValidationError as exc:
            db.session.rollback()
            return self._page(submitted, exc.messages, form)  # type: ignore[arg-type]
        # the navbar's language menu (the session) agrees with the stored choice
        session.pop("locale", None)
        if saved["locale"]:
            session["locale"] = saved["locale"]
        refresh()
        flash(_("Preferences saved."), "success")
        return redirect(url_for(".show"))


# ------------------------------------------------------------------ REST APIs


class NotificationApi(TrellisModelApi):
    """``/api/v1/notification/``: the caller's own notifications, newest first;
    ``POST /<id>/read`` and ``POST /read`` (``{"ids": [...]}`` or ``{"all": true}``)."""

    resource_name = "notification"
    datamodel = TrellisSQLAInterface(Notification)
    class_permission_name = NOTIFICATION
    base_filters = [["user_id", FilterEqualFunction, current_user_id]]
    include_route_methods = {"get_list", "get", "info", "read_one", "read_many"}
    method_permission_name = {**API_PERMISSIONS, "read_one": "write", "read_many": "write"}
    list_columns = show_columns = ["id", "created_on", "plugin", "kind", "subject", "body",
                                   "link", "read_at", "emailed_at"]
    search_columns = ["id", "plugin", "kind", "read_at", "created_on"]
    order_columns = ["id", "created_on"]
    base_order = ("id", "desc")
    openapi_spec_tag = "Notifications"

    def pre_get_list(self, data: dict[str, Any]) -> None:
        super().pre_get_list(data)
        data["unread"] = unread_count(db.session, current_user_id())

    @expose("/<int:pk>/read", methods=["POST"])
    @protect()
    @safe
    @permission_name("read_one")
    def read_one(self, pk: int):
        """Mark one of my notifications read.
        ---
        post:
          parameters:
          - {in: path, name: pk, schema: {type: integer}}
          responses:
            200: {description: The notification is read}
            404: {$ref: '#/components/responses/404'}
        """
        note = _own(pk)
        if note is None:
            return self.response_404()
        mark_read(db.session, note.user_id, [pk])
        db.session.commit()
        db.session.refresh(note)
        return self.response(200, id=note.id, read_at=note.read_at.isoformat())

    @expose("/read", methods=["POST"])
    @protect()
    @safe
    @permission_name("read_many")
    def read_many(self):
        """Mark several (``ids``) or ``all`` of my notifications read.
        ---
        post:
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    ids: {type: array, items: {type: integer}}
                    all: {type: boolean}
          responses:
            200: {description: How many were marked read}
            400: {$ref: '#/components/responses/400'}
        """
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return self.response_400(message={"_schema": ["The body must be a JSON object."]})
        ids = body.get("ids")
        if body.get("all") is True:
            ids = None
        elif not isinstance(ids, list) or not ids or not all(
                isinstance(i, int) and not isinstance(i, bool) for i in ids):
            return self.response_400(message={"ids": ["Give a list of notification ids, "
                                                      "or \"all\": true."]})
        count = mark_read(db.session, current_user_id(), ids)
        db.session.commit()
        return self.response(200, count=count,
                             unread=unread_count(db.session, current_user_id()))


class PreferencesApi(BaseApi):
    """``/api/v1/preferences/``: the caller's own preferences."""

    resource_name = "preferences"
    class_permission_name = PREFERENCE
    method_permission_name = {"get": "read", "put": "write"}
    allow_browser_login = True
    openapi_spec_tag = "Preferences"

    @expose("/", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def get(self):
        """My preferences.
        ---
        get:
          responses:
            200: {description: email_notifications, locale, timezone}
        """
        return self.response(200, result=preferences(current_user_id()))

    @expose("/", methods=["PUT"])
    @protect()
    @safe
    @permission_name("put")
    def put(self):
        """Change some of my preferences; 400 with per-field errors.
        ---
        put:
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    email_notifications: {type: boolean}
                    locale: {type: string}
                    timezone: {type: string}
          responses:
            200: {description: The stored preferences}
            400: {$ref: '#/components/responses/400'}
        """
        try:
            return self.response(200, result=save_preferences(
                current_user_id(), request.get_json(silent=True)))
        except ValidationError as exc:
            db.session.rollback()
            return self.response_400(message=exc.messages)



def unread_badge() -> dict[str, Any]:
    """Template context for the navbar's bell: the signed-in user's unread count
    (``None`` when signed out or without ``can_read`` on notifications)."""
    from flask import current_app

    user_id = current_user_id()
    if user_id is None or not current_app.appbuilder.sm.has_access("can_read", NOTIFICATION):
        return {"trellis_unread": None}
    try:
        return {"trellis_unread": unread_count(db.session, user_id)}
    except Exception:  # noqa: BLE001 - a badge must never break a page
        db.session.rollback()
        return {"trellis_unread": None}

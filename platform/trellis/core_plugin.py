"""The core's own features, registered through the same hooks as any plugin
(like Datasette's default plugins), so the hook API is exercised every day."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask_appbuilder import IndexView
from marshmallow import Schema, fields, validate
from wtforms.validators import Optional, Regexp

from trellis import __version__ as core_version
from trellis import hookimpl

from trellis.admin import (
    ApiKeyAdminView,
    AuditApi,
    RoleScopeView,
    TeamView,
    AuditView,
    PluginsApi,
    PluginsView,
    SettingsApi,
    SettingsView,
)
from trellis.api import TrellisModelApi, model_api
from trellis import currency, customer, dashboard, reportviews
from trellis import businesshours, consent, duplicates, outbox_views, privacy, savedviews
from trellis import two_factor
from trellis import customfield_conditions, customfield_views
from trellis.automation import engine as automation
from trellis.automation import views as automation_views
from trellis.datamodel import TrellisSQLAInterface
from trellis.events import run_event_handler
from trellis.health import health
from trellis.models import Account, Activity, Contact, Note, Tag
from trellis import notification_views as inbox
from trellis.notifications import EMAIL_JOB, email_notifications
from trellis.search import SearchApi, SearchView
from trellis.specs import BlueprintSpec, JobSpec, Manifest, ModelSpec, RoleSpec, ViewSpec
from trellis.specs import ScheduleSpec
from trellis.views import TrellisModelView

#: Read by the plugin loader, like every plugin module's ``__version__``.
__version__ = core_version

# ----------------------------------------------------------------- validation

NAME = [validate.Length(min=1, error="Must not be empty."), validate.Length(max=100)]
EMAIL = [validate.Email(error="Not a valid e-mail address."), validate.Length(max=255)]
COUNTRY = [validate.Regexp(r"^[A-Z]{2}$", error="Use a two-letter ISO country code, e.g. DE.")]
DOMAIN = [validate.Regexp(r"^[a-z0-9.-]+\.[a-z]{2,}$", error="Not a valid domain, e.g. acme.com.")]


class AccountSchema(Schema):
    id = fields.Integer(dump_only=True)
    name = fields.String(required=True, validate=[validate.Length(min=1, error="Must not be empty."),
                                                  validate.Length(max=200)])
    domain = fields.String(allow_none=True, validate=DOMAIN)
    industry = fields.String(allow_none=True, validate=validate.Length(max=100))
    phone = fields.String(allow_none=True, validate=validate.Length(max=50))
    country = fields.String(allow_none=True, validate=COUNTRY)
    owner_id = fields.Integer(allow_none=True)
    created_on = fields.DateTime(dump_only=True)
    updated_on = fields.DateTime(dump_only=True)


class ContactSchema(Schema):
    id = fields.Integer(dump_only=True)
    first_name = fields.String(required=True, validate=NAME)
    last_name = fields.String(required=True, validate=NAME)
    email = fields.String(allow_none=True, validate=EMAIL)
    phone = fields.String(allow_none=True, validate=validate.Length(max=50))
    title = fields.String(allow_none=True, validate=validate.Length(max=100))
    national_id = fields.String(allow_none=True, validate=validate.Length(max=64),
                                metadata={"description": "stored encrypted"})
    account_id = fields.Integer(allow_none=True)
    owner_id = fields.Integer(allow_none=True)
    created_on = fields.DateTime(dump_only=True)
    updated_on = fields.DateTime(dump_only=True)


# ----------------------------------------------------------------- views & APIs


class HomeView(IndexView):
    index_template = "trellis/index.html"


class CustomerPage:
    """Contact and account record pages are the Customer 360 pages
    (:mod:`trellis.customer`): identity, the plugins' panels, the merged timeline."""

    show_template = "trellis/customer.html"

    def show_context(self, model: str, item: Any) -> dict[str, Any]:
        from trellis import customer

        context = super().show_context(model, item)  # type: ignore[misc]
        if self.appbuilder.sm.has_access("can_read", "core.Activity"):  # type: ignore[attr-defined]
            context.update(customer.page_context(item))
        return {**context, "customer_kind": model}


class ContactView(CustomerPage, TrellisModelView):
    datamodel = TrellisSQLAInterface(Contact)
    list_columns = ["first_name", "last_name", "email", "account", "owner"]
    search_columns = ["first_name", "last_name", "email", "phone", "account", "tags"]
    add_columns = edit_columns = ["first_name", "last_name", "email", "phone", "title",
                                  "national_id", "account", "owner", "tags"]
    show_columns = add_columns + ["created_on", "updated_on"]
    label_columns = {"national_id": "National ID"}
    description_columns = {"national_id": "Stored encrypted; never written to the audit log."}
    validators_columns = {
        "email": [Optional(), Regexp(r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
                                     message="Not a valid e-mail address.")],
    }


class AccountView(CustomerPage, TrellisModelView):
    datamodel = TrellisSQLAInterface(Account)
    list_columns = ["name", "domain", "industry", "country", "owner"]
    search_columns = ["name", "domain", "industry", "country"]
    add_columns = edit_columns = ["name", "domain", "industry", "phone", "country", "owner"]
    related_views = [ContactView]


class ActivityView(TrellisModelView):
    datamodel = TrellisSQLAInterface(Activity)
    list_columns = ["occurred_at", "type", "subject", "contact", "account", "plugin"]
    search_columns = ["type", "subject", "contact", "account", "plugin", "occurred_at"]
    add_columns = edit_columns = ["type", "subject", "occurred_at", "contact", "account"]
    base_order = ("occurred_at", "desc")


class NoteView(TrellisModelView):
    datamodel = TrellisSQLAInterface(Note)
    list_columns = ["created_on", "contact", "account", "body"]
    add_columns = edit_columns = ["body", "contact", "account"]
    search_columns = ["body", "contact", "account"]


class TagView(TrellisModelView):
    datamodel = TrellisSQLAInterface(Tag)
    list_columns = add_columns = edit_columns = ["name", "color"]


CONTACT_COLUMNS = ["first_name", "last_name", "email", "phone", "title", "national_id",
                   "account_id", "owner_id"]
ACCOUNT_COLUMNS = ["name", "domain", "industry", "phone", "country", "owner_id"]

ContactApi = model_api(Contact, "contact", CONTACT_COLUMNS, schema=ContactSchema,
                       search=["first_name", "last_name", "email", "phone", "account_id",
                               "owner_id"])
AccountApi = model_api(Account, "account", ACCOUNT_COLUMNS, schema=AccountSchema,
                       search=["name", "domain", "industry", "country", "owner_id"])


class ActivityApi(TrellisModelApi):
    resource_name = "activity"
    datamodel = TrellisSQLAInterface(Activity)
    list_columns = show_columns = ["id", "type", "subject", "occurred_at", "contact_id",
                                   "account_id", "plugin", "user_id", "payload"]
    add_columns = edit_columns = ["type", "subject", "occurred_at", "contact_id", "account_id",
                                  "payload"]
    search_columns = ["type", "contact_id", "account_id", "plugin", "occurred_at"]
    order_columns = ["id", "occurred_at"]
    base_order = ("occurred_at", "desc")


class NoteApi(TrellisModelApi):
    resource_name = "note"
    datamodel = TrellisSQLAInterface(Note)
    list_columns = show_columns = ["id", "body", "contact_id", "account_id", "author_id",
                                   "created_on"]
    add_columns = edit_columns = ["body", "contact_id", "account_id"]
    search_columns = ["contact_id", "account_id"]


class TagApi(TrellisModelApi):
    resource_name = "tag"
    datamodel = TrellisSQLAInterface(Tag)
    list_columns = show_columns = ["id", "name", "color"]
    add_columns = edit_columns = ["name", "color"]
    search_columns = ["name"]


# ----------------------------------------------------------------- hooks

CORE_RESOURCES = ["core.Contact", "core.Account", "core.Activity", "core.Note", "core.Tag",
                  "core.Consent"]
#: Every signed-in user may manage their own API keys (FAB's API checks ownership).
OWN_API_KEYS = [(f"can_{p}", "core.ApiKey") for p in ("list", "create", "get", "revoke")]
#: Everyone reads the dashboard (each widget checks its own permission) and the rates;
#: admins (and roles plugins grant it to, e.g. Sales Manager) edit the rates.
DASHBOARD_AND_RATES = [("can_read", dashboard.RESOURCE), ("can_read", "core.ExchangeRate")]
#: Search shows only models the user may read, filtered by their record rules.
SEARCH = ("can_read", "core.Search")
#: The report builder: reading runs reports (on models the user may read), writing saves them.
REPORTS_READ = [("can_read", reportviews.RESOURCE)]
REPORTS_WRITE = REPORTS_READ + [("can_write", reportviews.RESOURCE)]
#: Everyone reads and marks read their own notifications and sets their own preferences.
INBOX = [(p, r) for r in (inbox.NOTIFICATION, inbox.PREFERENCE, "core.TwoFactor",
                           savedviews.RESOURCE)
         for p in ("can_read", "can_write")]


@hookimpl
def trellis_manifest() -> Manifest:
    return Manifest(label="Core", description="Contacts, accounts, the activity timeline, "
                    "notes, tags, audit log, plugins and settings.", icon="fa-users")


@hookimpl
def trellis_models() -> list[ModelSpec]:
    return [
        ModelSpec(Account, "account", "Account", schema=AccountSchema,
                  searchable=("name", "domain"), owner_field="owner_id",
                  duplicates=duplicates.account_duplicates),
        ModelSpec(Contact, "contact", "Contact", schema=ContactSchema,
                  searchable=("first_name", "last_name", "email", "phone"),
                  owner_field="owner_id", contact_field="id",
                  duplicates=duplicates.contact_duplicates),
        ModelSpec(Activity, "activity", "Activity", searchable=("subject",),
                  contact_field="contact_id", audited=False),
        ModelSpec(Note, "note", "Note", searchable=("body",), contact_field="contact_id"),
        ModelSpec(Tag, "tag", "Tag", searchable=("name",)),
        ModelSpec(currency.ExchangeRate, "exchange_rate", "Exchange rate",
                  searchable=("currency",), validate=currency.rate_validate),
        ModelSpec(businesshours.BusinessCalendar, "calendar", "Business calendar",
                  searchable=("name",), before_save=businesshours.calendar_before_save,
                  validate=businesshours.validate_calendar),
        ModelSpec(businesshours.Holiday, "holiday", "Holiday",
                  validate=businesshours.holiday_validate),
        consent.MODEL_SPEC,
    ]


@hookimpl
def trellis_views() -> list[ViewSpec]:
    customers = "Customers"
    admin = "Admin"
    return [
        ViewSpec(dashboard.DashboardView, "Dashboard", icon="fa-tachometer-alt",
                 category=""),
        ViewSpec(reportviews.ReportBuilderView, "Reports", icon="fa-chart-bar", category=""),
        ViewSpec(ContactView, "Contacts", icon="fa-address-book", category=customers),
        ViewSpec(AccountView, "Accounts", icon="fa-building", category=customers),
        ViewSpec(ActivityView, "Activities", icon="fa-stream", category=customers),
        ViewSpec(NoteView, "Notes", icon="fa-sticky-note", category=customers),
        ViewSpec(TagView, "Tags", icon="fa-tags", category=customers),
        ViewSpec(consent.ConsentView, "Consent", icon="fa-check-square", category=customers),
        ViewSpec(SearchView, "Search", icon="fa-search", category=customers),
        ViewSpec(PluginsView, "Plugins", icon="fa-puzzle-piece", category=admin),
        ViewSpec(SettingsView, "Settings", icon="fa-sliders-h", category=admin),
        ViewSpec(AuditView, "Audit log", icon="fa-history", category=admin),
        ViewSpec(ApiKeyAdminView, "API keys", icon="fa-key", category=admin),
        ViewSpec(TeamView, "Teams", icon="fa-user-friends", category=admin),
        ViewSpec(RoleScopeView, "Record rules", icon="fa-user-lock", category=admin),
        ViewSpec(inbox.NotificationsView, "Notifications", icon="fa-bell", category="Me"),
        ViewSpec(inbox.PreferencesView, "My preferences", icon="fa-user-cog", category="Me"),
        ViewSpec(two_factor.TwoFactorView, "Two-factor login", icon="fa-shield-alt",
                 category="Me"),
        ViewSpec(currency.ExchangeRateView, "Exchange rates", icon="fa-exchange-alt",
                 category=admin),
        ViewSpec(businesshours.BusinessCalendarView, "Business calendars",
                 icon="fa-calendar-alt", category=admin),
        ViewSpec(businesshours.HolidayView),
        ViewSpec(privacy.PrivacyView),
        ViewSpec(outbox_views.OutboxView, "Jobs", icon="fa-cogs", category=admin),
        ViewSpec(savedviews.SavedViewsView, "Saved views", icon="fa-bookmark", category="Me"),
        ViewSpec(customfield_views.CustomFieldsView, "Custom fields", icon="fa-list-alt",
                 category=admin),
        ViewSpec(automation_views.AutomationView, "Automation", icon="fa-robot",
                 category=admin),
    ]


@hookimpl
def trellis_apis() -> list[type]:
    return [ContactApi, AccountApi, ActivityApi, NoteApi, TagApi, AuditApi, PluginsApi,
            SettingsApi, two_factor.TrellisApiKeyApi, currency.ExchangeRateApi,
            dashboard.DashboardApi, reportviews.ReportApi, customer.CustomerApi,
            SearchApi, businesshours.BusinessCalendarApi,
            businesshours.HolidayApi, inbox.NotificationApi, inbox.PreferencesApi,
            consent.ConsentApi, privacy.PrivacyApi, outbox_views.JobsApi,
            customfield_views.CustomFieldApi, automation_views.AutomationApi]


@hookimpl
def trellis_blueprints() -> list[BlueprintSpec]:
    return [BlueprintSpec(health, public=True), consent.BLUEPRINT]


@hookimpl
def trellis_roles() -> list[RoleSpec]:
    return [
        RoleSpec("CRM User", [(p, r) for r in CORE_RESOURCES for p in ("can_read", "can_write")]
                 + OWN_API_KEYS + [SEARCH] + DASHBOARD_AND_RATES + INBOX + REPORTS_WRITE),
        RoleSpec("CRM Viewer", [("can_read", r) for r in CORE_RESOURCES] + [SEARCH]
                 + DASHBOARD_AND_RATES + INBOX + REPORTS_READ),
        # Reads everything across the CRM; plugins add read access to their records
        # and reports.  Their default dashboard is every widget they may read.
        RoleSpec("Manager", [("can_read", r) for r in CORE_RESOURCES] + [SEARCH]
                 + DASHBOARD_AND_RATES + INBOX + REPORTS_WRITE + OWN_API_KEYS, scope="all"),
        # Data protection: export and erase personal data; give it to the DPO.
        RoleSpec("Privacy Officer", [("can_read", "core.Privacy"), ("can_write", "core.Privacy"),
                                     ("can_read", "core.Contact"), ("can_read", "core.Consent"),
                                     ("can_read", "core.Audit")] + INBOX),
    ]


@hookimpl
def trellis_dashboard_widgets() -> list:
    return dashboard.core_widgets()


@hookimpl
def trellis_settings_schema() -> type:
    from trellis.core_settings import CoreSettings

    return CoreSettings


@hookimpl
def trellis_customer_features() -> list:
    from trellis.features import core_features

    return core_features()


@hookimpl
def trellis_record_panels() -> list:
    return [consent.PANEL, privacy.PANEL]


@hookimpl
def trellis_actions() -> list:
    from trellis.actions import core_actions

    return core_actions()


@hookimpl
def trellis_jobs() -> list[JobSpec]:
    return [JobSpec("core.run_event_handler", run_event_handler,
                    description="run a background event handler"),
            JobSpec(EMAIL_JOB, email_notifications,
                    description="e-mail notifications to users who want them"),
            JobSpec(automation.RUN_JOB, automation.run_rule,
                    description="run an automation rule on records"),
            JobSpec(automation.TICK_JOB, automation.tick, retries=0,
                    description="queue the schedule and date rules that are due")]


@hookimpl
def trellis_schedules() -> list[ScheduleSpec]:
    return [ScheduleSpec(EMAIL_JOB, interval=300),
            ScheduleSpec(automation.TICK_JOB, interval=60)]


@hookimpl
def trellis_event_handlers() -> list:
    from trellis.specs import EventHandler

    return [EventHandler("*", automation.on_event)]


@hookimpl
def trellis_app_ready(app: Any) -> None:
    app.context_processor(inbox.unread_badge)  # the navbar's notification bell
    app.context_processor(savedviews.menu_context)  # saved and pinned list views
    app.before_request(customfield_views.sync_views)  # custom fields, without a restart


@hookimpl
def trellis_condition_types() -> list:
    return customfield_conditions.condition_types()


@hookimpl
def trellis_migrations() -> str:
    return str(Path(__file__).parent / "migrations" / "versions")


@hookimpl
def trellis_before_merge(session: Any, model: str, winner_id: int, loser_ids: list[int]) -> None:
    from trellis.consent import merge_states
    from trellis.customfields import merge_values

    merge_states(session, model, winner_id, loser_ids)
    merge_values(session, model, winner_id, loser_ids)


@hookimpl
def trellis_personal_data(session: Any, contact_id: int) -> dict[str, Any] | None:
    return privacy.core_personal_data(session, contact_id)


@hookimpl
def trellis_erase_personal_data(session: Any, contact_id: int) -> None:
    privacy.core_erase(session, contact_id)

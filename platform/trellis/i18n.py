"""Languages: message catalogs of the core and every plugin, the user's locale,
and locale-aware numbers, money and dates.

* **Catalogs.** Each distribution keeps its own gettext catalog in a
  ``translations/`` folder beside its package (``trellis/translations``,
  ``trellis_sales/translations``...), domain ``messages``.  At boot the core
  hands Flask-Babel every loaded plugin's folder (:func:`translation_directories`,
  after Flask-AppBuilder's own), and Flask-Babel merges them into one catalog
  per locale, so ``_("Save")`` in any template or module finds its translation
  whichever distribution carries it.
* **Locale of a request** (:func:`select_locale`): the signed-in user's
  preference (``UserPreference.locale``, *Me > My preferences*, which follows
  them across sessions and devices), else the language picked in the navbar
  this session, else the browser's ``Accept-Language``, else
  ``BABEL_DEFAULT_LOCALE`` (``en``).  Picking a language in the navbar while
  signed in stores it as the preference too.
* **Formatting**: :func:`format_money`, :func:`format_number`,
  :func:`format_day` (and the Jinja filters ``money``, ``number``, ``day``,
  ``moment``) format for the request's locale (``¥1,234.50``,
  ``2026年12月2日`` in ``zh_CN``), and as ``en`` outside a request.
* **Strings that are not in the source**: menu entries, column labels, view
  titles, widget and panel titles come from specs and FAB's generated labels;
  :mod:`trellis.i18n_catalogs` collects them from a booted app when extracting
  a catalog, and the core passes them through ``gettext`` when rendering.

Test mode (``TRELLIS_I18N_REPORT_MISSING``): every lookup that finds no
translation in a non-English locale is recorded in ``g.trellis_untranslated``
and sent back in the ``X-Trellis-Untranslated`` response header, and
:func:`latin_text` lists the visible text of a page that is not Chinese; the
browser tour uses both to fail on any untranslated string.
"""

from __future__ import annotations

import importlib
import re
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any, Iterable
from urllib.parse import quote

from babel import Locale
from babel import dates as babel_dates
from babel import numbers as babel_numbers
from babel.support import NullTranslations, Translations
from flask import Flask, g, has_request_context, request, session
from flask_babel import Domain, get_locale, lazy_gettext
from flask_babel import gettext as _

#: The languages the interface offers (FAB's ``LANGUAGES``: navbar menu and ``/lang/<code>``).
LANGUAGES = {
    "en": {"flag": "gb", "name": "English"},
    "zh_CN": {"flag": "cn", "name": "简体中文"},
}
#: Response header listing the msgids looked up without a translation (test mode).
MISSING_HEADER = "X-Trellis-Untranslated"
CORE_TRANSLATIONS = Path(__file__).parent / "translations"


# ------------------------------------------------------------------ catalogs


def package_translations(module: Any) -> Path | None:
    """The ``translations/`` folder of the top-level package a plugin (a module,
    or an object registered as a plugin) belongs to; ``None`` without a package."""
    name = getattr(module, "__name__", None) if isinstance(module, ModuleType) else None
    top = importlib.import_module((name or type(module).__module__).split(".", 1)[0])
    file = getattr(top, "__file__", None)
    return Path(file).parent / "translations" if file else None


def translation_directories(modules: Iterable[Any]) -> list[str]:
    """The core's catalog folder, then each plugin's that has one (in load order:
    a later catalog's translation of the same msgid wins)."""
    dirs = [CORE_TRANSLATIONS]
    for module in modules:
        path = package_translations(module)
        if path is not None and path.is_dir() and path not in dirs:
            dirs.append(path)
    return [str(p) for p in dirs]


class _Recording(Translations):
    """A merged catalog that notes every msgid it has no translation for."""

    def ugettext(self, message: str) -> str:  # type: ignore[override]
        return self.gettext(message)

    def gettext(self, message: str) -> str:  # type: ignore[override]
        if message and message not in self._catalog:
            _note_missing(message)
        return super().gettext(message)

    def ungettext(self, singular: str, plural: str, n: int) -> str:  # type: ignore[override]
        return self.ngettext(singular, plural, n)

    def ngettext(self, singular: str, plural: str, n: int) -> str:  # type: ignore[override]
        if (singular, 0) not in self._catalog:
            _note_missing(singular)
        return super().ngettext(singular, plural, n)


def _note_missing(message: str) -> None:
    # FAB passes some labels through gettext twice: a translation is no miss
    if has_request_context() and re.search("[A-Za-z]", str(message)) and \
            not _CJK.search(str(message)):
        g.setdefault("trellis_untranslated", set()).add(str(message))


class TrellisDomain(Domain):
    """Flask-Babel's domain, finding ``zh_CN`` catalogs: Babel spells the locale
    ``zh_Hans_CN``, which gettext would only widen to ``zh``."""

    def __init__(self, record_missing: bool = False) -> None:
        super().__init__()
        self.record_missing = record_missing

    def get_translations(self) -> Any:
        locale = get_locale()
        if locale is None:
            return NullTranslations()
        key = (str(locale), self.domain[0])
        if key not in self.cache:
            names = [str(locale)]
            if locale.territory:
                names.append(f"{locale.language}_{locale.territory}")
            names.append(locale.language)
            merged: Translations = (_Recording if self.record_missing and locale.language != "en"
                                    else Translations)()
            for dirname in self.translation_directories:
                catalog = Translations.load(dirname, names, self.domain[0])
                merged.merge(catalog)
                if hasattr(catalog, "plural"):
                    merged.plural = catalog.plural
            self.cache[key] = merged
        return self.cache[key]


# ------------------------------------------------------------------ the locale


def supported(code: str | None) -> str | None:
    """``code`` if it is one of the configured ``LANGUAGES``, else ``None``."""
    from flask import current_app

    return code if code and code in current_app.config.get("LANGUAGES", LANGUAGES) else None


def user_locale(user_id: int) -> str | None:
    """The user's stored language (*My preferences*), if it is offered."""
    from trellis.db import db
    from trellis.models import UserPreference

    pref = db.session.get(UserPreference, user_id)
    return supported(pref.locale) if pref is not None else None


def select_locale() -> str | None:
    """The request's locale: user preference, navbar choice, Accept-Language, default."""
    from flask import current_app

    if not has_request_context():
        return None
    languages = current_app.config.get("LANGUAGES", LANGUAGES)
    user = getattr(g, "user", None)
    if getattr(user, "is_authenticated", False):
        try:
            chosen = user_locale(user.id)
        except Exception:  # noqa: BLE001 - no table yet (fresh database): fall through
            from trellis.db import db

            db.session.rollback()
            chosen = None
        if chosen:
            return chosen
    chosen = supported(session.get("locale"))
    if chosen:
        return chosen
    offered = [code.replace("_", "-") for code in languages]
    best = request.accept_languages.best_match(offered)
    if best is None:  # "zh" or "zh-Hans" asks for Chinese too
        wanted = {tag.split("-")[0].lower() for tag, _q in request.accept_languages}
        best = next((code for code in offered if code.split("-")[0] in wanted), None)
    return best.replace("-", "_") if best else current_app.config["BABEL_DEFAULT_LOCALE"]


def current_locale() -> str:
    """The locale code of this request (``en`` outside a request)."""
    locale = get_locale() if has_request_context() else None
    if locale is None:
        return "en"
    return f"{locale.language}_{locale.territory}" if locale.territory else locale.language


def _remember_choice(locale: str | None) -> None:
    """Before FAB's ``/lang/<locale>`` runs: a signed-in user's pick is stored as
    their preference (FAB's view itself is left as it is, permissions and all)."""
    user = getattr(g, "user", None)
    if locale and supported(locale) and getattr(user, "is_authenticated", False):
        from trellis.notification_views import save_preferences

        save_preferences(user.id, {"locale": locale})


# ------------------------------------------------------------------ formatting


def _babel_locale() -> Locale:
    locale = get_locale() if has_request_context() else None
    return locale or Locale.parse("en")


def format_number(value: Any, digits: int | None = None) -> str:
    """``value`` with the locale's grouping and decimal signs; ``digits`` fixes the
    number of decimals (``None``: as many as it has)."""
    if value is None:
        return ""
    if digits is not None:
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return babel_numbers.format_decimal(Decimal(str(value)), format=pattern,
                                            locale=_babel_locale(), decimal_quantization=True)
    return babel_numbers.format_decimal(value, locale=_babel_locale())


def format_money(value: Any, currency: str | None = None) -> str:
    """``value`` in ``currency`` (default: the company currency) for the locale:
    ``€1,234.50`` (en), ``¥1,234.50`` (zh_CN, CNY)."""
    if value is None:
        return ""
    if currency is None:
        from trellis.currency import company_currency

        currency = company_currency()
    try:
        return babel_numbers.format_currency(Decimal(str(value)), currency,
                                             locale=_babel_locale())
    except (babel_numbers.UnknownCurrencyError, ValueError):
        return f"{format_number(value, 2)} {currency}"


def format_day(value: Any, form: str = "medium") -> str:
    """A date (or a datetime's day) for the locale: ``Dec 2, 2026`` / ``2026年12月2日``."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value[:10])
        except ValueError:
            return value
    if isinstance(value, datetime):
        value = value.date()
    return babel_dates.format_date(value, format=form, locale=_babel_locale())


def format_moment(value: Any, form: str = "medium") -> str:
    """A timestamp for the locale (naive values are UTC)."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    return babel_dates.format_datetime(value, format=form, locale=_babel_locale())


_CJK = re.compile(r"[\u3400-\u9fff]")


def person_name(first: str | None, last: str | None) -> str:
    """A person's name as its own language writes it: ``Ada Lovelace``, and
    Chinese names surname first without a space (``王伟``)."""
    first, last = (first or "").strip(), (last or "").strip()
    if _CJK.search(first) and _CJK.search(last):
        return f"{last}{first}"
    return f"{first} {last}".strip()


# ------------------------------------------------------------------ runtime strings


def translate(text: Any) -> Any:
    """``gettext`` for a string that is not in the source (a label from a spec);
    anything else is returned as it is."""
    return _(text) if isinstance(text, str) and text else text


def plugin_labels() -> dict[str, str]:
    """``{plugin name: label}`` of the loaded plugins (translate them when shown)."""
    from trellis.extension import current_trellis

    return {p.name: p.label for p in current_trellis().plugins.loaded()}


def lazy(text: Any) -> Any:
    """A lazily translated label (for FAB's ``label_columns`` and titles)."""
    return lazy_gettext(text) if isinstance(text, str) and text else text


# ------------------------------------------------------------------ finding English


#: Text a Chinese page may show in Latin letters: names, codes, units.
LATIN_ALLOWED = {"Trellis", "CRM", "API", "CSV", "XLSX", "ID", "URL", "SLA", "KPI", "RFM",
                 "E-mail", "email", "JSON", "SQL", "OK", "ETag", "TOTP", "ZIP", "Webhook",
                 "English"}
_LATIN = re.compile(r"[A-Za-z][A-Za-z'-]*(?:\s+[A-Za-z][A-Za-z'-]*)*")
_CODE = re.compile(r"[A-Z]{3}")  # ISO currency and country codes
_NOT_PROSE = re.compile(r"\S*[@/._]\S*")


def latin_text(html: str, allowed: Iterable[str] = ()) -> list[str]:
    """Runs of Latin words in the visible text of ``html`` (not in tags, scripts,
    styles or attributes), minus ``allowed`` words: on a page rendered for a
    Chinese user with Chinese data, what remains was not translated."""
    from html.parser import HTMLParser

    allow = {a.lower() for a in (*LATIN_ALLOWED, *allowed)}
    found: list[str] = []

    class _Text(HTMLParser):
        skip = 0

        def handle_starttag(self, tag: str, attrs: Any) -> None:
            if tag in ("script", "style", "noscript", "template"):
                self.skip += 1

        def handle_endtag(self, tag: str) -> None:
            if tag in ("script", "style", "noscript", "template") and self.skip:
                self.skip -= 1

        def handle_data(self, data: str) -> None:
            if self.skip:
                return
            # e-mail addresses, URLs, paths and dotted codes (deal.created) are not prose
            data = _NOT_PROSE.sub(" ", data)
            for match in _LATIN.finditer(data):
                words = [w for w in match.group().split() if len(w) > 2
                         and w.lower() not in allow and not _CODE.fullmatch(w)]
                if words:
                    found.append(match.group())

    parser = _Text()
    parser.feed(html)
    return found


# ------------------------------------------------------------------ wiring


def configure(app: Flask) -> None:
    """Before FAB: the languages and every loaded plugin's catalog folder."""
    ext = app.extensions["trellis"]
    app.config.setdefault("LANGUAGES", LANGUAGES)
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "en")
    modules = [p.module for n, p in ext.plugins.by_name.items() if n != "core" and p.ok]
    own = app.config.get("BABEL_TRANSLATION_DIRECTORIES")
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = ";".join(
        translation_directories(modules) + ([own] if own else []))


def init_app(app: Flask, appbuilder: Any) -> None:
    """After FAB: Trellis's locale selector and domain, the remembered navbar
    choice, the formatting filters and the test-mode report of missing strings."""
    babel = app.extensions["babel"]
    babel.locale_selector = select_locale
    record = bool(app.config.get("TRELLIS_I18N_REPORT_MISSING"))
    babel.instance.__dict__["domain_instance"] = TrellisDomain(record_missing=record)
    endpoint = f"{appbuilder.bm.locale_view.endpoint}.index"

    @app.before_request
    def _locale_choice() -> None:
        if request.endpoint == endpoint:
            _remember_choice((request.view_args or {}).get("locale"))

    app.jinja_env.filters.update(money=format_money, number=format_number, day=format_day,
                                 moment=format_moment, translate=translate)
    app.jinja_env.globals.update(current_locale=current_locale,
                                 trellis_plugin_labels=plugin_labels)
    if record:
        @app.after_request
        def _report_missing(response: Any) -> Any:
            missing = sorted(g.pop("trellis_untranslated", ()))
            if missing:
                response.headers[MISSING_HEADER] = ",".join(quote(m) for m in missing)[:8000]
            return response

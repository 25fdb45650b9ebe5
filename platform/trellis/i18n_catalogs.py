"""Message catalogs: extract, update, compile and check (``trellis i18n ...``).

One catalog per distribution, in ``<package>/translations/``:
``messages.pot`` (the template), ``<locale>/LC_MESSAGES/messages.po`` (the
translations, edited by hand) and ``messages.mo`` (compiled, committed so that
``pip install -e`` needs no build step; ``trellis i18n check`` and
``tests/test_i18n.py`` fail when a ``.mo`` is older than its ``.po``).

A catalog holds what the source says — ``_()``, ``gettext``, ``ngettext``,
``lazy_gettext``/``_l`` in Python, ``_()`` and ``{% trans %}`` in the
package's templates — plus the strings a booted app shows without them being in
the source (:func:`runtime_strings`): menu entries and categories, FAB's
column labels and view titles, model, widget, panel, feature, action and
condition type labels (and the contact fields conditions compare), role
names, settings labels and the plugin's manifest.
"""

from __future__ import annotations

import io
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po, write_po

DOMAIN = "messages"
#: Locales Trellis ships translations for (English is the source language).
LOCALES = ("zh_CN",)
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None, "lazy": None}
METHODS = [("**/migrations/**", "ignore"), ("**/tests/**", "ignore"),
           ("**/static/**", "ignore"), ("**/templates/**.html", "jinja2.ext:babel_extract"),
           ("**.py", "python")]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.do", "trimmed": "true"}}


def distributions(app: Any) -> dict[str, Path]:
    """``{plugin name: package folder}`` of the core and every loaded plugin that
    is a package."""
    from trellis.i18n import package_translations

    ext = app.extensions["trellis"]
    found = {name: package_translations(plugin.module)
             for name, plugin in ext.plugins.by_name.items() if plugin.ok}
    return {name: path.parent for name, path in found.items() if path is not None}


def runtime_strings(app: Any) -> dict[str, dict[str, set[str]]]:
    """``{plugin: {msgid: {where}}}``: labels a booted app shows that are not
    written in the source as ``_()`` calls."""
    from flask_appbuilder import ModelView

    ext = app.extensions["trellis"]
    out: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))

    def add(plugin: str, text: Any, where: str) -> None:
        text = str(text) if text is not None else ""
        if text.strip() and text != "-":
            out[plugin][text].add(where)

    instances = {type(v): v for v in app.appbuilder.baseviews}
    with app.app_context():
        for name, plugin in ext.plugins.by_name.items():
            if not plugin.ok:
                continue
            if plugin.manifest:
                add(name, plugin.manifest.label, "manifest")
                add(name, plugin.manifest.description, "manifest")
            for spec in ext.plugins.call_one(name, "trellis_views") or []:
                where = f"view {spec.view.__name__}"
                add(name, spec.label or spec.name, f"menu {where}")
                if spec.category:
                    add(name, spec.category, f"menu category {where}")
                view = instances.get(spec.view)
                if isinstance(view, ModelView):
                    for text in view.label_columns.values():
                        add(name, text, f"label {where}")
                    for text in (view.description_columns or {}).values():
                        add(name, text, f"description {where}")
                    for attr in ("list_title", "show_title", "add_title", "edit_title"):
                        add(name, getattr(view, attr, ""), f"title {where}")
                    for action in (view.actions or {}).values():
                        add(name, action.text, f"action {where}")
                        add(name, action.confirmation, f"action {where}")
                    for column, codes in getattr(view, "translated_values", {}).items():
                        for code in codes:
                            add(name, code, f"value of {column} {where}")
            schema = ext.settings_schemas.get(name)
            if schema is not None:
                for field_name, field in schema().fields.items():
                    for key in ("label", "description"):
                        add(name, field.metadata.get(key), f"setting {field_name}")
        for entry in ext.registry:
            add(entry.plugin, entry.spec.label, f"model {entry.name}")
        for plugin, spec in ext.widgets:
            add(plugin, spec.label, f"widget {spec.name}")
            add(plugin, spec.description, f"widget {spec.name}")
        for plugin, spec in ext.panels:
            add(plugin, spec.label, f"panel {spec.name}")
        for name, _plugin in ext.plugins.by_name.items():
            if not _plugin.ok:
                continue
            for role in ext.plugins.call_one(name, "trellis_roles") or []:
                add(name, getattr(role, "name", None), "role")
        from trellis import conditions

        for spec in [*conditions.BUILTIN, conditions.RECORD]:
            add("core", spec.label, f"condition type {spec.name}")
        for plugin, contributed in ext.plugins.call_each("trellis_condition_types"):
            for spec in contributed or []:
                add(plugin, spec.label, f"condition type {spec.name}")
        for field_name, (_column, _kind, text) in conditions._field_columns().items():
            add("core", text, f"condition field {field_name}")
        for table, kind in ((ext.features, "feature"), (ext.actions, "action")):
            for key, (plugin, spec) in table.items():
                add(plugin, spec.label, f"{kind} {key}")
                add(plugin, getattr(spec, "description", ""), f"{kind} {key}")
    return out


def extract(folder: Path, runtime: dict[str, set[str]] | None = None,
            project: str = "Trellis") -> Catalog:
    """The template catalog of the package in ``folder``: its source plus ``runtime``."""
    catalog = Catalog(project=project, charset="utf-8", fuzzy=False)
    for filename, lineno, message, comments, context in extract_from_dir(
            str(folder), method_map=METHODS, options_map=OPTIONS, keywords=KEYWORDS,
            comment_tags=("TRANSLATORS:",), strip_comment_tags=True):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments,
                    context=context)
    for msgid, where in sorted((runtime or {}).items()):
        if msgid not in catalog:
            catalog.add(msgid, None, auto_comments=[f"shown by: {w}" for w in sorted(where)])
    return catalog


def po_path(folder: Path, locale: str) -> Path:
    return folder / "translations" / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def update(folder: Path, template: Catalog, locales: Iterable[str] = LOCALES) -> list[Path]:
    """Write ``messages.pot`` and merge it into each locale's ``.po`` (kept
    translations stay, new msgids come in empty, vanished ones are dropped)."""
    written = []
    pot = folder / "translations" / f"{DOMAIN}.pot"
    pot.parent.mkdir(parents=True, exist_ok=True)
    with pot.open("wb") as fh:
        write_po(fh, template, omit_header=True, sort_output=True, width=100)
    for locale in locales:
        path = po_path(folder, locale)
        if path.exists():
            with path.open("rb") as fh:
                catalog = read_po(fh, locale=locale)
        else:
            catalog = Catalog(locale=locale, project=template.project, charset="utf-8")
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            write_po(fh, catalog, sort_output=True, width=100, ignore_obsolete=True)
        written.append(path)
    return written


def compile_catalogs(folder: Path) -> list[Path]:
    """Compile every ``.po`` under ``folder/translations`` to its ``.mo``."""
    written = []
    for po in sorted((folder / "translations").glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        with po.open("rb") as fh:
            catalog = read_po(fh)
        with po.with_suffix(".mo").open("wb") as fh:
            write_mo(fh, catalog, use_fuzzy=False)
        written.append(po.with_suffix(".mo"))
    return written


def check(folder: Path, template: Catalog | None = None) -> list[str]:
    """Problems with the catalogs of ``folder``: msgids without a translation or
    marked fuzzy, translations whose placeholders differ from the msgid's, a
    ``.mo`` that does not match its ``.po``, and (given the freshly extracted
    ``template``) strings the ``.po`` lacks."""
    problems = []
    for locale in LOCALES:
        po = po_path(folder, locale)
        if not po.exists():
            problems.append(f"{po}: missing")
            continue
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=locale)
        for message in catalog:
            if not message.id:
                continue
            where = f"{po.relative_to(folder.parent)}: {message.id!r}"
            if message.fuzzy:
                problems.append(f"{where} is fuzzy")
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            if not all(strings):
                problems.append(f"{where} has no translation")
        for message, errors in catalog.check():  # placeholders that do not match
            problems += [f"{po.relative_to(folder.parent)}: {message.id!r}: {e}" for e in errors]
        if template is not None:
            for message in template:
                if message.id and message.id not in catalog:
                    problems.append(f"{po.relative_to(folder.parent)}: {message.id!r} is not "
                                    f"in the catalog (run trellis i18n update)")
        mo = po.with_suffix(".mo")
        if not mo.exists():
            problems.append(f"{mo}: missing (run trellis i18n compile)")
            continue
        expected = io.BytesIO()
        write_mo(expected, catalog, use_fuzzy=False)
        with mo.open("rb") as fh:
            compiled = read_mo(fh)
        expected.seek(0)
        if _pairs(read_mo(expected)) != _pairs(compiled):
            problems.append(f"{mo}: out of date with its .po (run trellis i18n compile)")
    return problems


def _pairs(catalog: Catalog) -> dict[Any, Any]:
    return {(m.context, m.id if not isinstance(m.id, list) else tuple(m.id)): m.string
            for m in catalog if m.id}

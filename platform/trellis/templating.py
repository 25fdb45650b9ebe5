"""Templates that users write (e-mail templates, canned responses, chat messages),
rendered in a sandbox with per-recipient merge fields.

Users are not trusted with Python: templates run in Jinja's
:class:`~jinja2.sandbox.ImmutableSandboxedEnvironment` (no attribute starting
with ``_``, no unsafe methods, no changing lists or dicts), with no loader (no
``include``/``import``/``extends``, so no file system), over plain data (dicts of
strings and numbers, never ORM objects or the session).  A template's size and
its output are capped.

Merge fields come from :func:`merge_context`: the core gives ``contact`` and
``account``; each enabled plugin adds its own under its name through the hook
``trellis_merge_fields`` (``{{ sales.last_product }}``).  A missing field
renders empty, and Jinja's ``default`` filter gives a fallback::

    Hello {{ contact.first_name | default("there") }},
    {% if sales.last_product %}how do you like your {{ sales.last_product }}?{% endif %}
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable, Iterable

from jinja2 import ChainableUndefined, TemplateError, TemplateSyntaxError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from sqlalchemy import select

#: Longest template source accepted (characters).
MAX_SOURCE = 100_000
#: Longest rendered output (characters); longer output is an error, not truncated.
MAX_OUTPUT = 1_000_000


class RenderError(ValueError):
    """The template cannot be rendered; the message says why (for a 400)."""


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, saying so when a template reaches for something
    unsafe (Jinja would quietly render it empty).  It also caps ``range()``."""

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        raise SecurityError(f"{attribute!r} of {type(obj).__name__} is not available "
                            f"in templates")


def _environment(html: bool) -> _Sandbox:
    return _Sandbox(autoescape=html, undefined=ChainableUndefined, loader=None,
                    keep_trailing_newline=True)


_ENVS = {False: _environment(False), True: _environment(True)}


def check(source: str) -> list[str]:
    """Problems with a template, as messages for a 400 (empty when it is fine)."""
    if not isinstance(source, str):
        return ["Must be text."]
    if len(source) > MAX_SOURCE:
        return [f"Longer than {MAX_SOURCE:,} characters."]
    try:
        tree = _ENVS[False].parse(source)
    except TemplateSyntaxError as exc:
        return [f"Line {exc.lineno}: {exc.message}"]
    problems = [f"Line {node.lineno}: {type(node).__name__.lower()} is not allowed in templates."
                for node in tree.find_all((nodes.Include, nodes.Import, nodes.FromImport,
                                           nodes.Extends))]
    return problems


def compile_template(source: str, *, html: bool = False) -> Callable[[dict[str, Any]], str]:
    """Parse ``source`` once; the result renders it for one context at a time
    (a campaign compiles its template once and renders it per recipient).

    ``html=True`` escapes every value (for HTML bodies).  Raises
    :class:`RenderError` for a template that does not parse or uses
    ``include``/``import``/``extends``; rendering raises it when the template
    tries something the sandbox forbids or renders more than
    :data:`MAX_OUTPUT` characters.
    """
    problems = check(source)
    if problems:
        raise RenderError(" ".join(problems))
    template = _ENVS[bool(html)].from_string(source)

    def render_one(context: dict[str, Any]) -> str:
        try:
            out = template.render(context)
        except TemplateError as exc:  # SecurityError, UndefinedError...
            raise RenderError(str(exc) or type(exc).__name__) from exc
        except (TypeError, ValueError, ArithmeticError, LookupError, OverflowError) as exc:
            raise RenderError(f"{type(exc).__name__}: {exc}") from exc
        if len(out) > MAX_OUTPUT:
            raise RenderError(f"The rendered text is longer than {MAX_OUTPUT:,} characters.")
        return out

    return render_one


def render(source: str, context: dict[str, Any], *, html: bool = False) -> str:
    """Render ``source`` with ``context`` in the sandbox (see :func:`compile_template`)."""
    return compile_template(source, html=html)(context)


# ------------------------------------------------------------------ merge fields


def _core_fields(session: Any, contact_ids: list[int]) -> dict[int, dict[str, Any]]:
    from trellis.i18n import person_name
    from trellis.models import Account, Contact, Tag, contact_tag

    out: dict[int, dict[str, Any]] = {}
    rows = session.execute(
        select(Contact.id, Contact.first_name, Contact.last_name, Contact.email, Contact.phone,
               Contact.title, Account.name, Account.domain, Account.industry, Account.country)
        .outerjoin(Account, Account.id == Contact.account_id)
        .where(Contact.id.in_(contact_ids))).all()
    for (cid, first, last, email, phone, title, company, domain, industry, country) in rows:
        out[cid] = {
            "contact": {"id": cid, "first_name": first or "", "last_name": last or "",
                        "name": person_name(first, last), "email": email or "",
                        "phone": phone or "", "title": title or "", "tags": []},
            "account": {"name": company or "", "domain": domain or "",
                        "industry": industry or "", "country": country or ""},
        }
    tags = session.execute(
        select(contact_tag.c.contact_id, Tag.name).join(Tag, Tag.id == contact_tag.c.tag_id)
        .where(contact_tag.c.contact_id.in_(contact_ids)).order_by(Tag.name)).all()
    for cid, name in tags:
        if cid in out:
            out[cid]["contact"]["tags"].append(name)
    return out


def merge_context(session: Any, contact_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """``{contact_id: context}`` for rendering one message per contact.

    Set-based: the core and each enabled plugin answer for all ``contact_ids``
    at once (``trellis_merge_fields``); a plugin's fields sit under its name.
    Contacts that do not exist are left out.
    """
    from trellis.extension import current_trellis

    ids = sorted({int(i) for i in contact_ids})
    if not ids:
        return {}
    out = _core_fields(session, ids)
    ext = current_trellis()
    extra: dict[int, dict[str, Any]] = defaultdict(dict)
    for plugin, fields in ext.plugins.call_each("trellis_merge_fields", session=session,
                                                contact_ids=ids):
        if not ext.is_enabled(plugin):
            continue
        for cid, values in fields.items():
            extra[int(cid)][plugin] = values
    for cid, sections in extra.items():
        if cid in out:
            for plugin, values in sections.items():
                out[cid].setdefault(plugin, values)  # contact/account stay the core's
    return out

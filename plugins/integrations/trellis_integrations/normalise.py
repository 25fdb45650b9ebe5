"""How import matching and duplicate detection compare e-mails, phones and domains.

* **E-mail** (:func:`email`): trimmed and lower-cased.  ``+tags`` are kept:
  ``ann+news@example.com`` and ``ann@example.com`` are different addresses at
  many providers, so an import never merges them by itself.  The duplicate
  finder compares :func:`email_base` (the local part up to ``+``) and proposes
  such pairs for review instead.
* **Phone** (:func:`phone`): parsed with ``phonenumbers`` and written as E.164
  (``+4930123456``); a number without a country prefix is read in the
  plugin's ``default_phone_region``.  Stored phones are compared by their
  digits, so ``+49 30 123456`` matches ``+4930123456``.
* **Domain** (:func:`domain`): lower-cased, without scheme, path, port or a
  leading ``www.`` (``https://www.Acme.com/about`` -> ``acme.com``).
"""

from __future__ import annotations

import re

import phonenumbers

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def email(value: object) -> str | None:
    text = str(value or "").strip().lower()
    return text or None


def email_base(value: object) -> str | None:
    """``ann.lee+news@example.com`` -> ``ann.lee@example.com`` (duplicate finding)."""
    text = email(value)
    if not text or "@" not in text:
        return text
    local, _, host = text.rpartition("@")
    return f"{local.split('+', 1)[0]}@{host}"


class BadPhone(ValueError):
    pass


def phone(value: object, region: str | None = None) -> str | None:
    """E.164 form of a phone number; :class:`BadPhone` when it is not one."""
    text = str(value or "").strip()
    if not text:
        return None
    try:
        number = phonenumbers.parse(text, (region or "").upper() or None)
    except phonenumbers.NumberParseException:
        raise BadPhone("Not a phone number; give it with its country code, e.g. "
                       "+49 30 1234567.") from None
    if not phonenumbers.is_possible_number(number):
        raise BadPhone("Not a possible phone number.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_digits(value: object) -> str:
    return re.sub(r"\D", "", str(value or ""))


def domain(value: object) -> str | None:
    text = str(value or "").strip().lower()
    text = re.sub(r"^[a-z][a-z0-9+.-]*://", "", text)
    text = text.split("/", 1)[0].split("?", 1)[0].split("@")[-1].split(":", 1)[0]
    if text.startswith("www."):
        text = text[4:]
    return text.strip(".") or None

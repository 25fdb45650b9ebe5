"""Signed tokens for links that must work without a login and cannot be forged:
survey links, unsubscribe links, click-tracking redirects, portal sign-in links.

A token carries JSON data, signed with the app's secret key and a *purpose*
(the salt), so a token made for one purpose is refused for any other::

    token = signing.sign("unsubscribe", {"contact": 12, "campaign": 3})
    data = signing.unsign("unsubscribe", token)                  # the dict again
    data = signing.unsign("survey", token, max_age=30 * 86400)  # BadToken: wrong purpose

Tokens are URL-safe (itsdangerous' ``URLSafeTimedSerializer``) and carry the
time they were made, so :func:`unsign` can refuse old ones with ``max_age``.
They are not encrypted: never put secrets in them.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer


class BadToken(ValueError):
    """The token was forged, altered, made for another purpose, or is too old."""

    def __init__(self, message: str, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    if not purpose:
        raise ValueError("a token needs a purpose")
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"],
                                  salt=f"trellis.{purpose}")


def sign(purpose: str, data: Any) -> str:
    """A URL-safe token carrying ``data`` (JSON-serialisable) for ``purpose``."""
    return _serializer(purpose).dumps(data)


def unsign(purpose: str, token: str, max_age: int | None = None) -> Any:
    """The data of a token made by :func:`sign` for the same ``purpose``.

    Raises :class:`BadToken` when it is not one (``expired=True`` when it is
    older than ``max_age`` seconds).
    """
    try:
        return _serializer(purpose).loads(str(token), max_age=max_age)
    except SignatureExpired as exc:
        raise BadToken("This link has expired.", expired=True) from exc
    except BadData as exc:
        raise BadToken("This link is not valid.") from exc

"""Field-level encryption at rest for values a model marks sensitive.

A column declared ``mapped_column(Encrypted(...))`` holds a Fernet token
(AES-128-CBC + HMAC-SHA256, from the ``cryptography`` library), never the
plaintext; the ORM encrypts on write and decrypts on read, so models, forms
and APIs see plain values.  The audit log never receives the plaintext of an
encrypted column (it records ``"<encrypted>"``), and neither do the logs.

Keys come from ``TRELLIS_ENCRYPTION_KEYS``: comma-separated Fernet keys
(``trellis keys generate`` prints one), the first encrypts and all decrypt.
To rotate, put a new key first, keep the old ones after it, run ``trellis
keys rotate`` (re-encrypts every encrypted column of every registered model
with the first key), then drop the old keys.  Without the variable a key is
derived from the secret key (fine for a laptop; set real keys in production,
kept apart from the database backups).

Encrypted columns cannot be searched or filtered in SQL (the same plaintext
encrypts differently each time).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any, Iterator

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app, has_app_context
from sqlalchemy import Column, MetaData, Table, Text, bindparam, select, update
from sqlalchemy.types import TypeDecorator

#: What the audit log records instead of an encrypted column's value.
REDACTED = "<encrypted>"


class DecryptionError(ValueError):
    """A stored value does not decrypt with any configured key."""


def generate_key() -> str:
    return Fernet.generate_key().decode()


def _keys(app: Any) -> list[str]:
    raw = app.config.get("TRELLIS_ENCRYPTION_KEYS") or ""
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    if not keys:  # derived from the secret key: stable for a site, not for production
        digest = hashlib.sha256(f"trellis-field-encryption:{app.config['SECRET_KEY']}"
                                .encode()).digest()
        keys = [base64.urlsafe_b64encode(digest).decode()]
    return keys


def fernet(app: Any = None) -> MultiFernet:
    app = app or current_app._get_current_object()
    cache = app.extensions.setdefault("trellis_crypto", {})
    keys = tuple(_keys(app))
    if cache.get("keys") != keys:
        try:
            cache["fernet"] = MultiFernet([Fernet(k.encode()) for k in keys])
        except ValueError as exc:
            raise ValueError("TRELLIS_ENCRYPTION_KEYS must be Fernet keys "
                             "(`trellis keys generate`)") from exc
        cache["keys"] = keys
    return cache["fernet"]


def encrypt(value: str) -> str:
    return fernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError("a stored value does not decrypt with the configured "
                              "TRELLIS_ENCRYPTION_KEYS") from exc


class Encrypted(TypeDecorator):
    """A text column stored encrypted: ``mapped_column(Encrypted())``."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        if not has_app_context():
            raise RuntimeError("encrypted columns are written inside an app context")
        return encrypt(str(value))

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        return decrypt(value)


def encrypted_columns(metadata: Any) -> Iterator[tuple[Any, Any]]:
    """``(table, column)`` of every encrypted column in ``metadata``."""
    for table in metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, Encrypted):
                yield table, column


def is_encrypted(model: type, attribute: str) -> bool:
    column = model.__table__.columns.get(attribute)
    return column is not None and isinstance(column.type, Encrypted)


def rotate(session: Any, metadata: Any, batch: int = 1000) -> dict[str, int]:
    """Re-encrypt every encrypted value with the first key; returns counts per column.

    Works on the raw tokens (``MultiFernet.rotate``: decrypt with any key,
    encrypt with the first), keyset-paged in batches, in the caller's
    transaction; the caller commits.
    """
    f = fernet()
    counts: dict[str, int] = {}
    for table, column in encrypted_columns(metadata):
        pk = list(table.primary_key.columns)
        if len(pk) != 1:
            continue
        # the same table seen as plain text: tokens in and out, no TypeDecorator
        raw = Table(table.name, MetaData(), Column(pk[0].name, pk[0].type, primary_key=True),
                    Column(column.name, Text))
        key, col = raw.c[pk[0].name], raw.c[column.name]
        done, last = 0, None
        while True:
            stmt = select(key, col).where(col.is_not(None)).order_by(key).limit(batch)
            if last is not None:
                stmt = stmt.where(key > last)
            rows = session.execute(stmt).all()
            if not rows:
                break
            try:
                params = [{"row_id": r, "rotated": f.rotate(t.encode()).decode()}
                          for r, t in rows]
            except InvalidToken as exc:
                raise DecryptionError(f"{table.name}.{column.name} holds a value that no "
                                      f"configured key decrypts; nothing was changed") from exc
            session.execute(update(raw).where(key == bindparam("row_id")).values(
                {column.name: bindparam("rotated")}), params)
            done += len(rows)
            last = rows[-1][0]
        counts[f"{table.name}.{column.name}"] = done
    return counts

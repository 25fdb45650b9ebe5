"""Ticket attachments, stored safely.

* Only files whose extension is in :data:`ALLOWED` get in (no HTML, SVG,
  scripts or executables), at most ``attachment_max_mb`` MB each; the file
  name is reduced to a safe base name.  Anything else is refused with a 400
  naming ``file`` (API) or skipped and listed (inbound e-mail).
* The stored content type comes from the extension, never from the sender.
* Downloads always carry ``Content-Disposition: attachment``,
  ``X-Content-Type-Options: nosniff`` and ``Content-Security-Policy:
  sandbox``, so a file can never run as a page of Trellis.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from sqlalchemy import select

from trellis.settings import get_settings
from trellis_service.models import Attachment

#: Allowed extensions and the content type they are served with.
ALLOWED = {
    "pdf": "application/pdf", "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg",
    "gif": "image/gif", "webp": "image/webp", "txt": "text/plain", "log": "text/plain",
    "csv": "text/csv", "zip": "application/zip", "eml": "message/rfc822",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "odt": "application/vnd.oasis.opendocument.text",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
}


class AttachmentRefused(ValueError):
    """Why a file was not accepted (the message for a 400 on ``file``)."""


def safe_name(filename: str | None) -> str:
    """A plain base name: no directories, control characters or odd symbols."""
    name = unicodedata.normalize("NFKC", filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[^\w.\- ]", "_", name).strip(" .")[:200]
    return name or "file"


def check(filename: str | None, size: int) -> tuple[str, str]:
    """``(safe name, content type)``; raises :class:`AttachmentRefused`."""
    name = safe_name(filename)
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if ext not in ALLOWED:
        raise AttachmentRefused(f"Files of type .{ext or '?'} are not accepted; allowed: "
                                f"{', '.join(sorted(ALLOWED))}.")
    limit = get_settings("service")["attachment_max_mb"] * 1024 * 1024
    if size > limit:
        raise AttachmentRefused(f"{name} is larger than {limit // (1024 * 1024)} MB.")
    if size == 0:
        raise AttachmentRefused(f"{name} is empty.")
    return name, ALLOWED[ext]


def make(ticket_id: int, filename: str | None, data: bytes, *, message_id: int | None = None,
         user_id: int | None = None) -> Attachment:
    """A checked, unsaved attachment; raises :class:`AttachmentRefused`."""
    name, content_type = check(filename, len(data))
    return Attachment(ticket_id=ticket_id, message_id=message_id, filename=name,
                      content_type=content_type, size=len(data), data=data,
                      uploaded_by=user_id)


def listing(session: Any, ticket_id: int) -> list[dict[str, Any]]:
    rows = session.execute(select(Attachment.id, Attachment.filename, Attachment.content_type,
                                  Attachment.size, Attachment.message_id,
                                  Attachment.created_on)
                           .where(Attachment.ticket_id == ticket_id).order_by(Attachment.id))
    return [{"id": r.id, "filename": r.filename, "content_type": r.content_type,
             "size": r.size, "message_id": r.message_id,
             "url": f"/api/v1/ticket/{ticket_id}/attachments/{r.id}"} for r in rows]


def download_headers(attachment: Attachment) -> dict[str, str]:
    quoted = attachment.filename.replace('"', "")
    return {"Content-Disposition": f'attachment; filename="{quoted}"',
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox; default-src 'none'",
            "Cache-Control": "private, no-store"}

"""Public tracking links of marketing e-mail (no login; signed tokens).

* ``GET /marketing/t/o/<token>.gif``: the open pixel (always a 1×1 GIF).
* ``GET /marketing/t/c/<token>``: a click; redirects to the URL signed into the
  token, so the link cannot be changed into an open redirect (an altered or
  forged token, or a URL that is not http(s), answers 404).
* ``GET /marketing/t/u/<token>``: the unsubscribe page (a button, so that mail
  scanners following links do not unsubscribe anyone); ``POST`` unsubscribes, and
  is also the RFC 8058 one-click target of the ``List-Unsubscribe`` header.

Each records the event on the :class:`Message` and in the contact's timeline.
"""

from __future__ import annotations

import base64
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, redirect, request
from markupsafe import escape

from trellis import signing
from trellis.db import db
from trellis.specs import BlueprintSpec
from trellis_marketing import campaigns

blueprint = Blueprint("marketing_tracking", __name__, url_prefix="/marketing/t")

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
#: Unsubscribe and click links stay valid this long (seconds).
LINK_MAX_AGE = 400 * 86400


@blueprint.route("/o/<token>.gif")
def opened(token: str) -> Response:
    try:
        data = signing.unsign(campaigns.OPEN, token, max_age=LINK_MAX_AGE)
        campaigns.record_open(db.session, int(data["m"]))
        db.session.commit()
    except (signing.BadToken, KeyError, TypeError, ValueError):
        pass
    return Response(PIXEL, mimetype="image/gif",
                    headers={"Cache-Control": "no-store, max-age=0"})


@blueprint.route("/c/<token>")
def clicked(token: str) -> Response:
    try:
        data = signing.unsign(campaigns.CLICK, token, max_age=LINK_MAX_AGE)
        message_id, url = int(data["m"]), str(data["u"])
    except (signing.BadToken, KeyError, TypeError, ValueError):
        abort(404)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        abort(404)
    campaigns.record_click(db.session, message_id, url)
    db.session.commit()
    return redirect(url, code=302)


def _page(title: str, body: str, status: int = 200) -> Response:
    return Response(f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}"
                    f"</title></head><body style='font-family:sans-serif;max-width:40em;"
                    f"margin:3em auto'><h1>{escape(title)}</h1>{body}</body></html>",
                    status=status, mimetype="text/html")


@blueprint.route("/u/<token>", methods=["GET", "POST"])
def unsubscribe(token: str) -> Response:
    try:
        data = signing.unsign(campaigns.UNSUBSCRIBE, token, max_age=LINK_MAX_AGE)
        message_id, contact_id = int(data["m"]), int(data["c"])
    except (signing.BadToken, KeyError, TypeError, ValueError):
        return _page("Link not valid", "<p>This unsubscribe link is not valid.</p>", 400)
    if request.method == "GET":
        return _page("Unsubscribe", "<p>Stop receiving marketing e-mail from us?</p>"
                     f"<form method='post'><button type='submit'>Unsubscribe</button></form>")
    done = campaigns.record_unsubscribe(db.session, message_id, contact_id, {
        "method": "one_click" if "List-Unsubscribe=One-Click" in request.get_data(
            as_text=True) else "link",
        "ip": request.remote_addr, "user_agent": (request.user_agent.string or "")[:255]})
    if not done:
        db.session.rollback()
        return _page("Link not valid", "<p>This unsubscribe link is not valid.</p>", 404)
    db.session.commit()
    return _page("Unsubscribed", "<p>You will not receive marketing e-mail from us any "
                                 "more.</p>")


BLUEPRINT = BlueprintSpec(blueprint, public=True)

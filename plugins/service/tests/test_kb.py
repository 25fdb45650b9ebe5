"""Knowledge base: full-text search by body words (trellis.fulltext) on SQLite
(FTS5) and PostgreSQL, suggestions for a ticket, the public help centre."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from trellis.db import db

ARTICLES = [
    ("Resetting your router", "Unplug the router, wait thirty seconds and plug it back in.\n\n"
     "The lights blink while it restarts.", "published"),
    ("Printer paper jams", "Open the tray and remove crumpled sheets gently.", "published"),
    ("Internal draft about routers", "Draft notes on restarting things.", "draft"),
    ("<script>alert(1)</script> Escaping", "Titles are text, not markup.", "published"),
]


@pytest.fixture(params=["sqlite", "postgresql"])
def kb_site(request, trellis_app_factory, api_login):
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    app = trellis_app_factory(plugins=["service"], database_url=url)
    client = app.test_client()
    headers = api_login(client)
    ids = []
    for title, body, status in ARTICLES:
        response = client.post("/api/v1/kb_article/", headers=headers,
                               json={"title": title, "body": body, "status": status,
                                     "category": "Howto"})
        assert response.status_code == 201, response.get_json()
        ids.append(response.get_json()["id"])
    return app, client, headers, ids


def _search(client, headers, q, published=True):
    response = client.get("/api/v1/kb_article/search", headers=headers,
                          query_string={"q": q, "published": str(published).lower()})
    assert response.status_code == 200, response.get_json()
    return [a["id"] for a in response.get_json()["result"]]


def test_search_finds_articles_by_words_in_their_body(kb_site):
    app, client, headers, (router, printer, draft, script) = kb_site
    assert _search(client, headers, "thirty seconds") == [router]
    assert _search(client, headers, "crumpled sheet") == [printer]  # sheets → sheet
    assert _search(client, headers, "restarting") == [router]  # restarts, stemmed; not the draft
    assert sorted(_search(client, headers, "restarting", published=False)) == [router, draft]
    assert _search(client, headers, "router printer") == []  # every word must match
    # no query syntax gets through: OR is a word here, a stray quote is harmless
    assert _search(client, headers, "tray OR thirty") == []
    assert _search(client, headers, '"tray') == [printer]
    bad = client.get("/api/v1/kb_article/search", headers=headers, query_string={"q": " "})
    assert bad.status_code == 400 and list(bad.get_json()["message"]) == ["q"]

    # edits and deletes reach the index
    client.put(f"/api/v1/kb_article/{printer}", headers=headers,
               json={"body": "Lift the lid and pull the stuck paper out."})
    assert _search(client, headers, "crumpled") == []
    assert _search(client, headers, "stuck lid") == [printer]
    assert client.delete(f"/api/v1/kb_article/{router}", headers=headers).status_code == 200
    assert _search(client, headers, "thirty") == []


def test_suggestions_for_a_ticket(kb_site):
    app, client, headers, (router, printer, draft, script) = kb_site
    ticket = client.post("/api/v1/ticket/", headers=headers,
                         json={"subject": "My printer is jammed"}).get_json()["id"]
    result = client.get(f"/api/v1/ticket/{ticket}/suggestions", headers=headers).get_json()
    assert [a["id"] for a in result["result"]] == [printer]
    assert result["result"][0]["url"] == f"/help/{printer}"


def test_public_help_centre(kb_site):
    app, client, headers, (router, printer, draft, script) = kb_site
    anonymous = app.test_client()
    home = anonymous.get("/help/")
    assert home.status_code == 200
    assert b"Resetting your router" in home.data and b"Internal draft" not in home.data
    assert b"<script>alert(1)</script>" not in home.data  # escaped
    assert b"&lt;script&gt;" in home.data
    found = anonymous.get("/help/", query_string={"q": "thirty"})
    assert b"Resetting your router" in found.data and b"Printer paper jams" not in found.data
    assert anonymous.get(f"/help/{draft}").status_code == 404
    assert anonymous.get("/help/99999999999").status_code == 404
    for _ in range(2):
        assert anonymous.get(f"/help/{router}").status_code == 200
    from trellis_service.models import Article

    with app.app_context():
        assert db.session.scalar(select(Article.views).where(Article.id == router)) == 2


def test_helpful_votes_once_per_visitor(kb_site):
    app, client, headers, (router, printer, draft, script) = kb_site
    visitor, other = app.test_client(), app.test_client()
    assert b"Was this helpful?" in visitor.get(f"/help/{router}").data
    assert visitor.post(f"/help/{router}/vote", data={"helpful": "yes"}).status_code == 302
    visitor.post(f"/help/{router}/vote", data={"helpful": "yes"})  # counted once
    other.post(f"/help/{router}/vote", data={"helpful": "no"})
    assert visitor.post(f"/help/{router}/vote", data={"helpful": "maybe"}).status_code == 400
    assert visitor.post(f"/help/{draft}/vote", data={"helpful": "yes"}).status_code == 404
    votes = client.get(f"/api/v1/kb_article/{router}", headers=headers).get_json()["result"]
    assert (votes["helpful_yes"], votes["helpful_no"]) == (1, 1)


def test_article_versions_keep_earlier_texts(kb_site):
    from trellis_service.models import ArticleVersion

    app, client, headers, (router, printer, draft, script) = kb_site
    client.put(f"/api/v1/kb_article/{printer}", headers=headers, json={"body": "Second text"})
    client.put(f"/api/v1/kb_article/{printer}", headers=headers, json={"status": "draft"})
    client.put(f"/api/v1/kb_article/{printer}", headers=headers,
               json={"title": "Paper jams", "body": "Third text"})
    with app.app_context():
        versions = db.session.execute(select(ArticleVersion.version, ArticleVersion.title,
                                             ArticleVersion.body)
                                      .where(ArticleVersion.article_id == printer)
                                      .order_by(ArticleVersion.version)).all()
    assert versions == [(1, "Printer paper jams", ARTICLES[1][1]),
                        (2, "Printer paper jams", "Second text")]  # not the status change
    listed = client.get("/api/v1/kb_article_version/", headers=headers).get_json()
    assert listed["count"] == 2

"""The knowledge base: article rules, full-text search (:mod:`trellis.fulltext`,
SQLite FTS5 or PostgreSQL), suggestions for a ticket, and the public
read-only help centre at ``/help/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, session
from sqlalchemy import func, inspect, select, update

from trellis import fulltext
from trellis.context import current_actor
from trellis.db import db
from trellis_service.models import ARTICLE_STATUSES, Article, ArticleVersion, Ticket

COLUMNS = ("title", "body")
HERE = Path(__file__).resolve().parent


def article_before_save(session: Any, article: Article, action: str) -> None:
    """The author of a new article; the previous text of a changed one, as a version."""
    actor = current_actor()
    if action == "created":
        article.status = article.status or "draft"
        if article.author_id is None and article.author is None:
            article.author_id = actor.user_id if actor is not None else None
        return
    state = inspect(article)
    title, body = state.attrs["title"].history, state.attrs["body"].history
    if not (title.has_changes() or body.has_changes()):
        return
    with session.no_autoflush:
        last = session.scalar(select(func.max(ArticleVersion.version)).where(
            ArticleVersion.article_id == article.id)) or 0
    session.add(ArticleVersion(
        article_id=article.id, version=last + 1,
        title=title.deleted[0] if title.deleted else article.title,
        body=body.deleted[0] if body.deleted else article.body,
        saved_by=actor.user_id if actor is not None else None))


def article_validate(article: Article) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not (article.title or "").strip():
        errors["title"] = ["Give the article a title."]
    if not (article.body or "").strip():
        errors["body"] = ["Write the article."]
    if article.status not in ARTICLE_STATUSES:
        errors["status"] = [f"Must be one of: {', '.join(ARTICLE_STATUSES)}."]
    return errors


def search(session: Any, query: str | None, *, published_only: bool = True,
           match: str = "all", limit: int = 20) -> list[Article]:
    """Articles matching ``query``, best first (words of title and body, stemmed)."""
    hits = fulltext.search(session, Article.__table__, COLUMNS, query, match=match)
    stmt = select(Article).join(hits, hits.c.id == Article.id)
    if published_only:
        stmt = stmt.where(Article.status == "published")
    return list(session.scalars(stmt.order_by(hits.c.rank, Article.id).limit(limit)))


def suggestions(session: Any, ticket: Ticket, limit: int = 5) -> list[Article]:
    """Published articles sharing words with the ticket's subject (any word)."""
    return search(session, ticket.subject, match="any", limit=limit)


def as_json(article: Article) -> dict[str, Any]:
    return {"id": article.id, "title": article.title, "category": article.category,
            "status": article.status, "url": f"/help/{article.id}"}


# ------------------------------------------------------------------ the help centre

help_centre = Blueprint("service_help", __name__, url_prefix="/help",
                        template_folder=str(HERE / "templates"))


@help_centre.route("/", methods=["GET"])
def index() -> Any:
    """Published articles: the newest, or those matching ``?q=``."""
    query = (request.args.get("q") or "")[:200]
    if query.strip():
        articles = search(db.session, query, limit=50)
    else:
        articles = list(db.session.scalars(
            select(Article).where(Article.status == "published")
            .order_by(Article.updated_on.desc(), Article.id.desc()).limit(50)))
    return render_template("service/help_index.html", articles=articles, query=query)


@help_centre.route("/<int:article_id>", methods=["GET"])
def article(article_id: int) -> Any:
    """One published article (drafts answer 404); counts the view."""
    found = db.session.get(Article, article_id) if article_id < 2**31 else None
    if found is None or found.status != "published":
        abort(404)
    db.session.execute(update(Article).where(Article.id == article_id)
                       .values(views=Article.views + 1))
    db.session.commit()
    return render_template("service/help_article.html", article=found)


VOTED = "service_kb_voted"


@help_centre.route("/<int:article_id>/vote", methods=["POST"])
def vote(article_id: int) -> Any:
    """"Was this helpful?": ``helpful=yes|no``, once per article per browser session."""
    found = db.session.get(Article, article_id) if article_id < 2**31 else None
    if found is None or found.status != "published":
        abort(404)
    answer = request.form.get("helpful")
    if answer not in ("yes", "no"):
        abort(400, description="helpful must be yes or no")
    voted = list(session.get(VOTED, []))
    if article_id not in voted:
        column = Article.helpful_yes if answer == "yes" else Article.helpful_no
        db.session.execute(update(Article).where(Article.id == article_id)
                           .values({column: column + 1}))
        db.session.commit()
        session[VOTED] = (voted + [article_id])[-200:]
    return redirect(f"/help/{article_id}?voted=1")

"""The demo's own pages: the article and the page-view endpoints."""

from __future__ import annotations

import dataclasses
import secrets
from datetime import timedelta

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import jsonify
from flask import render_template
from flask import request

from consent.flask import current as consent

from .analytics import PageViews
from .content import Article
from .policy import ANALYTICS_COOKIE
from .policy import WESTLAKE_MAP

bp = Blueprint("site", __name__)

#: How long the analytics cookie lives: 13 months, as declared.
ANALYTICS_MAX_AGE = timedelta(days=395)

#: Longest path counted; a longer one is refused.
MAX_PATH_LENGTH = 512


@dataclasses.dataclass(frozen=True)
class Site:
    """What the demo keeps per app, in ``app.extensions["hangzhou_demo"]``.

    :param article: The article, parsed once at startup.
    :param page_views: The page-view counter.
    """

    article: Article
    page_views: PageViews


def _site() -> Site:
    site: Site = current_app.extensions["hangzhou_demo"]
    return site


@bp.get("/")
def index() -> str:
    """The article, with the West Lake map when embedded media are allowed."""
    return render_template(
        "article.html",
        article=_site().article,
        map_service=WESTLAKE_MAP,
        map_url=current_app.config["MAP_ORIGIN"].rstrip("/") + "/map/west-lake",
    )


@bp.post("/analytics/hit")
def analytics_hit() -> Response:
    """Count a page view, only when the visitor allowed analytics.

    The script that calls this is only on pages of visitors who allowed
    analytics, but a page open from before a withdrawal can still call it,
    so the server decides again.
    """
    response = Response(status=204)
    if not consent.allows("analytics"):
        return response
    body = request.get_json(silent=True)
    path = body.get("path") if isinstance(body, dict) else None
    if (
        not isinstance(path, str)
        or not path.startswith("/")
        or len(path) > MAX_PATH_LENGTH
    ):
        return Response('Send a JSON object such as {"path": "/"}.', status=400)
    _site().page_views.add(path)
    if ANALYTICS_COOKIE.name not in request.cookies:
        response.set_cookie(
            ANALYTICS_COOKIE.name,
            secrets.token_urlsafe(16),
            max_age=ANALYTICS_MAX_AGE,
            httponly=True,
            samesite="Lax",
        )
    return response


@bp.get("/analytics/stats")
def analytics_stats() -> Response:
    """The page views counted so far, as JSON."""
    views = _site().page_views
    response = jsonify(total=views.total, paths=views.by_path())
    response.cache_control.no_store = True
    return response

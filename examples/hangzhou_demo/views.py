"""The Flask twin's own pages: the article and the page-view endpoints."""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import jsonify
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from werkzeug.wrappers import Response as BaseResponse

from consent.flask import current_consent as consent
from consent.flask import safe_next

from .policy import ANALYTICS_COOKIE
from .policy import LANGUAGE_COOKIE
from .policy import WESTLAKE_MAP
from .shared import ANALYTICS_MAX_AGE
from .shared import LANGUAGES
from .shared import DemoSite
from .shared import hit_path
from .shared import language_of
from .shared import ui_texts

bp = Blueprint("site", __name__)


def _site() -> DemoSite:
    site: DemoSite = current_app.extensions["hangzhou_demo"]
    return site


def selected_language() -> str | None:
    """The language picked with the switch (``CONSENT_LANGUAGE_SELECTOR``)."""
    return language_of(request.cookies.get(LANGUAGE_COOKIE.name))


@bp.app_context_processor
def _links() -> dict[str, object]:
    """What the shared templates link to, as this twin routes it."""
    here = request.full_path if request.query_string else request.path
    return {
        "ui": ui_texts(consent.language),
        "asset": lambda name: url_for("static", filename=name),
        "home_url": url_for("site.index"),
        "analytics_url": url_for("site.analytics_hit"),
        "declaration_url": url_for("consent.declaration"),
        "language_url": lambda code: (
            url_for("site.language", code=code)
            + "?"
            + urlencode({"next": here}, safe="/:")
        ),
    }


@bp.get("/")
def index() -> str:
    """The article, with the West Lake map when embedded media are allowed."""
    site = _site()
    return render_template(
        "article.html",
        article=site.article,
        map_service=WESTLAKE_MAP,
        map_url=site.map_url,
    )


@bp.get("/lang/<code>")
def language(code: str) -> BaseResponse:
    """Switch the interface language and go back to the page."""
    if code not in LANGUAGES:
        return Response("Unknown language.", status=404)
    target = safe_next(request.args.get("next"), "/")
    response = redirect(target, code=303)
    response.set_cookie(
        LANGUAGE_COOKIE.name,
        code,
        max_age=365 * 24 * 3600,
        httponly=True,
        samesite="Lax",
    )
    return response


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
    path = hit_path(request.get_json(silent=True))
    if path is None:
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

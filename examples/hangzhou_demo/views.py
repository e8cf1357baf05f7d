"""The demo's own pages: the article and the page-view endpoints."""

from __future__ import annotations

import dataclasses
import secrets
from datetime import timedelta

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import jsonify
from flask import redirect
from flask import render_template
from flask import request
from werkzeug.wrappers import Response as BaseResponse

from consent.flask import current_consent as consent
from consent.flask import safe_next

from .analytics import PageViews
from .content import Article
from .policy import ANALYTICS_COOKIE
from .policy import LANGUAGE_COOKIE
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


#: The languages of the English / 中文 switch.
LANGUAGES = ("en", "zh-Hans")

#: The demo's own interface texts (the article itself stays in English).
UI_TEXTS = {
    "en": {
        "tagline": "Cities, technology and the people who build them",
        "language": "Language",
        "skip": "Skip to the content",
        "cookies": "Cookies",
        "note": "Hangzhou Digital is the demo site of the consent project.",
    },
    "zh-Hans": {
        "tagline": "城市、科技，以及建设它们的人",
        "language": "语言",
        "skip": "跳到正文",
        "cookies": "Cookie 说明",
        "note": "Hangzhou Digital 是 consent 项目的演示网站。",
    },
}


def selected_language() -> str | None:
    """The language picked with the switch (a strictly necessary cookie)."""
    code = request.cookies.get(LANGUAGE_COOKIE.name)
    return code if code in LANGUAGES else None


@bp.app_context_processor
def _ui_texts() -> dict[str, object]:
    texts = UI_TEXTS.get(consent.language, UI_TEXTS["en"])
    return {"ui": lambda key: texts[key]}


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
        max_age=int(timedelta(days=365).total_seconds()),
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

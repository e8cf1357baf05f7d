"""The demo's ASGI twin: the same site on FastAPI and ``ConsentMiddleware``.

Same article, banner, analytics and map as the Flask app, from the same
templates and static files; ``make demo-asgi`` serves it with uvicorn.
"""

from __future__ import annotations

import collections.abc as cabc
import secrets
import typing as t
from urllib.parse import urlencode

from fastapi import FastAPI
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.responses import JSONResponse
from fastapi.responses import RedirectResponse
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from consent.asgi import ConsentMiddleware
from consent.asgi import current_consent as consent
from consent.asgi import safe_next
from consent.assets import csp_sources

from .analytics import PageViews
from .content import load_article
from .policy import ANALYTICS_COOKIE
from .policy import LANGUAGE_COOKIE
from .policy import WESTLAKE_MAP
from .policy import build_policy
from .shared import ANALYTICS_MAX_AGE
from .shared import DEFAULT_MAP_ORIGIN
from .shared import INSTANCE_PATH
from .shared import LANGUAGES
from .shared import SECRET_FILE
from .shared import STATIC
from .shared import TEMPLATES
from .shared import DemoSite
from .shared import consent_settings_from_env
from .shared import content_security_policy
from .shared import hit_path
from .shared import language_of
from .shared import load_or_create_secret
from .shared import ui_texts


def _selected_language(request: Request) -> str | None:
    return language_of(request.cookies.get(LANGUAGE_COOKIE.name))


def _links(request: Request) -> dict[str, t.Any]:
    """What the shared templates link to, as this twin routes it."""
    query = request.url.query
    here = request.url.path + (f"?{query}" if query else "")
    root = request.scope.get("root_path", "")
    return {
        "ui": ui_texts(consent.language),
        "asset": lambda name: f"{root}/static/{name}",
        "home_url": f"{root}/",
        "analytics_url": f"{root}/analytics/hit",
        "declaration_url": f"{root}/consent/declaration",
        "language_url": lambda code: (
            f"{root}/lang/{code}?" + urlencode({"next": here}, safe="/:")
        ),
    }


def create_asgi_app(
    test_config: cabc.Mapping[str, t.Any] | None = None,
    *,
    map_origin: str = DEFAULT_MAP_ORIGIN,
) -> FastAPI:
    """Create the demo site's ASGI twin.

    :param test_config: ``CONSENT_*`` settings (and ``SECRET_KEY``) applied
        last, over the environment.
    :param map_origin: The map provider's origin.
    """
    config: dict[str, t.Any] = {"CONSENT_LANGUAGE_SELECTOR": _selected_language}
    config.update(consent_settings_from_env())
    config.update(test_config or {})
    secret = config.pop("SECRET_KEY", None) or load_or_create_secret(
        INSTANCE_PATH / SECRET_FILE
    )
    debug = bool(config.pop("TESTING", False))
    site = DemoSite(
        article=load_article(),
        page_views=PageViews(),
        map_url=map_origin.rstrip("/") + "/map/west-lake",
    )
    templates = Jinja2Templates(directory=TEMPLATES, context_processors=[_links])
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    csp = content_security_policy(map_origin, csp_sources())

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: cabc.Callable[[Request], cabc.Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", csp)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    @app.get("/", response_class=HTMLResponse)
    async def index(request: Request) -> Response:
        """The article, with the West Lake map when embedded media are allowed."""
        return templates.TemplateResponse(
            request,
            "article.html",
            {
                "article": site.article,
                "map_service": WESTLAKE_MAP,
                "map_url": site.map_url,
            },
        )

    @app.get("/lang/{code}")
    async def language(code: str, next: str | None = None) -> Response:
        """Switch the interface language and go back to the page."""
        if code not in LANGUAGES:
            return Response("Unknown language.", status_code=404)
        response = RedirectResponse(safe_next(next, "/"), status_code=303)
        response.set_cookie(
            LANGUAGE_COOKIE.name,
            code,
            max_age=365 * 24 * 3600,
            httponly=True,
            samesite="lax",
        )
        return response

    @app.post("/analytics/hit")
    async def analytics_hit(request: Request) -> Response:
        """Count a page view, only when the visitor allowed analytics."""
        response = Response(status_code=204)
        if not consent.allows("analytics"):
            return response
        try:
            body = await request.json()
        except ValueError:
            body = None
        path = hit_path(body)
        if path is None:
            return Response(
                'Send a JSON object such as {"path": "/"}.', status_code=400
            )
        site.page_views.add(path)
        if ANALYTICS_COOKIE.name not in request.cookies:
            response.set_cookie(
                ANALYTICS_COOKIE.name,
                secrets.token_urlsafe(16),
                max_age=int(ANALYTICS_MAX_AGE.total_seconds()),
                httponly=True,
                samesite="lax",
            )
        return response

    @app.get("/analytics/stats")
    async def analytics_stats() -> Response:
        """The page views counted so far, as JSON."""
        views = site.page_views
        return JSONResponse(
            {"total": views.total, "paths": views.by_path()},
            headers={"Cache-Control": "no-store"},
        )

    app.add_middleware(
        ConsentMiddleware,
        policy=build_policy(),
        secret_key=secret,
        config=config,
        folder=INSTANCE_PATH,
        templates=templates,
        debug=debug,
    )
    app.state.demo = site
    return app

"""The ASGI apps served by uvicorn in :mod:`bench.asgi`.

``create()`` is a uvicorn app factory; the kind comes from the environment
variable ``BENCH_ASGI_KIND`` (uvicorn's ``--factory`` passes no argument).
Every kind serves the same ~2 KB HTML page as :mod:`bench.apps`, rendered
with Starlette's ``Jinja2Templates`` from a template compiled once:

- ``plain``: Starlette, no middleware.
- ``consent``: ``ConsentMiddleware``, auto-inject off; the page asks
  ``consent.allows("analytics")``.
- ``consent_unasked``: ``ConsentMiddleware``, auto-inject off; the page
  never asks.
- ``session``: Starlette's ``SessionMiddleware``; the page reads
  ``session["x"]`` (Starlette's own signed cookie, the reference cost).

All four answer the same bytes when the consent cookie grants analytics and
the session cookie holds ``x``.
"""

from __future__ import annotations

import base64
import json
import os
import typing as t

import itsdangerous
import jinja2
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from consent.asgi import ConsentMiddleware

from .apps import CONTEXT
from .apps import KINDS
from .apps import page_source
from .common import SECRET_KEY
from .common import bench_policy


def create() -> Starlette:
    """Return the benchmark app named by ``BENCH_ASGI_KIND``."""
    kind = os.environ.get("BENCH_ASGI_KIND", "plain")
    if kind not in KINDS:
        raise ValueError(f"BENCH_ASGI_KIND must be one of {', '.join(KINDS)}")
    env = jinja2.Environment(autoescape=True)
    templates = Jinja2Templates(env=env)
    middleware: list[Middleware] = []
    if kind.startswith("consent"):
        middleware.append(
            Middleware(
                ConsentMiddleware,
                policy=bench_policy(),
                secret_key=SECRET_KEY,
                templates=templates,
                config={"CONSENT_AUTO_INJECT": False},
            )
        )
    elif kind == "session":
        middleware.append(Middleware(SessionMiddleware, secret_key=SECRET_KEY))
    template = env.from_string(page_source(kind))

    async def index(request: Request) -> Response:
        context: dict[str, t.Any] = {"analytics": True, **CONTEXT}
        if kind == "session":
            context["session"] = request.session
        return Response(template.render(context), media_type="text/html")

    return Starlette(routes=[Route("/", index)], middleware=middleware)


def session_cookie() -> str:
    """A valid Starlette session cookie holding ``x`` and three other keys."""
    data = {
        "x": 1,
        "_fresh": True,
        "_user_id": "4182",
        "csrf_token": "5b1e0c7d9a3f" * 3,
    }
    payload = base64.b64encode(json.dumps(data).encode())
    return itsdangerous.TimestampSigner(SECRET_KEY).sign(payload).decode()

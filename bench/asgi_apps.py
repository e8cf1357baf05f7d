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
- ``passthrough`` (timed in process only): :class:`PassThrough`, the least
  any middleware that enforces cookies does: it wraps ``send`` and looks
  through the response's headers for ``Set-Cookie``.

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

#: The kinds of ASGI app: those of :mod:`bench.apps`, and the floor.
ASGI_KINDS = (*KINDS, "passthrough")


class PassThrough:
    """A pure ASGI middleware that wraps ``send`` and reads the response's
    headers, and does nothing else: the floor of an enforcing middleware."""

    def __init__(self, app: t.Any) -> None:
        self.app = app

    async def __call__(self, scope: t.Any, receive: t.Any, send: t.Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_on(message: t.Any) -> None:
            if message["type"] == "http.response.start":
                for name, _ in message.get("headers", ()):
                    if name.lower() == b"set-cookie":
                        break
            await send(message)

        await self.app(scope, receive, send_on)


def create() -> Starlette:
    """Return the benchmark app named by ``BENCH_ASGI_KIND``."""
    return app_of(os.environ.get("BENCH_ASGI_KIND", "plain"))


def app_of(kind: str) -> Starlette:
    """Return the benchmark app of ``kind`` (one of :data:`ASGI_KINDS`)."""
    if kind not in ASGI_KINDS:
        raise ValueError(f"the kind must be one of {', '.join(ASGI_KINDS)}")
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
    elif kind == "passthrough":
        middleware.append(Middleware(PassThrough))
    template = env.from_string(page_source("plain" if kind == "passthrough" else kind))

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


def scope(headers: list[tuple[bytes, bytes]]) -> dict[str, t.Any]:
    """A new HTTP scope for ``GET /`` with ``headers``, as uvicorn makes it."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }


def request_headers(cookie: str) -> list[tuple[bytes, bytes]]:
    """The headers of the benchmark's requests, carrying ``cookie``."""
    return [
        (b"host", b"127.0.0.1"),
        (b"accept", b"*/*"),
        (b"cookie", cookie.encode("latin-1")),
    ]


async def receive() -> dict[str, t.Any]:
    """The ASGI ``receive`` of a request without a body."""
    return {"type": "http.request", "body": b"", "more_body": False}

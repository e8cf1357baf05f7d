"""What only the ASGI middleware does: its keyword settings, the request's
state, FastAPI's dependencies and templates, mounting, its own static files,
signals from the wrapped app, and scopes that are not HTTP. What every
adapter does is tested by the conformance suite (``tests/conformance``)."""

from __future__ import annotations

import contextlib
import typing as t
from pathlib import Path

import pytest
from fastapi import Depends
from fastapi import FastAPI
from fastapi import Request as FastAPIRequest
from fastapi.templating import Jinja2Templates
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.responses import JSONResponse
from starlette.routing import Mount
from starlette.routing import Route
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from consent import ConfigurationError
from consent.asgi import ConsentMiddleware
from consent.asgi import consent_changed
from consent.asgi import consent_given
from consent.asgi import current_consent
from consent.asgi import requires
from consent.asgi.testing import find_middleware
from consent.assets import asset_version
from consent.assets import static_files
from tests.conftest import PAGE
from tests.conftest import SECRET_KEY
from tests.conftest import csrf_token_in
from tests.conftest import make_policy

BANNER = 'id="cookie-consent"'


async def page(request: Request) -> HTMLResponse:
    return HTMLResponse("<!doctype html><html><body><main>Page</main></body></html>")


def config_of(**settings: t.Any) -> dict[str, t.Any]:
    """``CONSENT_*`` settings from short names: ``cookie_name=...``."""
    return {f"CONSENT_{name.upper()}": value for name, value in settings.items()}


def starlette_app(
    tmp_path: Path,
    routes: list[t.Any] | None = None,
    *,
    secret_key: t.Any = SECRET_KEY,
    config: dict[str, t.Any] | None = None,
    **settings: t.Any,
):
    mapping = {"CONSENT_RECEIPTS_URL": None, **config_of(**settings), **(config or {})}
    return Starlette(
        routes=routes or [Route("/", page)],
        middleware=[
            Middleware(
                ConsentMiddleware,
                policy=make_policy(),
                secret_key=secret_key,
                config=mapping,
                folder=tmp_path,
            )
        ],
    )


def client_of(app: t.Any, **kwargs: t.Any) -> TestClient:
    return TestClient(app, base_url="http://localhost", **kwargs)


def choose(client: TestClient, action: str, path: str = "/consent") -> t.Any:
    token = client.get(path).json()["csrf_token"]
    return client.post(
        path, data={"action": action, "csrf_token": token}, follow_redirects=False
    )


# Settings: a config mapping of CONSENT_* keys, as a Flask app's config.


def test_config_settings(tmp_path: Path) -> None:
    app = starlette_app(tmp_path, cookie_name="choice", layout="box")
    settings = find_middleware(app).settings
    assert (settings.cookie_name, settings.layout) == ("choice", "box")
    client = client_of(app)
    assert "consent-layout-box" in client.get("/").text
    assert client.cookies.get("choice_csrf") is not None
    assert choose(client, "reject_all").status_code == 303
    assert client.cookies.get("choice") is not None


def test_config_mapping_keeps_every_key(tmp_path: Path) -> None:
    app = starlette_app(
        tmp_path,
        config={"CONSENT_COOKIE_NAME": "from_config", "CONSENT_THEME": "dark"},
    )
    settings = find_middleware(app).settings
    assert settings.cookie_name == "from_config"
    assert settings.theme == "dark"
    assert settings.secret_keys == (SECRET_KEY,)


def test_secret_key_in_the_config_wins(tmp_path: Path) -> None:
    other = "another secret key, long enough to sign the cookies"
    app = starlette_app(tmp_path, config={"CONSENT_SECRET_KEY": other})
    assert find_middleware(app).settings.secret_keys == (other,)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cookie_samesite": "lax"}, "CONSENT_COOKIE_SAMESITE must be one of"),
        ({"url_prefix": "/"}, "CONSENT_URL_PREFIX must be a path"),
        ({"cookie_names": "x"}, "Unknown setting CONSENT_COOKIE_NAMES"),
        ({"secret_key": None}, "Consent signs its cookie"),
        ({"admin_access": lambda request: True}, "under ASGI use the `consent"),
    ],
)
def test_misconfiguration_fails_when_the_middleware_is_built(
    tmp_path: Path, kwargs: dict[str, t.Any], message: str
) -> None:
    secret_key = kwargs.pop("secret_key", SECRET_KEY)
    with pytest.raises(ConfigurationError, match=message):
        ConsentMiddleware(
            page,
            make_policy(),
            secret_key=secret_key,
            config=config_of(**kwargs),
            folder=tmp_path,
        )


def test_selectors_get_the_starlette_request(tmp_path: Path) -> None:
    seen: list[t.Any] = []

    def select(request: Request) -> str:
        seen.append(request)
        return request.query_params.get("lang", "en")

    app = starlette_app(tmp_path, language_selector=select)
    html = client_of(app).get("/?lang=en").text
    assert 'lang="en"' in html
    assert seen and all(isinstance(r, Request) for r in seen)


# The request's consent.


def test_request_state_and_current_consent(tmp_path: Path) -> None:
    async def state(request: Request) -> JSONResponse:
        visitor = request.state.consent
        return JSONResponse(
            {
                # The proxy reads the visitor the middleware put in the state.
                "same": current_consent.request is visitor.request,
                "analytics": current_consent.allows("analytics"),
                "needs_banner": visitor.needs_banner,
            }
        )

    app = starlette_app(tmp_path, routes=[Route("/state", state)])
    client = client_of(app)
    assert client.get("/state").json() == {
        "same": True,
        "analytics": False,
        "needs_banner": True,
    }
    choose(client, "accept_all")
    assert client.get("/state").json() == {
        "same": True,
        "analytics": True,
        "needs_banner": False,
    }


def test_current_consent_outside_a_request() -> None:
    with pytest.raises(RuntimeError, match="ConsentMiddleware"):
        current_consent.allows("analytics")


def test_request_state_csp_nonce(tmp_path: Path) -> None:
    async def index(request: Request) -> HTMLResponse:
        request.state.csp_nonce = "st4te"
        return HTMLResponse("<html><body><p>Page</p></body></html>")

    html = client_of(starlette_app(tmp_path, routes=[Route("/", index)])).get("/").text
    assert BANNER in html
    assert 'nonce="st4te"' in html


# FastAPI.

BANNER_OVERRIDE = """\
<aside id="cookie-consent" class="consent-banner">
  <form method="post" action="{{ update_url }}">
    <input type="hidden" name="csrf_token" value="{{ csrf_token }}">
    <input type="hidden" name="next" value="{{ next }}">
    <p>Our own banner.</p>
    <button type="submit" name="action" value="accept_all">Yes</button>
    <button type="submit" name="action" value="reject_all">No</button>
  </form>
</aside>
"""


def fastapi_app(tmp_path: Path) -> FastAPI:
    folder = tmp_path / "templates"
    (folder / "consent").mkdir(parents=True)
    (folder / "consent" / "banner.html").write_text(BANNER_OVERRIDE)
    (folder / "index.html").write_text(PAGE)
    templates = Jinja2Templates(directory=str(folder))
    app = FastAPI()
    app.add_middleware(
        ConsentMiddleware,
        policy=make_policy(),
        secret_key=SECRET_KEY,
        folder=tmp_path / "instance",
        templates=templates,
        config={"CONSENT_RECEIPTS_URL": None},
    )

    @app.get("/", response_class=HTMLResponse)
    def index(request: FastAPIRequest) -> t.Any:
        return templates.TemplateResponse(request, "index.html")

    @app.get("/map", dependencies=[Depends(requires("media"))])
    def lake_map() -> dict[str, str]:
        return {"map": "West Lake"}

    return app


def test_fastapi_templates_get_the_helpers_and_overrides(tmp_path: Path) -> None:
    client = client_of(fastapi_app(tmp_path))
    html = client.get("/").text
    assert html.count(BANNER) == 1
    assert "Our own banner." in html
    assert "Accept all" not in html
    # The app's template used the helpers: the settings link, the gate.
    assert 'class="consent-settings-link"' in html
    assert '<script src="/static/analytics.js"></script>' not in html
    token = csrf_token_in(html)
    client.post(
        "/consent",
        data={"action": "accept_all", "csrf_token": token},
        follow_redirects=False,
    )
    html = client.get("/").text
    assert '<script src="/static/analytics.js"></script>' in html
    assert "Our own banner." not in html


def test_fastapi_depends_requires(tmp_path: Path) -> None:
    client = client_of(fastapi_app(tmp_path))
    refused = client.get("/map")
    assert refused.status_code == 403
    assert "This page needs your permission" in refused.text
    assert refused.headers["content-type"] == "text/html; charset=utf-8"
    assert "private" in refused.headers["cache-control"]
    choose(client, "accept_all")
    allowed = client.get("/map")
    assert allowed.status_code == 200
    assert allowed.json() == {"map": "West Lake"}


# Mounting.


def test_mounted_app_links_under_its_root_path(tmp_path: Path) -> None:
    inner = starlette_app(tmp_path)
    outer = Starlette(routes=[Mount("/shop", app=inner)])
    client = client_of(outer)
    html = client.get("/shop/").text
    assert 'action="/shop/consent"' in html
    assert 'action="/shop/consent/preferences"' in html
    assert 'href="/shop/consent/declaration"' in html
    assert 'data-consent-api="/shop/consent"' in html
    token = csrf_token_in(html)
    response = client.post(
        "/shop/consent",
        data={"action": "reject_all", "csrf_token": token, "next": "/shop/"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/shop/"
    assert client.get("/shop/consent/preferences").status_code == 200
    assert client.get("/consent/preferences").status_code == 404


# The middleware's static files.


@pytest.mark.parametrize("filename", ["consent.js", "consent.css"])
def test_static_files_with_etag(tmp_path: Path, filename: str) -> None:
    client = client_of(starlette_app(tmp_path))
    content, media_type, version = static_files()[filename]
    unversioned = client.get(f"/consent/static/{filename}")
    assert unversioned.status_code == 200
    assert unversioned.content == content
    assert unversioned.headers["cache-control"] == "no-cache"
    assert unversioned.headers["etag"] == f'"{version}"'
    versioned = client.get(f"/consent/static/{filename}?v={asset_version(filename)}")
    assert versioned.headers["cache-control"] == "public, max-age=31536000"
    assert versioned.headers["content-type"].startswith(media_type)
    again = client.get(
        f"/consent/static/{filename}", headers={"If-None-Match": f'"{version}"'}
    )
    assert again.status_code == 304
    assert again.content == b""
    head = client.head(f"/consent/static/{filename}")
    assert head.status_code == 200
    assert head.content == b""
    posted = client.post(f"/consent/static/{filename}")
    assert posted.status_code == 405
    assert posted.headers["allow"] == "GET, HEAD"


# Signals.


@contextlib.contextmanager
def recorded(signal: t.Any) -> t.Iterator[list[dict[str, t.Any]]]:
    calls: list[dict[str, t.Any]] = []

    def record(sender: t.Any, **kwargs: t.Any) -> None:
        calls.append({"sender": sender, **kwargs})

    with signal.connected_to(record):
        yield calls


def test_signals_come_from_the_wrapped_app(tmp_path: Path) -> None:
    app = starlette_app(tmp_path)
    middleware = find_middleware(app)
    client = client_of(app)
    with recorded(consent_given) as given, recorded(consent_changed) as changed:
        choose(client, "reject_all")
        choose(client, "accept_all")
    # Sent for every saved choice; a change only when there was one before.
    assert [call["sender"] for call in given] == [middleware.app] * 2
    assert given[0]["previous"] is None
    assert given[0]["state"].granted == frozenset()
    assert given[1]["previous"].consent_id == given[0]["state"].consent_id
    assert given[1]["previous"].granted == frozenset()
    (change,) = changed
    assert change["sender"] is middleware.app
    assert change["state"].granted == {"analytics", "media", "westlake_map"}


# Scopes that are not HTTP.


def test_lifespan_and_websocket_pass_through(tmp_path: Path) -> None:
    events: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: t.Any) -> t.AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("shutdown")

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        text = await websocket.receive_text()
        await websocket.send_text(f"echo {text}")
        await websocket.close()

    app = Starlette(
        routes=[Route("/", page), WebSocketRoute("/ws", echo)],
        middleware=[
            Middleware(
                ConsentMiddleware,
                policy=make_policy(),
                secret_key=SECRET_KEY,
                folder=tmp_path,
                config={"CONSENT_RECEIPTS_URL": None},
            )
        ],
        lifespan=lifespan,
    )
    with client_of(app) as client:
        assert events == ["startup"]
        with client.websocket_connect("/ws") as websocket:
            websocket.send_text("lake")
            assert websocket.receive_text() == "echo lake"
        assert BANNER in client.get("/").text
    assert events == ["startup", "shutdown"]


def test_plain_asgi_app_without_starlette(tmp_path: Path) -> None:
    async def app(scope: t.Any, receive: t.Any, send: t.Any) -> None:
        assert scope["type"] == "http"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/html; charset=utf-8")],
            }
        )
        await send(
            {"type": "http.response.body", "body": b"<html><body>Hi</body></html>"}
        )

    wrapped = ConsentMiddleware(
        app,
        make_policy(),
        secret_key=SECRET_KEY,
        folder=tmp_path,
        config={"CONSENT_RECEIPTS_URL": None},
    )
    response = client_of(wrapped).get("/")
    assert response.status_code == 200
    assert BANNER in response.text
    assert response.text.endswith("Hi</body></html>")
    assert "consent_csrf" in response.cookies


def test_a_request_leaves_no_reference_cycle(tmp_path: Path) -> None:
    """The visitor refers to the scope and the scope's state to the visitor:
    the middleware breaks that cycle when the request ends, so a busy server
    does not leave every request to the garbage collector."""
    import asyncio
    import gc
    from datetime import datetime
    from datetime import timezone

    from consent import decide

    async def app(scope: t.Any, receive: t.Any, send: t.Any) -> None:
        assert scope["state"]["consent"].allows("analytics")
        body = b"<!doctype html><html><body><main>Page</main></body></html>"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/html; charset=utf-8")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    middleware = ConsentMiddleware(
        app,
        make_policy(),
        secret_key=SECRET_KEY,
        folder=tmp_path,
        config=config_of(receipts_url=None),
    )
    value = middleware.site.codec.encode(
        decide(middleware.settings.policy, "accept_all", now=datetime.now(timezone.utc))
    )
    sent: list[dict[str, t.Any]] = []

    async def receive() -> dict[str, t.Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, t.Any]) -> None:
        sent.append(message)

    async def requests(count: int) -> None:
        for _ in range(count):
            scope = {
                "type": "http",
                "method": "GET",
                "scheme": "http",
                "path": "/",
                "query_string": b"",
                "root_path": "",
                "headers": [(b"cookie", f"consent={value}".encode())],
            }
            await middleware(scope, receive, send)

    async def garbage_left() -> int:
        await requests(5)
        gc.collect()
        gc.disable()
        try:
            await requests(50)
            sent.clear()
            return gc.collect()
        finally:
            gc.enable()

    assert asyncio.run(garbage_left()) == 0

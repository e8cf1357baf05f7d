"""Fixtures for browser tests: the demo on loopback and headless Chromium.

Chromium is Debian's (``/usr/bin/chromium``), driven by Playwright; the
servers bind 127.0.0.1 only and are stopped when the tests end.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import socket
import threading
import typing as t

import pytest
from playwright.sync_api import Browser
from playwright.sync_api import BrowserContext
from playwright.sync_api import Playwright
from playwright.sync_api import sync_playwright
from werkzeug.serving import BaseWSGIServer
from werkzeug.serving import make_server

from consent.assets import banner_script_hash

CHROMIUM = "/usr/bin/chromium"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Every host name resolves to loopback: nothing leaves the machine.
    "--host-resolver-rules=MAP * 127.0.0.1",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.browser)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclasses.dataclass
class LiveServer:
    """A WSGI app served in a thread on loopback."""

    server: BaseWSGIServer
    thread: threading.Thread
    url: str

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def serve(app: t.Any, host: str = "127.0.0.1", port: int | None = None) -> LiveServer:
    """Serve ``app`` on ``host`` until :meth:`LiveServer.stop`."""
    port = port or free_port(host)
    server = make_server(host, port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return LiveServer(server, thread, f"http://{host}:{port}")


# Package scope: while Playwright's sync API is open its event loop counts as
# running in this thread, which breaks code that later runs a loop of its own
# (Flask's async views through asgiref) in the tests collected after these.
@pytest.fixture(scope="package")
def playwright() -> cabc.Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> cabc.Iterator[Browser]:
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
    )
    yield browser
    browser.close()


@dataclasses.dataclass
class LiveASGIServer:
    """An ASGI app served by uvicorn in a thread on loopback."""

    server: t.Any
    thread: threading.Thread
    url: str

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve_asgi(app: t.Any, port: int | None = None) -> LiveASGIServer:
    """Serve ``app`` with uvicorn on 127.0.0.1 until :meth:`LiveASGIServer.stop`."""
    import time

    import uvicorn

    port = port or free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, (
            "uvicorn did not start"
        )
        time.sleep(0.02)
    return LiveASGIServer(server, thread, f"http://127.0.0.1:{port}")


def _start_demo(
    twin: str, instance: t.Any
) -> tuple[LiveServer | LiveASGIServer, LiveServer]:
    from examples.hangzhou_demo import create_app
    from examples.hangzhou_demo.asgi import create_asgi_app
    from examples.hangzhou_demo.mapapp import create_map_app

    map_port, site_port = free_port(), free_port()
    # The map may be framed by the site only (its CSP frame-ancestors).
    origins = (f"http://127.0.0.1:{site_port}", f"http://localhost:{site_port}")
    map_server = serve(create_map_app(site_origins=origins), port=map_port)
    settings = {
        "TESTING": True,
        "SECRET_KEY": "browser-test-secret-key-0123456789abcdef",
        "CONSENT_RECEIPTS_URL": f"sqlite:///{instance}/receipts.db",
        "CONSENT_RECEIPTS_SPOOL_DIR": str(instance),
    }
    map_origin = f"http://localhost:{map_port}"
    site: LiveServer | LiveASGIServer
    if twin == "flask":
        site = serve(create_app({**settings, "MAP_ORIGIN": map_origin}), port=site_port)
    else:
        app = create_asgi_app(settings, map_origin=map_origin)
        site = serve_asgi(app, port=site_port)
    return site, map_server


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> cabc.Iterator[str]:
    """The Hangzhou demo (Flask) and its map provider, served on loopback."""
    site, map_server = _start_demo("flask", tmp_path_factory.mktemp("demo"))
    try:
        yield site.url
    finally:
        site.stop()
        map_server.stop()


@pytest.fixture(scope="session")
def demo_asgi(tmp_path_factory: pytest.TempPathFactory) -> cabc.Iterator[str]:
    """The demo's ASGI twin (FastAPI, uvicorn) and its map provider."""
    site, map_server = _start_demo("asgi", tmp_path_factory.mktemp("demo-asgi"))
    try:
        yield site.url
    finally:
        site.stop()
        map_server.stop()


@pytest.fixture(params=["flask", "asgi"])
def any_demo(request: pytest.FixtureRequest) -> str:
    """Each twin of the demo in turn: the main flows must hold on both."""
    return t.cast(
        str,
        request.getfixturevalue("demo" if request.param == "flask" else "demo_asgi"),
    )


@pytest.fixture
def context(browser: Browser) -> cabc.Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context
    context.close()


@pytest.fixture
def context_nojs(browser: Browser) -> cabc.Iterator[BrowserContext]:
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, java_script_enabled=False
    )
    yield context
    context.close()


# A small site of our own, beside the demo: one page per layout and theme,
# with a gated script, a gated embed and a strict Content-Security-Policy.

#: A strict policy: scripts from the site itself, and the banner's inline
#: script by its hash (consent.assets.csp_sources).
SITE_CSP = f"script-src 'self' {banner_script_hash()}; object-src 'none'"

SITE_PAGE = """\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>West Lake · Hangzhou Digital</title>
<link rel="stylesheet" href="/site.css">
{{ consent_head() }}
{{ consent_script("analytics", src="/analytics.js", data_endpoint="/analytics/hit") }}
{%- if inline_gated %}
{{ consent_script("analytics", body="window.inlineGatedRan = true;") }}
{%- endif %}
{%- if module %}
{{ consent_script("analytics", "/module.js", type="module") }}
{%- endif %}
</head>
<body>
{%- if banner_first %}{{ consent_banner() }}{% endif %}
<header class="top"><a href="/">Hangzhou <b>Digital</b></a></header>
<main>
<h1 id="headline">West Lake, a walk around the water</h1>
<p class="lede">Three causeways, a ring of hills and a thousand years of
poems: an afternoon by the lake that Hangzhou grew around.</p>
<p>West Lake lies on the western edge of the old city, with hills on three
sides and the city on the fourth. The Su Causeway crosses it from north to
south, lined with willows and peach trees; the Bai Causeway runs from the
Broken Bridge to Solitary Hill. Early in the morning the water is still and
the pagodas on the far shore show twice, once in the air and once in the
lake.</p>
<p>Start at the Broken Bridge, where the snow melts first in winter, and walk
west along the Bai Causeway. <a href="/page/2">The second part</a> of this
walk follows the Su Causeway south to the Leifeng Pagoda.</p>
{{ consent_embed("westlake_map", "/map", title="Map of West Lake", height="320") }}
<p>The tea villages on the hills above the lake grow Longjing, picked by hand
in spring. A path climbs from the lake shore through the plantations; it is
steep in places, and the view back over the water is worth every step.</p>
<p>In the evening, boats cross to the Three Pools Mirroring the Moon, three
small stone pagodas standing in the water since the seventeenth century.</p>
</main>
<footer class="bottom">
<p>{{ consent_settings_link() }} · <a href="/consent/declaration">Cookies</a></p>
</footer>
</body>
</html>
"""

SITE_CSS = """\
*, *::before, *::after { box-sizing: border-box }
body { margin: 0; background: #fbfaf7; color: #1d232b;
  font: 1.125rem/1.7 Charter, "Noto Serif", Georgia, serif }
.top { padding: 1rem 1.5rem; border-bottom: 1px solid #ddd8cc;
  font: 600 1.25rem system-ui, sans-serif }
.top a { color: #0a6660; text-decoration: none }
main { max-width: 42rem; margin: 0 auto; padding: 2rem 1.5rem 4rem }
h1 { margin: 0 0 1rem; font-size: 2.25rem; line-height: 1.2 }
.lede { color: #4a5361; font-size: 1.25rem }
a { color: #0a6660 }
iframe { display: block; width: 100%; border: 0 }
.bottom { padding: 1.5rem; background: #1c2a2d; color: #e6ecea;
  font-family: system-ui, sans-serif }
.bottom a { color: #a9e3d9 }
"""

ANALYTICS_JS = """\
(function () {
  var s = document.currentScript;
  fetch(s.dataset.endpoint, {method: "POST", credentials: "same-origin",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({path: location.pathname})});
})();
"""


def site_policy() -> t.Any:
    """The demo's categories: necessary, analytics, embedded media."""
    from examples.hangzhou_demo.policy import build_policy

    return build_policy()


def make_site(
    instance_path: str,
    *,
    csp: str | None = SITE_CSP,
    banner_first: bool = False,
    module: bool = False,
    **config: t.Any,
) -> t.Any:
    """A one-article site with the banner, a gated script and a gated map.

    ``banner_first=True`` renders the banner right after ``<body>``; without
    it the extension injects it. ``/analytics/hit`` counts a view and sets
    ``_hz_analytics``, only with consent. ``csp`` is sent on every response;
    ``csp="nonce"`` sends ``script-src 'nonce-…'`` with a fresh nonce per
    request, and the page gets an inline gated script too.
    """
    import secrets

    from flask import Flask
    from flask import Response
    from flask import g
    from flask import render_template_string

    from consent.flask import Consent
    from consent.flask import current_consent as current

    app = Flask("site", instance_path=instance_path)
    app.config.update(SECRET_KEY="browser-site-secret-key-0123456789abcdef", **config)
    Consent(app, site_policy())
    hits: list[str] = []
    app.extensions["site_hits"] = hits

    @app.get("/")
    @app.get("/page/<int:number>")
    def page(number: int = 1) -> str:
        return render_template_string(
            SITE_PAGE,
            banner_first=banner_first,
            inline_gated=csp == "nonce",
            module=module,
        )

    @app.get("/module.js")
    def module_js() -> Response:
        return Response("window.moduleRan = true;", mimetype="text/javascript")

    @app.get("/site.css")
    def site_css() -> Response:
        return Response(SITE_CSS, mimetype="text/css")

    @app.get("/analytics.js")
    def analytics_js() -> Response:
        return Response(ANALYTICS_JS, mimetype="text/javascript")

    @app.get("/map")
    def map_page() -> Response:
        return Response(
            "<!doctype html><title>Map</title><p>West Lake map</p>",
            mimetype="text/html",
        )

    @app.post("/analytics/hit")
    def analytics_hit() -> Response:
        response = Response(status=204)
        if current.allows("analytics"):
            hits.append("hit")
            response.set_cookie("_hz_analytics", "v1", max_age=3600, httponly=True)
        return response

    if csp == "nonce":

        @app.before_request
        def _nonce() -> None:
            g.csp_nonce = secrets.token_urlsafe(16)

    if csp:

        @app.after_request
        def _csp(response: Response) -> Response:
            policy = csp
            if csp == "nonce":
                policy = f"script-src 'nonce-{g.csp_nonce}'; object-src 'none'"
            response.headers["Content-Security-Policy"] = policy
            return response

    return app


@pytest.fixture(scope="session")
def site(
    tmp_path_factory: pytest.TempPathFactory,
) -> cabc.Iterator[cabc.Callable[..., str]]:
    """``site(**config)``: the URL of a :func:`make_site` app, one per config."""
    servers: dict[str, LiveServer] = {}

    def start(**config: t.Any) -> str:
        key = repr(sorted(config.items()))
        if key not in servers:
            folder = tmp_path_factory.mktemp("site")
            servers[key] = serve(make_site(str(folder), **config))
        return servers[key].url

    yield start
    for server in servers.values():
        server.stop()

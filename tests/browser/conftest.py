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


@pytest.fixture(scope="session")
def playwright() -> cabc.Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> cabc.Iterator[Browser]:
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
    )
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> cabc.Iterator[str]:
    """The Hangzhou demo and its map provider, served on loopback."""
    from examples.hangzhou_demo import create_app
    from examples.hangzhou_demo.mapapp import create_map_app

    map_port = free_port()
    map_server = serve(create_map_app(), port=map_port)
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "browser-test-secret-key-0123456789abcdef",
            "MAP_ORIGIN": f"http://localhost:{map_port}",
        }
    )
    site = serve(app)
    try:
        yield site.url
    finally:
        site.stop()
        map_server.stop()


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

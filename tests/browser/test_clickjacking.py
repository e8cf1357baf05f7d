"""Clickjacking (R40): a page of another site frames the preferences, to
trick a click on "Accept all"; the browser refuses to show them."""

from __future__ import annotations

import collections.abc as cabc
import typing as t
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext

from tests.browser.conftest import free_port
from tests.browser.conftest import serve

ATTACKER = """<!doctype html><html><body>
<p>Win a prize: click the button!</p>
<iframe id="victim" src="{src}" width="800" height="600"></iframe>
</body></html>"""


def attacker_app(src: str) -> cabc.Callable[..., t.Any]:
    body = ATTACKER.format(src=src).encode()

    def app(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [body]

    return app


def forms_in_frames_of(context: BrowserContext, victim: str) -> int:
    """Load the attacker's page (on "localhost", another site than
    127.0.0.1) and count the forms of the victim shown in its frames."""
    port = free_port()
    attacker = serve(attacker_app(victim), port=port)
    try:
        page = context.new_page()
        page.goto(f"http://localhost:{port}/")
        page.wait_for_load_state("load")
        host = urlsplit(victim).netloc
        frames = [f for f in page.frames if urlsplit(f.url).netloc == host]
        found = sum(f.locator("form").count() for f in frames)
        page.close()
        return found
    finally:
        attacker.stop()


@pytest.mark.parametrize(
    ("ancestors", "shown"), [("'self'", False), ("'none'", False), (None, True)]
)
def test_another_site_cannot_frame_the_preferences(
    site: cabc.Callable[..., str],
    context: BrowserContext,
    ancestors: str | None,
    shown: bool,
) -> None:
    victim = site(CONSENT_FRAME_ANCESTORS=ancestors) + "/consent/preferences"
    # Left to the app (None), and this app sets nothing: the frame shows the
    # form, which is what the headers prevent.
    assert (forms_in_frames_of(context, victim) > 0) is shown

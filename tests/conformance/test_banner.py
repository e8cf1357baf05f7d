"""The banner on the app's pages: shown, injected, styled, left out."""

from __future__ import annotations

import re

import pytest

from consent.assets import banner_css
from consent.assets import banner_style_hash
from tests.conformance.conftest import DEFAULT_VIEWS
from tests.conformance.conftest import View
from tests.conformance.pages import BANNER
from tests.conformance.pages import SCRIPT
from tests.conformance.pages import banner_of
from tests.conformance.pages import post_choice
from tests.conformance.pages import set_cookies
from tests.conformance.pages import tags
from tests.conformance.pages import token_of


def test_first_visit_shows_the_banner(adapter) -> None:
    client = adapter.make_app().client()
    response = client.get("/")
    assert response.status_code == 200
    html = response.text
    assert html.count(BANNER) == 1
    banner = banner_of(html)
    buttons = tags(banner, "button")
    assert len(buttons) == 3
    assert banner.count('<button type="submit" class="consent-button"') == 3
    assert [b.get("value") for b in buttons[:2]] == ["accept_all", "reject_all"]
    # Customize submits the form that leads to the preferences.
    assert buttons[2].get("form") == "consent-customize"
    assert all(b["type"] == "submit" for b in buttons)
    assert all(b["class"] == "consent-button" for b in buttons)
    # Accept and reject are in the same form, which posts to the endpoint.
    form = banner.split("<form", 2)[1]
    assert 'value="accept_all"' in form and 'value="reject_all"' in form
    assert tags(banner, "form")[0]["action"] == "/consent"
    assert SCRIPT not in html
    assert "Cookie" in response.vary
    assert response.cache_control.private
    assert "consent" not in set_cookies(response)
    assert "consent_csrf" in set_cookies(response)


def test_settings_link_opens_the_preferences(adapter) -> None:
    html = adapter.make_app().client().get("/").text
    links = [a for a in tags(html, "a") if a.get("class") == "consent-settings-link"]
    assert len(links) == 1
    assert links[0]["href"] == "/consent/preferences?next=/"


def test_banner_is_injected_first_in_the_body(adapter) -> None:
    # First in the document: keyboard and screen-reader users meet the choice
    # before the page; CSS places the fixed layouts.
    html = adapter.make_app().client().get("/").text
    assert html.count(BANNER) == 1
    assert re.search(
        r"<body[^>]*>\s*(<style>[^<]*</style>\s*)?(<script[^>]*>.*?</script>\s*)?"
        r"<aside id=\"cookie-consent\"",
        html,
        re.DOTALL,
    )
    assert html.index(BANNER) < html.index("</footer>")


def test_page_without_a_banner_gets_only_the_script(adapter) -> None:
    client = adapter.make_app().client()
    token = token_of(client.get("/").text)
    client.post("/consent", data={"csrf_token": token, "action": "reject_all"})
    html = client.get("/").text
    assert BANNER not in html
    assert re.search(
        r'<script src="/consent/static/consent.js\?v=\w+" defer>'
        r"</script></body>",
        html,
    )


MANUAL = View(
    "<!doctype html><html><head>{{ consent_head() }}</head><body>"
    "<header>{{ consent_banner() }}</header><main>Text</main>"
    "</body></html>"
)


def test_banner_rendered_by_the_template_is_not_injected_again(adapter) -> None:
    client = adapter.make_app(views={**DEFAULT_VIEWS, "/manual": MANUAL}).client()
    html = client.get("/manual").text
    assert html.count(BANNER) == 1
    assert html.index(BANNER) < html.index("</header>")
    # The banner's styles come once, in the head, inline while it shows.
    assert html.count("<style>") == 1
    assert html.index("<style>") < html.index("</head>")
    assert 'rel="stylesheet"' not in html


def test_head_holds_the_first_paint_until_the_banner_is_parsed(adapter) -> None:
    """``consent_head()`` names the banner's last element in a render-blocking
    ``rel="expect"`` link while the banner shows, and drops it after."""
    client = adapter.make_app(views={**DEFAULT_VIEWS, "/manual": MANUAL}).client()
    html = client.get("/manual").text
    link = re.search(r'<link rel="expect" href="#([\w-]+)" blocking="render">', html)
    assert link is not None
    assert link.end() < html.index("</head>")
    banner = html[html.index(BANNER) : html.index("</aside>")]
    last = re.findall(r'<[a-z]+ id="([\w-]+)"', banner)[-1]
    assert last == link.group(1)
    post_choice(client, "reject_all")
    after = client.get("/manual").text
    assert 'rel="expect"' not in after
    assert "consent.js" in after


def test_no_injection_when_turned_off(adapter) -> None:
    client = adapter.make_app(CONSENT_AUTO_INJECT=False).client()
    assert BANNER not in client.get("/").text


def test_no_banner_once_chosen_even_from_the_template(adapter) -> None:
    views = {**DEFAULT_VIEWS, "/manual": View("<body>{{ consent_banner() }}</body>")}
    client = adapter.make_app(views=views).client()
    post_choice(client, "reject_all")
    assert BANNER not in client.get("/manual").text


def test_banner_styles_are_inline_only_while_it_shows(adapter) -> None:
    client = adapter.make_app().client()
    first = client.get("/").text
    assert f"<style>{banner_css()}</style>" in first
    assert banner_style_hash().startswith("'sha256-")
    token = token_of(first)
    client.post("/consent", data={"csrf_token": token, "action": "reject_all"})
    after = client.get("/").text
    assert "<style>" not in after


def test_inline_assets_can_be_turned_off(adapter) -> None:
    html = adapter.make_app(CONSENT_INLINE_ASSETS=False).client().get("/").text
    assert "<style>" not in html
    assert re.search(
        r'<link rel="stylesheet" href="/consent/static/consent.css\?v=', html
    )


@pytest.mark.parametrize("with_choice", [False, True])
def test_plain_view_is_left_alone(adapter, with_choice) -> None:
    client = adapter.make_app().client()
    if with_choice:
        post_choice(client, "accept_all")
    response = client.get("/plain")
    assert response.status_code == 200
    assert response.text == "plain text"
    assert "Cookie" not in response.vary
    assert "Set-Cookie" not in response.headers
    assert response.cache_control.private is None

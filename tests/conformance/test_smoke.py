"""The main flows, on every adapter."""

from __future__ import annotations

import re

from tests.conformance.conftest import View

BANNER = 'id="cookie-consent"'
SCRIPT = '<script src="/static/analytics.js"></script>'


def token_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match is not None, "no consent form"
    return match[1]


def test_first_page_shows_the_banner_and_nothing_optional(adapter) -> None:
    client = adapter.make_app().client()
    response = client.get("/")
    assert response.status_code == 200
    assert BANNER in response.text
    assert SCRIPT not in response.text
    assert "Cookie" in response.headers["Vary"]


def test_accept_all_then_the_page_runs_analytics(adapter) -> None:
    client = adapter.make_app().client()
    token = token_of(client.get("/").text)
    response = client.post(
        "/consent", data={"action": "accept_all", "csrf_token": token, "next": "/"}
    )
    assert response.status_code == 303
    assert response.location == "/"
    assert client.get_cookie("consent") is not None
    page = client.get("/")
    assert SCRIPT in page.text
    assert BANNER not in page.text


def test_cross_site_post_is_refused(adapter) -> None:
    client = adapter.make_app().client()
    token = token_of(client.get("/").text)
    response = client.post(
        "/consent",
        data={"action": "accept_all", "csrf_token": token},
        headers={"Origin": "http://evil.example"},
    )
    assert response.status_code == 403
    assert "make it on this site" in response.text
    assert client.get_cookie("consent") is None


def test_refused_cookie_is_filtered(adapter) -> None:
    views = {
        "/": View(
            "<html><body>hi</body></html>", cookies=(("_hz_analytics", "1", {}),)
        ),
    }
    client = adapter.make_app(views=views).client()
    response = client.get("/")
    assert not [
        h for h in response.set_cookie_headers if h.startswith("_hz_analytics=")
    ]


def test_requires_answers_403_without_consent(adapter) -> None:
    views = {"/map": View("<html><body>map</body></html>", requires="media")}
    client = adapter.make_app(views=views).client()
    response = client.get("/map")
    assert response.status_code == 403
    assert "needs your permission" in response.text


def test_streamed_page_gets_the_banner(adapter) -> None:
    body = (
        "<html><head></head><body>"
        "{% for i in range(3) %}<p>{{ i }}</p>{% endfor %}</body></html>"
    )
    views = {"/s": View(body, stream=True)}
    client = adapter.make_app(views=views).client()
    response = client.get("/s")
    assert response.text.index(BANNER) < response.text.index("<p>0</p>")


def test_gpc_is_honoured(adapter) -> None:
    from tests.factories import gpc_policy

    client = adapter.make_app(gpc_policy()).client()
    response = client.get("/", headers={"Sec-GPC": "1"})
    assert response.status_code == 200
    state = client.get("/consent").json()
    assert state["gpc"] is True
    assert state["choices"]["marketing"] is False

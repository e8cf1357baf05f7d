"""Making a choice: the form and JSON posts, the cookie, the redirect."""

from __future__ import annotations

import re
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from urllib.parse import urlsplit

import pytest

from tests.conformance.conftest import DEFAULT_VIEWS
from tests.conformance.conftest import View
from tests.conformance.pages import BANNER
from tests.conformance.pages import HALF_YEAR
from tests.conformance.pages import SCRIPT
from tests.conformance.pages import banner_of
from tests.conformance.pages import max_age_of
from tests.conformance.pages import post_choice
from tests.conformance.pages import set_cookies
from tests.conformance.pages import state_of
from tests.conformance.pages import tags
from tests.conformance.pages import token_of

ARTICLE = "<!doctype html><html><body><main>Article</main></body></html>"


def test_reject_all_sets_the_cookie_and_redirects(adapter) -> None:
    client = adapter.make_app().client()
    token = token_of(client.get("/").text)
    response = client.post(
        "/consent",
        data={"action": "reject_all", "csrf_token": token, "next": "/article?p=2"},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/article?p=2"
    assert response.cache_control.no_store
    header = set_cookies(response)["consent"]
    assert "HttpOnly" in header
    assert "SameSite=Lax" in header
    assert "Path=/" in header
    assert "Domain=" not in header
    assert "Secure" not in header  # plain HTTP
    assert abs(max_age_of(header) - HALF_YEAR) <= 2
    cookie = client.stored_cookie("consent")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"

    page = client.get("/")
    assert BANNER not in page.text
    assert SCRIPT not in page.text
    assert "consent" not in set_cookies(page)
    assert state_of(client)["choices"] == {
        "analytics": False,
        "media": False,
        "westlake_map": False,
    }


def test_accept_all_shows_the_analytics_script(adapter) -> None:
    client = adapter.make_app().client()
    response = post_choice(client, "accept_all")
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    page = client.get("/")
    assert SCRIPT in page.text
    assert BANNER not in page.text
    assert state_of(client)["choices"] == {
        "analytics": True,
        "media": True,
        "westlake_map": True,
    }


def test_save_grants_exactly_the_chosen_category(adapter) -> None:
    client = adapter.make_app().client()
    response = post_choice(client, "save", choice="analytics")
    assert response.status_code == 303
    assert SCRIPT in client.get("/").text
    assert state_of(client)["choices"] == {
        "analytics": True,
        "media": False,
        "westlake_map": False,
    }


def test_save_a_category_brings_its_services(adapter) -> None:
    client = adapter.make_app().client()
    post_choice(client, "save", choice=["media"])
    assert state_of(client)["choices"] == {
        "analytics": False,
        "media": True,
        "westlake_map": True,
    }
    assert SCRIPT not in client.get("/").text


def test_page_that_depends_on_consent_is_private_after_a_choice(adapter) -> None:
    client = adapter.make_app().client()
    post_choice(client, "accept_all")
    page = client.get("/")
    assert SCRIPT in page.text
    assert "Cookie" in page.vary
    # A shared cache must not hand this page (with its tracker) to others.
    assert page.cache_control.private


@pytest.mark.parametrize("action", ["accept", "", "ACCEPT_ALL", None])
def test_unknown_action_is_refused(adapter, action) -> None:
    client = adapter.make_app().client()
    token = token_of(client.get("/").text)
    data = {"csrf_token": token}
    if action is not None:
        data["action"] = action
    response = client.post("/consent", data=data)
    assert response.status_code == 400
    assert "Unknown action" in response.text
    assert client.get_cookie("consent") is None


@pytest.mark.parametrize("choice", ["marketing", "necessary"])
def test_save_with_an_unknown_category_is_refused(adapter, choice) -> None:
    client = adapter.make_app().client()
    response = post_choice(client, "save", choice=["analytics", choice])
    assert response.status_code == 400
    assert choice in response.text
    assert client.get_cookie("consent") is None


def test_state_json(adapter) -> None:
    app = adapter.make_app()
    client = app.client()
    response = client.get("/consent")
    assert response.cache_control.no_store
    assert "Cookie" in response.vary
    data = response.json()
    token = data["csrf_token"]
    expected = {
        "needs_banner": True,
        "revision": app.site.policy.revision,
        "choices": {"analytics": False, "media": False, "westlake_map": False},
        "consent_id": None,
        "given_at": None,
        "method": None,
    }
    assert {key: data[key] for key in expected} == expected
    # Scripts use the token of the JSON state to post a choice.
    response = client.post(
        "/consent",
        json={"action": "save", "choices": ["media"], "method": "preferences"},
        headers={"X-Consent-CSRF": token},
    )
    assert response.status_code == 200
    data = state_of(client)
    assert data["needs_banner"] is False
    assert data["choices"] == {"analytics": False, "media": True, "westlake_map": True}
    assert data["method"] == "preferences"
    assert len(data["consent_id"]) == 22
    given_at = datetime.fromisoformat(data["given_at"])
    assert abs(datetime.now(timezone.utc) - given_at) < timedelta(minutes=1)


def test_json_post_answers_json(adapter) -> None:
    client = adapter.make_app().client()
    token = token_of(client.get("/").text)
    response = client.post(
        "/consent",
        json={"action": "save", "choices": ["analytics"]},
        headers={"X-Consent-CSRF": token},
    )
    assert response.status_code == 200
    assert response.is_json
    assert response.cache_control.no_store
    data = response.json()
    assert data["choices"] == {"analytics": True, "media": False, "westlake_map": False}
    assert data["needs_banner"] is False
    assert data["method"] == "api"
    assert data["consent_id"]
    assert "consent" in set_cookies(response)
    assert SCRIPT in client.get("/").text


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (["accept_all"], "must be an object"),
        ({"action": "save", "choices": "analytics"}, "must be a list of keys"),
        ({"action": "save", "choices": [1]}, "must be a list of keys"),
    ],
)
def test_bad_json_post_is_refused(adapter, body, reason) -> None:
    client = adapter.make_app().client()
    token = token_of(client.get("/").text)
    response = client.post("/consent", json=body, headers={"X-Consent-CSRF": token})
    assert response.status_code == 400
    assert reason in response.text


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("//evil.example", "/"),
        ("///evil.example", "/"),
        ("https://evil.example", "/"),
        ("http:/evil.example", "/"),
        ("/\\evil.example", "/"),
        ("\\\\evil", "/"),
        ("%2F%2Fevil", "/"),
        ("javascript:alert(1)", "/"),
        (" //evil.example", "/"),
        ("/%0d%0aSet-Cookie:x", "/%0d%0aSet-Cookie:x"),
        ("/page\x01", "/"),
        ("/page\r\nSet-Cookie: x=1", "/"),
        ("/\t/evil.example", "/"),
        ("/page\x7f", "/"),
        ("/" + "a" * 3000, "/"),
        ("", "/"),
        ("/article?p=2#top", "/article?p=2#top"),
        ("/.//evil.example", "/.//evil.example"),
    ],
    ids=lambda v: repr(v)[:40],
)
def test_next_never_leaves_the_site(adapter, target, expected) -> None:
    client = adapter.make_app().client()
    token = token_of(client.get("/").text)
    response = client.post(
        "/consent", data={"action": "reject_all", "csrf_token": token, "next": target}
    )
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location == expected
    assert urlsplit(location).netloc == ""
    assert urlsplit(location).scheme == ""


def test_banner_returns_to_the_page(adapter) -> None:
    client = adapter.make_app(
        views={**DEFAULT_VIEWS, "/article": View(ARTICLE)}
    ).client()
    html = client.get("/article?p=2").text
    data = {i["name"]: i["value"] for i in tags(banner_of(html), "input")}
    response = client.post("/consent", data={**data, "action": "reject_all"})
    assert response.headers["Location"] == "/article?p=2"


def test_banner_returns_to_the_page_under_a_script_root(adapter) -> None:
    app = adapter.make_app(views={**DEFAULT_VIEWS, "/article": View(ARTICLE)})
    client = app.client(root_path="/shop")
    html = client.get("/article?p=2").text
    assert 'action="/shop/consent"' in html
    data = {i["name"]: i["value"] for i in tags(banner_of(html), "input")}
    response = client.post("/consent", data={**data, "action": "reject_all"})
    assert response.status_code == 303
    # Back to the page the visitor was reading, inside the mounted app.
    assert response.headers["Location"] == "/shop/article?p=2"


def test_cookie_is_secure_over_https(adapter) -> None:
    client = adapter.make_app().client()
    token = token_of(client.get("/consent/preferences").text)
    response = client.post(
        "https://localhost/consent", data={"action": "reject_all", "csrf_token": token}
    )
    assert response.status_code == 303
    assert "Secure" in set_cookies(response)["consent"]


def test_configured_cookie_name_is_used(adapter) -> None:
    client = adapter.make_app(CONSENT_COOKIE_NAME="choice").client()
    token = token_of(client.get("/consent/preferences").text)
    assert client.get_cookie("choice_csrf") is not None
    client.post("/consent", data={"action": "accept_all", "csrf_token": token})
    assert client.get_cookie("choice") is not None
    assert client.get_cookie("consent") is None


def test_host_prefix_cookie_is_secure_and_host_only(adapter) -> None:
    app = adapter.make_app(
        CONSENT_COOKIE_NAME="__Host-consent", CONSENT_COOKIE_SECURE=True
    )
    client = app.client()
    # A browser sends Secure cookies (the CSRF cookie too) only over HTTPS.
    token = token_of(client.get("https://localhost/consent/preferences").text)
    response = client.post(
        "https://localhost/consent", data={"action": "reject_all", "csrf_token": token}
    )
    (header,) = [
        h for h in response.set_cookie_headers if h.startswith("__Host-consent=")
    ]
    assert "Secure" in header
    assert "Path=/" in header
    assert "Domain=" not in header


def test_configured_max_age_is_used(adapter) -> None:
    app = adapter.make_app(CONSENT_MAX_AGE=timedelta(days=30))
    assert app.site.policy.max_age == timedelta(days=30)
    client = app.client()
    token = token_of(client.get("/consent/preferences").text)
    response = client.post(
        "/consent", data={"action": "reject_all", "csrf_token": token}
    )
    (header,) = [h for h in response.set_cookie_headers if h.startswith("consent=")]
    max_age = int(re.search(r"Max-Age=(\d+)", header)[1])  # type: ignore[index]
    assert abs(max_age - 30 * 86400) <= 2
    declared = client.get("/consent/declaration.json").json()
    durations = {
        c["name"]: c["duration"]
        for category in declared["categories"]
        for c in category["cookies"]
    }
    assert durations["consent"] == "30 days"


def test_url_prefix_moves_the_endpoints(adapter) -> None:
    views = {"/": View("<html><body><p>Page</p></body></html>")}
    app = adapter.make_app(views=views, CONSENT_URL_PREFIX="/privacy/consent")
    client = app.client()
    html = client.get("/").text
    assert 'action="/privacy/consent"' in html
    assert 'href="/privacy/consent/declaration"' in html
    assert client.get("/privacy/consent/preferences").status_code == 200
    assert client.get("/privacy/consent/declaration").status_code == 200
    assert client.get("/privacy/consent/declaration.json").status_code == 200
    assert client.get("/privacy/consent").is_json
    assert client.get("/consent/preferences").status_code == 404
    token = token_of(html)
    response = client.post(
        "/privacy/consent", data={"action": "reject_all", "csrf_token": token}
    )
    assert response.status_code == 303
    assert client.get_cookie("consent") is not None

"""Enforcement: the ``Set-Cookie`` filter and what a withdrawal expires."""

from __future__ import annotations

import logging

import pytest

from consent.testing import read_page
from tests.conformance.conftest import View
from tests.conformance.enforcement_app import ANALYTICS_JS
from tests.conformance.enforcement_app import PAGE
from tests.conformance.enforcement_app import POLICY
from tests.conformance.enforcement_app import make_app
from tests.conformance.pages import choice_of
from tests.conformance.pages import choose
from tests.conformance.pages import cookies_set
from tests.conformance.pages import expired
from tests.conformance.pages import tags

#: Where the ASGI adapter's expiring Set-Cookie differs from Flask's.

# Set-Cookie filtering.


def test_refused_analytics_cookies_are_removed(adapter) -> None:
    client = make_app(adapter).client()
    response = client.get("/tracked")
    assert response.status_code == 200
    names = set(cookies_set(response))
    assert "_hz_analytics" not in names
    assert "_hz_http" not in names
    # The necessary CSRF cookie of the banner and undeclared ones pass.
    assert {"consent_csrf", "site_lang"} <= names
    page = read_page(response.text)
    assert page.has_banner
    assert page.live == []
    assert page.inert == [("script", "analytics")]
    assert f'<script src="{ANALYTICS_JS}"' not in response.text
    assert client.get_cookie("_hz_analytics") is None
    assert client.get_cookie("_hz_http") is None


def test_refused_after_reject_all(adapter) -> None:
    client = make_app(adapter).client()
    choose(client, "reject_all")
    response = client.get("/tracked")
    assert "_hz_analytics" not in cookies_set(response)
    assert "_hz_http" not in cookies_set(response)
    page = read_page(response.text)
    assert not page.has_banner
    assert page.live == []


def test_allowed_analytics_cookies_pass(adapter) -> None:
    client = make_app(adapter).client()
    choose(client, "save", "analytics")
    response = client.get("/tracked")
    found = cookies_set(response)
    assert found["_hz_analytics"]["value"] == "visitor-1"
    assert found["_hz_analytics"]["max-age"] == "3600"
    assert "httponly" in found["_hz_http"]
    assert "secure" in found["_hz_http"]
    assert read_page(response.text).live == [("script", "analytics")]
    (live,) = tags(response.text, "script", "analytics")
    assert live["src"] == ANALYTICS_JS
    assert "type" not in live


#: A cookie another part of the app sets on every response.
OTHER = (("_hz_ext", "from-the-extension", {"httponly": True}),)


def test_cookie_set_by_another_part_of_the_app_is_removed(adapter) -> None:
    app = adapter.make_app(
        POLICY, {"/": View(PAGE)}, other_cookies=OTHER, CONSENT_RECEIPTS_URL=None
    )
    client = app.client()
    assert "_hz_ext" not in cookies_set(client.get("/"))
    choose(client, "reject_all")
    assert "_hz_ext" not in cookies_set(client.get("/"))
    choose(client, "accept_all")
    assert "httponly" in cookies_set(client.get("/"))["_hz_ext"]


def test_expiring_response_does_not_set_the_cookie_again(adapter) -> None:
    app = adapter.make_app(POLICY, {}, other_cookies=OTHER, CONSENT_RECEIPTS_URL=None)
    client = app.client()
    client.set_cookie("_hz_ext", "from-the-extension")
    # The first response already expires a cookie nothing allows.
    response = client.get("/")
    headers = [h for h in response.set_cookie_headers if h.startswith("_hz_ext=")]
    assert headers == [
        "_hz_ext=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/"
    ]


def test_filtered_response_varies_on_cookie(adapter) -> None:
    client = make_app(adapter).client()
    response = client.get("/plain")
    assert response.text == "plain text"
    assert "_hz_analytics" not in cookies_set(response)
    assert "Cookie" in response.vary
    assert response.cache_control.private


def test_response_without_consent_cookies_does_not_vary(adapter) -> None:
    views = {"/static-text": View("nothing personal", content_type="text/plain")}
    app = adapter.make_app(POLICY, views, CONSENT_RECEIPTS_URL=None)
    response = app.client().get("/static-text")
    assert "Cookie" not in response.vary
    assert "Set-Cookie" not in response.headers


def test_undeclared_allow(adapter, caplog: pytest.LogCaptureFixture) -> None:
    client = make_app(adapter, CONSENT_UNDECLARED="allow").client()
    with caplog.at_level(logging.WARNING, logger="consent"):
        assert "mystery" in cookies_set(client.get("/undeclared"))
    assert caplog.records == []


def test_undeclared_warn_by_default(adapter, caplog: pytest.LogCaptureFixture) -> None:
    app = make_app(adapter)
    assert app.site.settings.undeclared == "warn"
    client = app.client()
    with caplog.at_level(logging.WARNING, logger="consent"):
        for _ in range(3):
            assert "mystery" in cookies_set(client.get("/undeclared"))
    records = [r for r in caplog.records if "mystery" in r.getMessage()]
    assert len(records) == 1
    message = records[0].getMessage()
    assert records[0].levelno == logging.WARNING
    assert "undeclared cookie 'mystery'" in message
    assert "Cookie(name='mystery'" in message


def test_undeclared_block(adapter) -> None:
    client = make_app(adapter, CONSENT_UNDECLARED="block").client()
    assert "mystery" not in cookies_set(client.get("/undeclared"))
    # The consent cookies are never blocked.
    found = cookies_set(client.get("/tracked"))
    assert "consent_csrf" in found
    assert "site_lang" not in found
    response = choose(client, "accept_all")
    assert "consent" in cookies_set(response)
    assert "_hz_analytics" in cookies_set(client.get("/tracked"))


# Withdrawal expires what the visitor holds.


def _send_tracked_cookies(client) -> None:
    for name in ("_hz_analytics", "_hz_app", "_ga_X1Y2", "wl_map_pref", "lv_id"):
        client.set_cookie(name, "1")
    client.set_cookie("unrelated", "1")


def test_withdrawing_a_category_expires_its_cookies(adapter) -> None:
    client = make_app(adapter).client()
    choose(client, "accept_all")
    _send_tracked_cookies(client)
    response = choose(client, "save", "media")
    gone = expired(response)
    assert set(gone) == {"_hz_analytics", "_hz_app", "_ga_X1Y2"}
    app_cookie = gone["_hz_app"]
    assert app_cookie["domain"] == "example.com"
    assert app_cookie["path"] == "/app"
    assert app_cookie["value"] == ""
    assert "1970" in app_cookie["expires"]
    assert gone["_hz_analytics"]["path"] == "/"
    assert "domain" not in gone["_hz_analytics"]
    assert "consent" in cookies_set(response)
    assert choice_of(client)["analytics"] is False


def test_reject_after_accept_expires_everything_optional(adapter) -> None:
    client = make_app(adapter).client()
    choose(client, "accept_all")
    _send_tracked_cookies(client)
    response = choose(client, "reject_all")
    gone = expired(response)
    assert set(gone) == {"_hz_analytics", "_hz_app", "_ga_X1Y2", "wl_map_pref", "lv_id"}
    assert (gone["_hz_app"]["domain"], gone["_hz_app"]["path"]) == (
        "example.com",
        "/app",
    )
    assert "consent" not in gone
    assert "unrelated" not in cookies_set(response)


def test_withdrawing_one_service_expires_only_its_cookies(adapter) -> None:
    client = make_app(adapter).client()
    choose(client, "accept_all")
    _send_tracked_cookies(client)
    response = choose(client, "save", "analytics", "westlake_map")
    assert set(expired(response)) == {"lv_id"}


def test_cookies_placed_before_any_choice_expire_on_the_next_response(
    adapter,
) -> None:
    client = make_app(adapter).client()
    _send_tracked_cookies(client)
    assert set(expired(client.get("/plain"))) == {
        "_hz_analytics",
        "_hz_app",
        "_ga_X1Y2",
        "wl_map_pref",
        "lv_id",
    }


def test_granting_more_expires_nothing(adapter) -> None:
    client = make_app(adapter).client()
    choose(client, "save", "analytics")
    _send_tracked_cookies(client)
    response = choose(client, "accept_all")
    assert expired(response) == {}

"""The newcomer's path through the demo, in a real browser, on both twins."""

from __future__ import annotations

import pytest
from playwright.sync_api import BrowserContext

ANALYTICS_COOKIE = "_hz_analytics"


def _cookie_names(context: BrowserContext) -> set[str]:
    return {c["name"] for c in context.cookies()}


@pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
def test_reject_all_then_reload(
    any_demo: str, context: BrowserContext, context_nojs: BrowserContext, js: bool
) -> None:
    ctx = context if js else context_nojs
    page = ctx.new_page()
    hits: list[str] = []
    page.on("request", lambda r: hits.append(r.url) if "/analytics/" in r.url else None)
    page.goto(any_demo + "/")
    banner = page.locator("#cookie-consent")
    assert banner.is_visible()
    page.get_by_role("button", name="Reject all").click()
    # With JavaScript the banner closes in place; without, the page reloads.
    page.wait_for_selector("#cookie-consent", state="detached")
    assert page.url == any_demo + "/"
    page.reload()
    assert page.locator("#cookie-consent").count() == 0
    assert ANALYTICS_COOKIE not in _cookie_names(ctx)
    assert "consent" in _cookie_names(ctx)
    assert hits == []


@pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
def test_accept_all_loads_analytics(
    any_demo: str, context: BrowserContext, context_nojs: BrowserContext, js: bool
) -> None:
    ctx = context if js else context_nojs
    page = ctx.new_page()
    page.goto(any_demo + "/")
    assert page.locator("script[src*='analytics.js']").count() == 0
    assert page.locator("iframe").count() == 0
    accept = page.get_by_role("button", name="Accept all")
    if js:
        # Activated in place: the page view is counted without a reload.
        with page.expect_response(lambda r: "/analytics/hit" in r.url) as hit:
            accept.click()
        assert hit.value.status == 204
        assert ANALYTICS_COOKIE in _cookie_names(ctx)
    else:
        accept.click()
    page.wait_for_selector("#cookie-consent", state="detached")
    live_script = "script[src*='analytics.js']:not([type])"
    page.wait_for_selector(live_script, state="attached")
    page.wait_for_selector("iframe[title]", state="attached")


def test_nothing_optional_before_a_choice(
    any_demo: str, context: BrowserContext
) -> None:
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    for path in ("/", "/consent/declaration", "/"):
        page.goto(any_demo + path)
    assert _cookie_names(context) <= {"consent_csrf"}
    assert all(url.startswith(any_demo) for url in requests), requests
    assert page.evaluate("() => localStorage.length") == 0


def test_customize_goes_to_preferences_and_back(
    any_demo: str, context_nojs: BrowserContext
) -> None:
    page = context_nojs.new_page()
    page.goto(any_demo + "/")
    page.get_by_role("button", name="Customize").click()
    page.wait_for_url("**/consent/preferences**")
    boxes = page.locator("input[type=checkbox][name=choice]")
    assert boxes.count() >= 2
    assert all(not boxes.nth(i).is_checked() for i in range(boxes.count()))
    page.get_by_label("Analytics").check()
    page.get_by_role("button", name="Save choices").click()
    page.wait_for_url(any_demo + "/")
    assert page.locator("#cookie-consent").count() == 0
    assert page.locator("script[src*='analytics.js']").count() == 1
    assert page.locator("iframe[title]").count() == 0

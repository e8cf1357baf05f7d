"""consent.js in a real browser: choices without a reload, the preferences
dialog, gated scripts and embeds started in place, strict CSP, GPC."""

from __future__ import annotations

import collections.abc as cabc
import json
import typing as t

import pytest
from playwright.sync_api import Browser
from playwright.sync_api import BrowserContext
from playwright.sync_api import Page
from playwright.sync_api import Request

ANALYTICS_COOKIE = "_hz_analytics"

#: The computed properties that must be identical on Accept and Reject (R6).
PROPS = [
    "font-size",
    "font-weight",
    "color",
    "background-color",
    "border-top-width",
    "border-right-width",
    "border-bottom-width",
    "border-left-width",
    "padding-top",
    "padding-right",
    "padding-bottom",
    "padding-left",
    "text-decoration-line",
    "opacity",
    "display",
    "visibility",
]

#: Records layout shifts from the start of the page, including buffered ones.
LAYOUT_SHIFTS = """
window.consentShifts = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries())
    window.consentShifts.push({value: e.value, input: e.hadRecentInput});
}).observe({type: "layout-shift", buffered: true});
"""

#: Records Content-Security-Policy violations.
CSP_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.cspViolations.push(e.violatedDirective + " " + e.blockedURI));
"""

GPC_ON = (
    "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl',"
    " {get: () => true, configurable: true})"
)

# The choice a focused banner button makes: its value, or "customize" for
# the button that submits the form leading to the preferences.
ACTION_OF_FOCUSED = """(() => {
  const e = document.activeElement;
  return (e.tagName === "BUTTON" && e.value)
    || (e.getAttribute("form") === "consent-customize" ? "customize" : null);
})()"""


class Recorder:
    """The requests and main-frame navigations of a page."""

    def __init__(self, page: Page) -> None:
        self.requests: list[Request] = []
        self.navigations: list[str] = []
        page.on("request", lambda r: self.requests.append(r))
        page.on(
            "framenavigated",
            lambda f: self.navigations.append(f.url) if f == page.main_frame else None,
        )

    def count(self, path: str, method: str = "GET") -> int:
        return sum(
            1
            for r in self.requests
            if r.url.split("?")[0].endswith(path) and r.method == method
        )

    @property
    def hits(self) -> int:
        return self.count("/analytics/hit", "POST")


def _open(context: BrowserContext, url: str) -> tuple[Page, Recorder]:
    page = context.new_page()
    recorder = Recorder(page)
    page.goto(url)
    page.evaluate("window.sameDocument = true")
    return page, recorder


def _assert_no_reload(page: Page, recorder: Recorder) -> None:
    assert page.evaluate("window.sameDocument") is True
    assert len(recorder.navigations) == 1


def _gone(page: Page, selector: str) -> None:
    page.wait_for_selector(selector, state="detached", timeout=5000)


def _state(page: Page) -> dict[str, t.Any]:
    result: dict[str, t.Any] = page.evaluate(
        "fetch('/consent', {credentials: 'same-origin'}).then((r) => r.json())"
    )
    return result


def _cookie_names(context: BrowserContext) -> set[str]:
    return {c["name"] for c in context.cookies()}


@pytest.fixture
def url(site: cabc.Callable[..., str]) -> str:
    return site() + "/"


def test_accept_starts_analytics_without_a_reload(
    url: str, context: BrowserContext
) -> None:
    page, requests = _open(context, url)
    page.wait_for_timeout(200)
    assert requests.hits == 0
    assert page.locator("iframe").count() == 0
    with page.expect_response("**/analytics/hit"):
        page.get_by_role("button", name="Accept all").click()
    _gone(page, "#cookie-consent")
    _assert_no_reload(page, requests)
    assert requests.hits == 1
    assert ANALYTICS_COOKIE in _cookie_names(context)
    # The gated script and the map came to life in place.
    assert page.locator("script[src='/analytics.js']:not([type])").count() == 1
    assert page.locator("script[type='text/plain']").count() == 0
    assert page.locator("iframe[title='Map of West Lake']").count() == 1
    assert page.locator("[data-consent-embed]").count() == 0
    assert _state(page)["choices"] == {
        "analytics": True,
        "media": True,
        "westlake_map": True,
    }


def test_reject_without_a_reload(url: str, context: BrowserContext) -> None:
    page, requests = _open(context, url)
    page.get_by_role("button", name="Reject all").click()
    _gone(page, "#cookie-consent")
    _assert_no_reload(page, requests)
    page.wait_for_timeout(300)
    assert requests.hits == 0
    state = _state(page)
    assert state["needs_banner"] is False
    assert not any(state["choices"].values())
    page.reload()
    assert page.locator("#cookie-consent").count() == 0
    page.wait_for_timeout(200)
    assert requests.hits == 0
    assert ANALYTICS_COOKIE not in _cookie_names(context)


def test_customize_opens_a_dialog_and_escape_closes_it(
    url: str, context: BrowserContext
) -> None:
    page, requests = _open(context, url)
    customize = page.get_by_role("button", name="Customize")
    customize.click()
    dialog = page.locator("dialog.consent-dialog[open]")
    dialog.wait_for()
    _assert_no_reload(page, requests)
    assert page.evaluate("!!document.activeElement.closest('dialog[open]')")
    assert dialog.get_by_role("heading", name="Cookie settings").is_visible()
    # Nothing is ticked before a choice.
    switches = dialog.locator("input[name=choice]")
    assert switches.count() == 3
    assert not any(switches.nth(i).is_checked() for i in range(3))
    page.keyboard.press("Escape")
    _gone(page, "dialog")
    assert page.evaluate(ACTION_OF_FOCUSED) == "customize"
    # Closing is no choice: the banner stays.
    assert page.locator("#cookie-consent").is_visible()
    assert _state(page)["needs_banner"] is True


def test_customize_one_category_in_the_dialog(
    url: str, context: BrowserContext
) -> None:
    page, requests = _open(context, url)
    page.get_by_role("button", name="Customize").click()
    dialog = page.locator("dialog[open]")
    dialog.get_by_role("switch", name="Analytics").check()
    with page.expect_request("**/analytics/hit"):
        dialog.get_by_role("button", name="Save choices").click()
    _gone(page, "dialog")
    _gone(page, "#cookie-consent")
    _assert_no_reload(page, requests)
    assert requests.hits == 1
    # The map was not chosen: its placeholder stays.
    assert page.locator("[data-consent-embed]").count() == 1
    assert page.locator("iframe").count() == 0
    state = _state(page)
    assert state["choices"] == {
        "analytics": True,
        "media": False,
        "westlake_map": False,
    }
    assert state["method"] == "preferences"


def test_category_and_service_switches_follow_each_other(
    url: str, context: BrowserContext
) -> None:
    page, requests = _open(context, url)
    page.get_by_role("button", name="Customize").click()
    dialog = page.locator("dialog[open]")
    media = dialog.get_by_role("switch", name="Embedded media")
    service = dialog.get_by_role("switch", name="West Lake map")
    media.check()
    assert service.is_checked()
    media.uncheck()
    assert not service.is_checked()
    service.check()
    assert media.is_checked()
    dialog.get_by_role("button", name="Save choices").click()
    _gone(page, "dialog")
    page.locator("iframe[title='Map of West Lake']").wait_for()
    assert _state(page)["choices"] == {
        "analytics": False,
        "media": True,
        "westlake_map": True,
    }


def test_withdraw_through_cookie_settings(url: str, context: BrowserContext) -> None:
    page, requests = _open(context, url)
    with page.expect_response("**/analytics/hit"):
        page.get_by_role("button", name="Accept all").click()
    assert ANALYTICS_COOKIE in _cookie_names(context)
    settings = page.get_by_role("link", name="Cookie settings")
    settings.click()
    dialog = page.locator("dialog[open]")
    # The visitor's consent id and date are shown once they have chosen.
    consent_id = _state(page)["consent_id"]
    assert consent_id in dialog.locator(".consent-receipt").first.inner_text()
    # The analytics script and the map already run: withdrawing reloads the
    # page, the only way to stop them.
    with page.expect_event("load"):
        dialog.get_by_role("button", name="Reject all").click()
    assert len(requests.navigations) == 2
    assert page.evaluate("window.sameDocument") is None
    assert page.locator("iframe").count() == 0
    assert page.locator("script[src='/analytics.js']:not([type])").count() == 0
    assert ANALYTICS_COOKIE not in _cookie_names(context)
    hits = requests.hits
    page.goto(url.rstrip("/") + "/page/2")
    page.wait_for_timeout(300)
    assert requests.hits == hits
    assert page.locator("#cookie-consent").count() == 0


def test_cookie_settings_opens_the_dialog_on_a_page_without_banner(
    url: str, context: BrowserContext
) -> None:
    page, requests = _open(context, url)
    page.get_by_role("button", name="Reject all").click()
    _gone(page, "#cookie-consent")
    page.reload()
    page.get_by_role("link", name="Cookie settings").click()
    dialog = page.locator("dialog[open]")
    dialog.wait_for()
    assert dialog.get_by_role("button", name="Close").is_visible()
    dialog.get_by_role("button", name="Close").click()
    _gone(page, "dialog")
    assert page.evaluate("document.activeElement.textContent") == "Cookie settings"


def test_consent_change_event_carries_the_state(
    url: str, context: BrowserContext
) -> None:
    page, requests = _open(context, url)
    page.evaluate(
        "window.changes = [];"
        " document.addEventListener('consent:change',"
        " (e) => window.changes.push(e.detail))"
    )
    page.get_by_role("button", name="Accept all").click()
    page.wait_for_function("() => window.changes.length === 1")
    (detail,) = page.evaluate("window.changes")
    assert detail["needs_banner"] is False
    assert detail["choices"] == {
        "analytics": True,
        "media": True,
        "westlake_map": True,
    }
    assert detail["method"] == "banner"
    assert detail["consent_id"] == _state(page)["consent_id"]
    assert detail["given_at"]


def test_load_once_and_always_allow_on_an_embed(
    url: str, context: BrowserContext
) -> None:
    page, requests = _open(context, url)
    placeholder = page.locator("[data-consent-embed]")
    placeholder.get_by_role("button", name="Load once").click()
    page.locator("iframe[title='Map of West Lake']").wait_for()
    assert page.locator("iframe").get_attribute("src") == "/map"
    assert page.locator("iframe").get_attribute("height") == "320"
    # Loading once records nothing.
    assert _state(page)["needs_banner"] is True
    assert page.locator("#cookie-consent").is_visible()
    page.reload()
    page.locator("[data-consent-embed]").get_by_role(
        "button", name="Always allow"
    ).click()
    page.locator("iframe[title='Map of West Lake']").wait_for()
    state = _state(page)
    assert state["choices"]["westlake_map"] is True
    assert state["choices"]["analytics"] is False
    assert state["method"] == "embed"


def test_keyboard_only(site: cabc.Callable[..., str], context: BrowserContext) -> None:
    page, requests = _open(context, site(banner_first=True) + "/")
    for _ in range(5):
        page.keyboard.press("Tab")
        if page.evaluate(ACTION_OF_FOCUSED) == ("reject_all"):
            break
    else:
        pytest.fail("Reject all is not among the first 5 tab stops")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
    page.keyboard.press("Enter")
    _gone(page, "#cookie-consent")
    _assert_no_reload(page, requests)
    assert _state(page)["needs_banner"] is False
    assert requests.hits == 0
    # Focus fell back to the page, where the banner was, without scrolling:
    # the next Tab goes on into the page.
    assert page.evaluate("document.activeElement === document.body")
    assert page.evaluate("scrollY") == 0
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Hangzhou Digital"


@pytest.mark.parametrize("width", [320, 768, 1280])
def test_accept_and_reject_look_the_same(
    url: str, browser: Browser, width: int
) -> None:
    context = browser.new_context(viewport={"width": width, "height": 800})
    try:
        page = context.new_page()
        page.goto(url)
        banner = page.locator("#cookie-consent")
        accept = banner.get_by_role("button", name="Accept all")
        reject = banner.get_by_role("button", name="Reject all")
        customize = banner.get_by_role("button", name="Customize")
        script = (
            "(e, ps) => { const s = getComputedStyle(e);"
            " return Object.fromEntries(ps.map((p) => [p, s.getPropertyValue(p)])) }"
        )
        looks = [b.evaluate(script, PROPS) for b in (accept, reject, customize)]
        assert looks[0] == looks[1] == looks[2]
        tags = [b.evaluate("(e) => e.tagName") for b in (accept, reject, customize)]
        assert tags == ["BUTTON"] * 3
        boxes = [b.bounding_box() for b in (accept, reject, customize)]
        for box in boxes:
            assert box is not None
            assert box["x"] >= 0 and box["x"] + box["width"] <= width
            assert box["y"] >= 0 and box["y"] + box["height"] <= 800
            assert box["width"] >= 24 and box["height"] >= 24
        a = boxes[0]
        assert a is not None
        for other in boxes[1:]:
            assert other is not None
            assert abs(a["width"] - other["width"]) <= 2
            assert abs(a["height"] - other["height"]) <= 2
        assert accept.is_visible() and reject.is_visible()
    finally:
        context.close()


def test_no_layout_shift_on_load_and_accept(url: str, context: BrowserContext) -> None:
    context.add_init_script(LAYOUT_SHIFTS)
    page, requests = _open(context, url)
    page.wait_for_timeout(300)
    assert page.evaluate("window.consentShifts") == []
    page.get_by_role("button", name="Accept all").click()
    _gone(page, "#cookie-consent")
    page.wait_for_timeout(300)
    # The map replacing its placeholder moves what follows, right after the
    # click: a shift with recent input, which is not unexpected (CLS 0).
    shifts = page.evaluate("window.consentShifts")
    assert sum(s["value"] for s in shifts if not s["input"]) == 0


@pytest.mark.parametrize("csp", ["strict", "nonce"])
def test_strict_csp(site: cabc.Callable[..., str], browser: Browser, csp: str) -> None:
    base = site() if csp == "strict" else site(csp="nonce")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(CSP_VIOLATIONS)
    try:
        page = context.new_page()
        console: list[str] = []
        page.on("console", lambda m: console.append(m.text))
        response = page.goto(base + "/")
        assert response is not None
        header = response.headers["content-security-policy"]
        assert header.startswith(
            "script-src 'self'" if csp == "strict" else "script-src 'nonce-"
        )
        # Load once, then the dialog from Cookie settings, then accept in it.
        page.get_by_role("button", name="Load once").click()
        page.locator("iframe").wait_for()
        page.get_by_role("link", name="Cookie settings").click()
        dialog = page.locator("dialog[open]")
        with page.expect_request("**/analytics/hit"):
            dialog.get_by_role("button", name="Accept all").click()
        _gone(page, "#cookie-consent")
        if csp == "nonce":
            page.wait_for_function("() => window.inlineGatedRan === true")
        page.reload()
        page.get_by_role("link", name="Cookie settings").click()
        page.locator("dialog[open]").get_by_role("button", name="Reject all").click()
        _gone(page, "dialog")
        assert page.evaluate("window.cspViolations") == []
        assert not [m for m in console if "Content Security Policy" in m]
    finally:
        context.close()


def _gpc_requests(requests: Recorder) -> list[Request]:
    """The posts consent.js made for the browser's GPC signal."""
    return [
        r
        for r in requests.requests
        if r.method == "POST"
        and r.url.endswith("/consent")
        and json.loads(r.post_data or "{}").get("method") == "gpc_js"
    ]


def _gpc_posts(requests: Recorder) -> list[dict[str, t.Any]]:
    return [json.loads(r.post_data or "{}") for r in _gpc_requests(requests)]


def _wait_for_gpc_post(page: Page, requests: Recorder) -> None:
    """Wait (10 s at most) until consent.js has posted the signal and the
    answer has come back, then a little longer for a second post."""
    for _ in range(100):
        posted = _gpc_requests(requests)
        if posted:
            assert posted[0].response() is not None
            break
        page.wait_for_timeout(100)
    page.wait_for_timeout(300)


def test_gpc_in_javascript_posts_once(url: str, context: BrowserContext) -> None:
    context.add_init_script(GPC_ON)
    page, requests = _open(context, url)
    page.wait_for_function("() => navigator.globalPrivacyControl === true")
    _wait_for_gpc_post(page, requests)
    assert _gpc_posts(requests) == [{"action": "reject_all", "method": "gpc_js"}]
    state = _state(page)
    assert state.get("gpc") is True
    assert not any(state["choices"].values())
    # A signal refuses, but it is no choice: the banner still asks.
    assert state["needs_banner"] is True
    assert page.locator("#cookie-consent").is_visible()
    # The opt-out is on record: the next page view posts nothing.
    page.goto(url.rstrip("/") + "/page/2")
    page.wait_for_timeout(500)
    assert len(_gpc_posts(requests)) == 1


def test_gpc_seen_by_the_server_is_not_posted_again(url: str, browser: Browser) -> None:
    context = browser.new_context(extra_http_headers={"Sec-GPC": "1"})
    context.add_init_script(GPC_ON)
    try:
        page, requests = _open(context, url)
        assert page.locator(".consent-gpc").is_visible()
        page.wait_for_timeout(400)
        assert _gpc_posts(requests) == []
    finally:
        context.close()


def test_demo_accept_without_a_reload_then_withdraw(
    demo: str, context: BrowserContext
) -> None:
    """The Hangzhou demo: page views are counted right after accepting, the
    map loads in place, Consent Mode hears of it; withdrawing through
    Cookie settings expires the analytics cookie."""
    page, requests = _open(context, demo + "/")
    page.wait_for_timeout(200)
    assert requests.hits == 0
    with page.expect_response("**/analytics/hit"):
        page.get_by_role("button", name="Accept all").click()
    _gone(page, "#cookie-consent")
    _assert_no_reload(page, requests)
    page.locator("iframe[title='Map of West Lake']").wait_for()
    assert ANALYTICS_COOKIE in _cookie_names(context)
    update = page.evaluate(
        "() => [...window.dataLayer].reverse().map((e) => Array.from(e))"
        ".find((e) => e[0] === 'consent' && e[1] === 'update')"
    )
    assert update[2]["analytics_storage"] == "granted"

    page.get_by_role("link", name="Cookie settings").click()
    # What runs stops: withdrawing reloads the page.
    with page.expect_event("load"):
        page.locator("dialog[open]").get_by_role("button", name="Reject all").click()
    assert len(requests.navigations) == 2
    assert page.locator("iframe").count() == 0
    assert ANALYTICS_COOKIE not in _cookie_names(context)
    hits = requests.hits
    page.reload()
    page.wait_for_timeout(300)
    assert requests.hits == hits
    assert page.locator("#cookie-consent").count() == 0
    assert page.locator("iframe").count() == 0


def test_module_script_stays_inert_until_allowed(
    site: cabc.Callable[..., str], context: BrowserContext
) -> None:
    page, requests = _open(context, site(module=True) + "/")
    page.wait_for_timeout(200)
    gated = page.locator("script[data-consent-src='/module.js']")
    assert gated.get_attribute("type") == "text/plain"
    assert page.evaluate("window.moduleRan") is None
    page.get_by_role("button", name="Accept all").click()
    live = page.locator("script[src='/module.js']")
    live.wait_for(state="attached")
    # wait_for_function would need eval, which the page's CSP forbids.
    for _ in range(50):
        if page.evaluate("window.moduleRan") is True:
            break
        page.wait_for_timeout(100)
    assert page.evaluate("window.moduleRan") is True
    assert live.get_attribute("type") == "module"
    _assert_no_reload(page, requests)


def test_withdrawing_what_does_not_run_needs_no_reload(
    url: str, context: BrowserContext
) -> None:
    page, requests = _open(context, url)
    page.get_by_role("button", name="Customize").click()
    dialog = page.locator("dialog[open]")
    dialog.get_by_label("Analytics").check()
    with page.expect_response("**/analytics/hit"):
        dialog.get_by_role("button", name="Save choices").click()
    _gone(page, "dialog")
    # Withdrawing the map, which never loaded, changes nothing that runs.
    page.get_by_role("link", name="Cookie settings").click()
    page.locator("dialog[open]").get_by_role("button", name="Save choices").click()
    _gone(page, "dialog")
    _assert_no_reload(page, requests)

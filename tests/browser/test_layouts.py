"""Every layout and theme of the banner in a real browser: readable, never
moving or hiding the page, reflowing at 320 px.

Screenshots go to ``build/screenshots/`` (git-ignored), so a test run leaves
the working tree as it found it; ``UPDATE_SCREENSHOTS=1`` writes them into
``docs/_static/screenshots/`` instead, to refresh the docs' pictures."""

from __future__ import annotations

import collections.abc as cabc
import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser
from playwright.sync_api import Page

from consent.assets import banner_css
from consent.i18n import available_languages

ROOT = Path(__file__).resolve().parents[2]
SHOTS = (
    ROOT / "docs" / "_static" / "screenshots"
    if os.environ.get("UPDATE_SCREENSHOTS") == "1"
    else ROOT / "build" / "screenshots"
)
SHOTS.mkdir(parents=True, exist_ok=True)

#: Banner texts for a right-to-left test when no Arabic catalogue ships.
AR_TEXTS = {
    "banner.title": "اختيارك بشأن ملفات تعريف الارتباط",
    "banner.body": "يستخدم {controller} ملفات تعريف الارتباط اللازمة لعمل"
    " الموقع. وبإذنك، نودّ أيضًا استخدام ملفات اختيارية من أجل: {purposes}."
    " لا يعمل أي شيء اختياري قبل أن تختار، ويمكنك تغيير اختيارك في أي وقت"
    " من «إعدادات ملفات تعريف الارتباط».",
    "banner.declaration_link": "ملفات تعريف الارتباط التي نستخدمها",
    "button.accept_all": "قبول الكل",
    "button.reject_all": "رفض الكل",
    "button.customize": "تخصيص",
    "settings_link": "إعدادات ملفات تعريف الارتباط",
}

LAYOUTS = ["bar", "box", "center", "inline"]

#: (CONSENT_THEME, the browser's prefers-color-scheme)
THEMES = [("light", "light"), ("dark", "light"), ("auto", "light"), ("auto", "dark")]

#: Every layout shift, with what moved (tag, id, class; null for a
#: pseudo-element) from where to where, so a failure names the culprit.
LAYOUT_SHIFTS = """
window.consentShifts = [];
const rect = (r) => [r.x, r.y, r.width, r.height].join(",");
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.consentShifts.push(
    e.value + " " + e.sources.map((s) => [
      s.node ? `${s.node.nodeName}#${s.node.id || ""}.${s.node.className || ""}` : null,
      rect(s.previousRect), rect(s.currentRect)].join(" ")).join("; "));
}).observe({type: "layout-shift", buffered: true});
"""

#: Colours of the banner's parts, as computed by the browser.
COLOURS = """(b) => {
  const c = (e, p = "color") => getComputedStyle(e).getPropertyValue(p);
  const button = b.querySelector(".consent-button");
  return {
    bg: c(b, "background-color"),
    title: c(b.querySelector("h2")),
    text: c(b.querySelector("p")),
    link: c(b.querySelector("a")),
    button_bg: c(button, "background-color"),
    button_fg: c(button),
    focus: c(b, "--consent-focus"),
  };
}"""


def _rgb(value: str) -> tuple[float, float, float]:
    numbers = [float(n) for n in re.findall(r"[\d.]+", value)[:3]]
    assert len(numbers) == 3, value
    return numbers[0], numbers[1], numbers[2]


def _luminance(value: str) -> float:
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in _rgb(value))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """The WCAG contrast ratio of two CSS colours."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _no_horizontal_scroll(page: Page) -> None:
    assert page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


def _box(page: Page, selector: str) -> dict[str, float]:
    box = page.locator(selector).bounding_box()
    assert box is not None
    return box


@pytest.mark.parametrize(("theme", "scheme"), THEMES, ids=lambda v: str(v))
@pytest.mark.parametrize("layout", LAYOUTS)
def test_layout_and_theme(
    site: cabc.Callable[..., str],
    browser: Browser,
    layout: str,
    theme: str,
    scheme: str,
) -> None:
    url = site(CONSENT_LAYOUT=layout, CONSENT_THEME=theme) + "/"
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, color_scheme=scheme
    )
    context.add_init_script(LAYOUT_SHIFTS)
    try:
        page = context.new_page()
        page.goto(url)
        banner = page.locator("#cookie-consent")
        assert banner.is_visible()
        assert f"consent-layout-{layout}" in (banner.get_attribute("class") or "")

        # Text at 4.5:1 at least, controls at 3:1 against the banner.
        colours = banner.evaluate(COLOURS)
        for part in ("title", "text", "link"):
            assert contrast(colours[part], colours["bg"]) >= 4.5, (part, colours)
        assert contrast(colours["button_fg"], colours["button_bg"]) >= 4.5
        assert contrast(colours["button_bg"], colours["bg"]) >= 3
        dark = theme == "dark" or (theme == "auto" and scheme == "dark")
        assert (_luminance(colours["bg"]) < 0.1) is dark

        # Painted with the first HTML: nothing moved while the page loaded.
        page.wait_for_load_state("load")
        page.wait_for_timeout(100)
        assert page.evaluate("window.consentShifts") == []
        if theme != "auto":
            page.screenshot(path=str(SHOTS / f"{layout}-{theme}.png"))

        # A fixed banner floats over the page; the inline one is in the flow
        # at the top, from the first paint on.
        headline = _box(page, "#headline")
        if layout == "inline":
            assert banner.evaluate("(b) => b === document.body.firstElementChild")
            assert headline["y"] > _box(page, "#cookie-consent")["y"]
        assert page.evaluate("getComputedStyle(document.body).overflow") != "hidden"

        # Reflow at 320 px.
        page.set_viewport_size({"width": 320, "height": 640})
        _no_horizontal_scroll(page)
        for name in ("Accept all", "Reject all", "Customize"):
            box = banner.get_by_role("button", name=name).bounding_box()
            assert box is not None
            assert 0 <= box["x"] and box["x"] + box["width"] <= 320
            assert 0 <= box["y"] and box["y"] + box["height"] <= 640
        page.set_viewport_size({"width": 1280, "height": 800})
        page.wait_for_timeout(100)
        page.evaluate("window.consentShifts = []")

        # The same page without the banner: nothing moved.
        page.get_by_role("button", name="Reject all").click()
        page.wait_for_selector("#cookie-consent", state="detached")
        if layout != "inline":
            assert _box(page, "#headline") == headline
            assert page.evaluate("window.consentShifts") == []
    finally:
        context.close()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_page_stays_usable(
    site: cabc.Callable[..., str], browser: Browser, layout: str
) -> None:
    """No cookie wall: links work and the end of the page can be reached."""
    url = site(CONSENT_LAYOUT=layout) + "/"
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.goto(url)
        # The footer can be scrolled clear of a fixed banner and clicked.
        page.evaluate("scrollTo(0, document.documentElement.scrollHeight)")
        footer = page.locator("footer a").last
        box = footer.bounding_box()
        assert box is not None
        hit = page.evaluate(
            "([x, y]) => document.elementFromPoint(x, y).closest('footer') !== null",
            [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
        )
        assert hit
        page.evaluate("scrollTo(0, 0)")
        page.click("main a")
        page.wait_for_url("**/page/2")
    finally:
        context.close()


#: Common site resets that change how the end of a page is measured.
RESETS = {
    "none": "",
    "html-100": "html { height: 100% }",
    "border-box": "*, *::before, *::after { box-sizing: border-box }"
    " html, body { margin: 0 } html { height: 100% } body { min-height: 100% }",
    "flex-body": "body { display: flex; flex-direction: column;"
    " min-height: 100vh; margin: 0 }",
}


@pytest.mark.parametrize("reset", RESETS.values(), ids=RESETS.keys())
@pytest.mark.parametrize("layout", ["bar", "box", "center"])
def test_the_end_of_the_page_clears_the_banner(
    browser: Browser, layout: str, reset: str
) -> None:
    """Whatever the site's reset, the end of the page scrolls clear of a
    fixed banner."""
    css = banner_css()
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.set_content(
            f"<!doctype html><style>{css}</style><style>{reset}</style>"
            '<aside id="cookie-consent"'
            f' class="consent-banner consent-layout-{layout}">'
            "<p>Your choice about cookies</p><div class=consent-actions>"
            "<button class=consent-button>Accept all</button></div></aside>"
            '<main style="height: 2000px">Article</main><footer>End</footer>'
        )
        page.evaluate("scrollTo(0, document.documentElement.scrollHeight)")
        footer, banner = _box(page, "footer"), _box(page, "#cookie-consent")
        assert footer["y"] + footer["height"] <= banner["y"]
    finally:
        context.close()


@pytest.mark.parametrize("layout", ["bar", "box", "center"])
def test_focus_is_never_hidden_by_the_banner(
    site: cabc.Callable[..., str], browser: Browser, layout: str
) -> None:
    """WCAG 2.4.11: every control the keyboard reaches stays visible."""
    url = site(CONSENT_LAYOUT=layout) + "/"
    context = browser.new_context(viewport={"width": 1280, "height": 700})
    try:
        page = context.new_page()
        page.goto(url)
        seen = 0
        for _ in range(20):
            page.keyboard.press("Tab")
            state = page.evaluate(
                """() => {
                const e = document.activeElement;
                if (e === document.body || e.closest('#cookie-consent'))
                    return 'banner';
                const r = e.getBoundingClientRect();
                const hit = document.elementFromPoint(
                    r.x + r.width / 2, r.y + r.height / 2);
                return hit && (e.contains(hit) || hit.contains(e)) ? 'visible'
                    : e.outerHTML.slice(0, 80);
            }"""
            )
            if state != "banner":
                assert state == "visible"
                seen += 1
        assert seen >= 4
    finally:
        context.close()


def test_right_to_left(site: cabc.Callable[..., str], browser: Browser) -> None:
    texts = {} if "ar" in available_languages() else {"ar": AR_TEXTS}
    url = site(
        CONSENT_LAYOUT="box",
        CONSENT_THEME="light",
        CONSENT_LANGUAGES=["en", "ar"],
        CONSENT_TEXTS=texts,
    )
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="ar")
    try:
        page = context.new_page()
        page.goto(url + "/")
        banner = page.locator("#cookie-consent")
        assert banner.get_attribute("dir") == "rtl"
        assert banner.get_attribute("lang") == "ar"
        # The box sits in the bottom-left corner, the buttons run right to left.
        box = _box(page, "#cookie-consent")
        assert box["x"] < 100
        buttons = banner.locator(".consent-button")
        first, second = buttons.nth(0).bounding_box(), buttons.nth(1).bounding_box()
        assert first is not None and second is not None
        assert first["x"] > second["x"]
        page.screenshot(path=str(SHOTS / "box-light-rtl.png"))
        page.set_viewport_size({"width": 320, "height": 640})
        _no_horizontal_scroll(page)
    finally:
        context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_mobile(site: cabc.Callable[..., str], browser: Browser, scheme: str) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        color_scheme=scheme,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    try:
        page = context.new_page()
        page.goto(site() + "/")
        _no_horizontal_scroll(page)
        page.screenshot(path=str(SHOTS / f"bar-{scheme}-mobile.png"))
    finally:
        context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_preferences_dialog(
    site: cabc.Callable[..., str], browser: Browser, scheme: str
) -> None:
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, color_scheme=scheme
    )
    try:
        page = context.new_page()
        page.goto(site() + "/")
        page.get_by_role("button", name="Customize").click()
        dialog = page.locator("dialog[open]")
        dialog.wait_for()
        section = dialog.locator(".consent-preferences")
        bg = section.evaluate("(e) => getComputedStyle(e).backgroundColor")
        for selector in ("h1", "label", ".consent-desc", "summary"):
            fg = section.locator(selector).first.evaluate(
                "(e) => getComputedStyle(e).color"
            )
            assert contrast(fg, bg) >= 4.5, selector
        switch = section.get_by_role("switch", name="Analytics")
        off = switch.evaluate("(e) => getComputedStyle(e).backgroundColor")
        assert contrast(off, bg) >= 3
        page.mouse.move(0, 0)
        page.screenshot(path=str(SHOTS / f"preferences-{scheme}.png"))
        page.set_viewport_size({"width": 320, "height": 640})
        _no_horizontal_scroll(page)
        width = dialog.evaluate("(e) => e.getBoundingClientRect().width")
        assert width <= 320
    finally:
        context.close()


def test_preferences_page_without_javascript(
    site: cabc.Callable[..., str], browser: Browser
) -> None:
    context = browser.new_context(
        viewport={"width": 320, "height": 640}, java_script_enabled=False
    )
    try:
        page = context.new_page()
        page.goto(site() + "/consent/preferences")
        _no_horizontal_scroll(page)
        assert page.get_by_role("switch", name="Analytics").is_visible()
        assert not page.get_by_role("button", name="Close").is_visible()
    finally:
        context.close()

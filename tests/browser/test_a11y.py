"""Accessibility of the banner and the preferences, WCAG 2.2 AA (R7, R28).

axe-core (the npm package, ``npm ci`` installs it into ``node_modules``) runs
on the banner region of the demo, of every layout and theme and of a
right-to-left language, and on the preferences page and dialog. axe has no
rule for the rest of what R28 asks, so the browser checks it directly:
keyboard reach, focus not hidden by the banner (2.4.11), reflow at 320 px
(1.4.10), target size (2.5.8) and non-text contrast (1.4.11).
"""

from __future__ import annotations

import collections.abc as cabc
import typing as t
from pathlib import Path

import pytest
from playwright.sync_api import Browser
from playwright.sync_api import BrowserContext
from playwright.sync_api import Page
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.browser.conftest import LiveServer
from tests.browser.conftest import serve
from tests.browser.conftest import site_policy

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21aa", "wcag22aa"]

LAYOUTS = ["bar", "box", "center", "inline"]
#: (CONSENT_THEME, the browser's prefers-color-scheme)
THEMES = [("light", "light"), ("dark", "light"), ("auto", "dark")]

#: Reject all must be among the first tab stops of a page (R28).
MAX_TABS_TO_REJECT = 6

BANNER = "#cookie-consent"
DIALOG = "dialog.consent-dialog"

AXE_RUN = """
(args) => axe.run(args.selector, {
  resultTypes: ["violations"],
  runOnly: {type: "tag", values: args.tags},
}).then((r) => r.violations.map((v) => ({
  id: v.id,
  impact: v.impact,
  help: v.help,
  nodes: v.nodes.map((n) => ({
    target: n.target.join(" "),
    html: n.html,
    summary: n.failureSummary,
  })),
})))
"""

#: The focused element, and what is painted at its centre.
FOCUS = """
() => {
  const e = document.activeElement;
  if (!e || e === document.body || e === document.documentElement) return null;
  const banner = document.querySelector("#cookie-consent");
  const ids = (window.a11yStops ||= new Map());
  if (!ids.has(e)) ids.set(e, ids.size);
  const describe = (n) => {
    if (!n) return "nothing";
    const classes = typeof n.className == "string" && n.className.trim()
      ? "." + n.className.trim().split(/\\s+/).join(".") : "";
    const text = n.innerText || n.value || n.getAttribute("aria-label") || "";
    return n.tagName.toLowerCase() + (n.id ? "#" + n.id : "") + classes
      + " " + JSON.stringify(text.trim().slice(0, 40));
  };
  const r = e.getBoundingClientRect();
  const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  return {
    id: ids.get(e),
    element: describe(e),
    action: (e.tagName === "BUTTON" && e.value)
      || (e.getAttribute("form") === "consent-customize" ? "customize" : null),
    shown: !!hit && (hit === e || e.contains(hit)),
    hit: hit && banner && banner.contains(hit) && !banner.contains(e)
      ? "the banner (" + describe(hit) + ")" : describe(hit),
    box: [r.left, r.top, r.width, r.height].map(Math.round),
  };
}
"""

#: Every control of the banner that can be clicked or focused, with its box.
TARGETS = """
(root) => [...root.querySelectorAll(
  "a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]"
)].filter((e) => e.getClientRects().length
  && getComputedStyle(e).visibility != "hidden")
 .map((e) => {
   const r = e.getBoundingClientRect();
   return {element: e.outerHTML.slice(0, 120), width: r.width, height: r.height};
 })
"""

#: Each button's background and border, and the colour behind it, as sRGBA.
BUTTON_COLOURS = """
(root) => {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 1;
  const ctx = canvas.getContext("2d", {willReadFrequently: true});
  const rgba = (c) => {
    ctx.clearRect(0, 0, 1, 1);
    ctx.fillStyle = "#0000";
    ctx.fillStyle = c;
    ctx.fillRect(0, 0, 1, 1);
    const [r, g, b, a] = ctx.getImageData(0, 0, 1, 1).data;
    return [r, g, b, a / 255];
  };
  const behind = (e) => {
    const layers = [];
    for (let n = e.parentElement; n; n = n.parentElement) {
      const c = rgba(getComputedStyle(n).backgroundColor);
      if (c[3] > 0) layers.push(c);
      if (c[3] >= 1) break;
    }
    return layers;
  };
  return [...root.querySelectorAll("button")]
    .filter((e) => e.getClientRects().length)
    .map((e) => {
      const s = getComputedStyle(e);
      return {
        element: e.outerHTML.slice(0, 120),
        background: rgba(s.backgroundColor),
        border: parseFloat(s.borderTopWidth) >= 1 ? rgba(s.borderTopColor) : null,
        behind: behind(e),
      };
    });
}
"""

A11Y_PAGE = """\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Longjing tea · Tea Garden</title>
{{ consent_head() }}
</head>
<body>
<header><a href="/">Tea Garden</a> · <a href="/about">About us</a></header>
<main>
<h1>Longjing, the tea of West Lake</h1>
{%- for n in range(1, 13) %}
<p>Longjing is picked by hand in early spring, withered briefly and pan-fired
in large woks, which gives the leaves their flat shape and a taste of roasted
chestnuts. Part {{ n }} of this guide follows the tea from the bushes on the
hills above the lake to the cup; <a href="/page/{{ n }}">read part {{ n }}</a>
or go on below.</p>
<p style="text-align: end"><a href="/page/{{ n }}#notes">Notes to part {{ n }}</a></p>
{%- endfor %}
</main>
<footer><p>{{ consent_settings_link() }} ·
<a href="/consent/declaration">Cookies</a></p></footer>
</body>
</html>
"""


def _axe(page: Page, selector: str) -> list[dict[str, t.Any]]:
    """The WCAG 2.2 AA violations axe-core finds inside ``selector``."""
    if not AXE.is_file():
        pytest.fail(
            f"{AXE.relative_to(ROOT)} is missing: run `npm ci` in the repository"
            " root (make test does).",
            pytrace=False,
        )
    page.add_script_tag(path=str(AXE))
    violations: list[dict[str, t.Any]] = page.evaluate(
        AXE_RUN, {"selector": selector, "tags": AXE_TAGS}
    )
    return violations


def _assert_no_violations(page: Page, selector: str) -> None:
    assert page.locator(selector).first.is_visible(), f"{selector} is not shown"
    violations = _axe(page, selector)
    if violations:
        lines = [f"axe-core: {len(violations)} violation(s) in {selector}:"]
        for v in violations:
            lines.append(f"- {v['id']} ({v['impact']}): {v['help']}")
            for node in v["nodes"]:
                lines.append(f"    {node['target']}: {node['html'][:160]}")
                lines.extend(f"      {line}" for line in node["summary"].splitlines())
        pytest.fail("\n".join(lines), pytrace=False)


def _luminance(rgb: cabc.Sequence[float]) -> float:
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _over(top: cabc.Sequence[float], below: cabc.Sequence[float]) -> list[float]:
    """``top`` composited over the opaque colour ``below``."""
    a = top[3]
    return [top[i] * a + below[i] * (1 - a) for i in range(3)] + [1.0]


def _contrast(a: cabc.Sequence[float], b: cabc.Sequence[float]) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _flatten(layers: cabc.Sequence[cabc.Sequence[float]]) -> list[float]:
    """The colour seen through background layers, nearest first."""
    colour = [255.0, 255.0, 255.0, 1.0]
    for layer in reversed(layers):
        colour = _over(layer, colour)
    return colour


def _low_contrast_buttons(page: Page) -> list[str]:
    """The banner's buttons whose background and border both contrast less
    than 3:1 with what is behind them."""
    buttons = page.locator(BANNER).evaluate(BUTTON_COLOURS)
    assert len(buttons) >= 3
    low = []
    for b in buttons:
        behind = _flatten(b["behind"])
        ratios = [_contrast(_over(b["background"], behind), behind)]
        if b["border"] is not None:
            ratios.append(_contrast(_over(b["border"], behind), behind))
        if max(ratios) < 3:
            low.append(f"  {max(ratios):.2f}:1 {b['element']}")
    return low


@pytest.fixture(scope="session")
def a11y_site(
    tmp_path_factory: pytest.TempPathFactory,
) -> cabc.Iterator[cabc.Callable[..., str]]:
    """``a11y_site(layout, theme)``: the URL of a page with that banner."""
    from flask import Flask
    from flask import render_template_string

    from consent.flask import Consent

    servers: dict[tuple[str, str], LiveServer] = {}

    def start(layout: str = "bar", theme: str = "auto") -> str:
        if (layout, theme) not in servers:
            app = Flask("a11y", instance_path=str(tmp_path_factory.mktemp("a11y")))
            app.config.update(
                SECRET_KEY="a11y-test-secret-key-0123456789abcdef",
                CONSENT_LAYOUT=layout,
                CONSENT_THEME=theme,
                CONSENT_RECEIPTS_URL=None,
            )
            Consent(app, site_policy())

            @app.get("/")
            @app.get("/page/<int:number>")
            def page(number: int = 1) -> str:
                return render_template_string(A11Y_PAGE)

            servers[layout, theme] = serve(app)
        return servers[layout, theme].url + "/"

    yield start
    for server in servers.values():
        server.stop()


def _context(
    browser: Browser, width: int = 1280, height: int = 900, **options: t.Any
) -> BrowserContext:
    # bypass_csp: axe-core is injected as an inline script, which the demo's
    # strict Content-Security-Policy would refuse.
    return browser.new_context(
        viewport={"width": width, "height": height}, bypass_csp=True, **options
    )


@pytest.fixture
def page(browser: Browser) -> cabc.Iterator[Page]:
    context = _context(browser)
    yield context.new_page()
    context.close()


@pytest.fixture(params=["demo", *LAYOUTS])
def any_page(
    request: pytest.FixtureRequest, demo: str, a11y_site: cabc.Callable[..., str]
) -> str:
    """The demo, and a page of each layout."""
    if request.param == "demo":
        return demo + "/"
    return a11y_site(request.param)


# axe-core ------------------------------------------------------------------


def test_axe_demo_banner(demo: str, page: Page) -> None:
    page.goto(demo + "/")
    _assert_no_violations(page, BANNER)


def test_axe_demo_preferences_page(demo: str, page: Page) -> None:
    page.goto(demo + "/consent/preferences")
    _assert_no_violations(page, ".consent-preferences")


def test_axe_demo_preferences_dialog(demo: str, page: Page) -> None:
    page.goto(demo + "/")
    page.locator(BANNER).get_by_role("button", name="Customize").click()
    try:
        page.wait_for_selector(f"{DIALOG}[open]", state="visible", timeout=5000)
    except PlaywrightTimeoutError:
        pytest.fail(
            "Customize did not open the preferences dialog (consent.js missing"
            f" or broken?); the page is now {page.url}",
            pytrace=False,
        )
    assert page.evaluate("!!document.activeElement.closest('dialog[open]')"), (
        "focus did not move into the dialog"
    )
    _assert_no_violations(page, DIALOG)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(
    ("theme", "scheme"), THEMES, ids=[theme for theme, _ in THEMES]
)
def test_axe_layout_and_theme(
    a11y_site: cabc.Callable[..., str],
    browser: Browser,
    layout: str,
    theme: str,
    scheme: str,
) -> None:
    context = _context(browser, color_scheme=scheme)
    try:
        page = context.new_page()
        page.goto(a11y_site(layout, theme))
        classes = (page.locator(BANNER).get_attribute("class") or "").split()
        assert {f"consent-layout-{layout}", f"consent-theme-{theme}"} <= set(classes)
        _assert_no_violations(page, BANNER)
    finally:
        context.close()


def test_axe_right_to_left(
    a11y_site: cabc.Callable[..., str], browser: Browser
) -> None:
    context = _context(browser, extra_http_headers={"Accept-Language": "ar"})
    try:
        page = context.new_page()
        page.goto(a11y_site("bar", "auto"))
        banner = page.locator(BANNER)
        assert banner.get_attribute("lang") == "ar"
        assert banner.get_attribute("dir") == "rtl"
        assert banner.evaluate("(e) => getComputedStyle(e).direction") == "rtl"
        _assert_no_violations(page, BANNER)
    finally:
        context.close()


# What axe cannot check ---------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height"), [(1280, 900), (320, 640)], ids=["1280", "320"]
)
def test_keyboard_reaches_reject_and_focus_is_never_hidden(
    any_page: str, browser: Browser, width: int, height: int
) -> None:
    """Reject all is among the first tab stops; no tab stop of the page is
    hidden under the banner (2.4.11); nothing autofocuses or scrolls."""
    context = _context(browser, width, height)
    try:
        page = context.new_page()
        page.goto(any_page)
        assert page.evaluate("document.activeElement === document.body")
        assert page.evaluate("scrollY") == 0
        stops: list[dict[str, t.Any]] = []
        for _ in range(120):
            page.keyboard.press("Tab")
            stop = page.evaluate(FOCUS)
            if stop is None or (stops and stop["id"] == stops[0]["id"]):
                if stops:
                    break
                continue
            stops.append(stop)
        actions = [s["action"] for s in stops]
        assert "reject_all" in actions, "Reject all is not a tab stop"
        problems = []
        reached = actions.index("reject_all") + 1
        if reached > MAX_TABS_TO_REJECT:
            problems.append(
                f"Reject all is tab stop {reached} of {len(stops)}, after"
                f" {MAX_TABS_TO_REJECT} at most; the order is:\n"
                + "\n".join(f"  {i}. {s['element']}" for i, s in enumerate(stops, 1))
            )
        hidden = [s for s in stops if not s["shown"]]
        if hidden:
            problems.append(
                "focused but not visible at its centre:\n"
                + "\n".join(
                    f"  {s['element']} at {s['box']}: covered by {s['hit']}"
                    for s in hidden
                )
            )
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)
    finally:
        context.close()


@pytest.mark.parametrize("rtl", [False, True], ids=["ltr", "rtl"])
def test_reflow_at_320_px(any_page: str, browser: Browser, rtl: bool) -> None:
    headers = {"Accept-Language": "ar"} if rtl else {}
    context = _context(browser, 320, 640, extra_http_headers=headers)
    try:
        page = context.new_page()
        page.goto(any_page)
        banner = page.locator(BANNER)
        assert banner.is_visible()
        assert banner.get_attribute("dir") == ("rtl" if rtl else "ltr")
        widths = page.evaluate(
            "[document.documentElement.scrollWidth,"
            " document.documentElement.clientWidth]"
        )
        assert widths[0] <= widths[1], (
            f"scrollWidth {widths[0]} > clientWidth {widths[1]}"
        )
        box = banner.bounding_box()
        assert box is not None
        assert box["x"] >= 0 and box["x"] + box["width"] <= widths[1]
    finally:
        context.close()


@pytest.mark.parametrize("width", [320, 1280])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_targets_are_at_least_24_px(
    a11y_site: cabc.Callable[..., str], browser: Browser, layout: str, width: int
) -> None:
    context = _context(browser, width, 800)
    try:
        page = context.new_page()
        page.goto(a11y_site(layout))
        targets = page.locator(BANNER).evaluate(TARGETS)
        assert len(targets) >= 4
        small = [c for c in targets if c["width"] < 24 or c["height"] < 24]
        assert not small, "targets under 24x24 px:\n" + "\n".join(
            f"  {c['width']:.1f}x{c['height']:.1f} {c['element']}" for c in small
        )
    finally:
        context.close()


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(
    ("theme", "scheme"), THEMES, ids=[theme for theme, _ in THEMES]
)
def test_buttons_contrast_with_the_banner(
    a11y_site: cabc.Callable[..., str],
    browser: Browser,
    layout: str,
    theme: str,
    scheme: str,
) -> None:
    """WCAG 1.4.11: each button's background or border against the banner
    background at least 3:1. axe-core has no rule for non-text contrast."""
    context = _context(browser, color_scheme=scheme)
    try:
        page = context.new_page()
        page.goto(a11y_site(layout, theme))
        low = _low_contrast_buttons(page)
        assert not low, "buttons under 3:1 against the banner:\n" + "\n".join(low)
    finally:
        context.close()


def test_the_checks_catch_a_faint_reject_button(
    a11y_site: cabc.Callable[..., str], page: Page
) -> None:
    """Negative control: a pale Reject button with grey text on the light
    banner fails both axe-core's color-contrast and the non-text check."""
    page.goto(a11y_site("bar", "light"))
    page.add_style_tag(
        content="#cookie-consent .consent-button[value=reject_all]"
        " { background: #f4f4f4; color: #bbb; border: 0 }"
    )
    low = _low_contrast_buttons(page)
    assert len(low) == 1 and "reject_all" in low[0]
    violations = _axe(page, BANNER)
    assert [v["id"] for v in violations] == ["color-contrast"]

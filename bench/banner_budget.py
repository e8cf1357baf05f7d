"""What the banner costs a page, against the same page without one and two peers.

Pages with the same article (``bench/peers/article.html`` and its stylesheet
``article.css``), loaded in one headless Chromium, after a warm-up round, in
rounds that load every page once, in an order shuffled from round to round
(seeded). Medians of the per-round figures, and of the per-round differences
to the same page without a banner, are reported:

- ``none``: the article alone, and ``none, again``: the same page, to show
  how far apart two identical pages measure on the machine;
- ``consent`` and ``consent inline``: the same article served by a Flask app
  with :class:`~consent.flask.Consent`, ``consent_head()`` in ``<head>`` and
  the banner the extension puts in (layouts ``bar`` and ``inline``);
- ``vanilla-cookieconsent`` and ``klaro``: the article set up as each peer's
  documentation shows (``bench/peers/*.html`` and their config files), the
  library files served from ``node_modules`` (``npm ci`` installs them);
- ``none, no stylesheet`` and ``consent, no stylesheet``: the article with its
  CSS in a ``<style>`` element, so that no request of the page's own hides
  what the banner costs before first paint.
- ``consent without consent.js`` and ``consent.js alone``: the two halves
  of ``consent``, to show where its cost goes: the same page with the
  script tag taken out of the response, and the article with nothing but
  that script tag added. Neither is a page the library serves.

Every load is a first visit: the browser's cache is emptied (DevTools'
``Network.clearBrowserCache``) and cookies are cleared, and the tab goes
through an empty page between pages. Everything is served from one origin
on 127.0.0.1 by gunicorn, in processes of their own (the apps with the
extension under ``/bar/``, ``/inline/`` and ``/bare/``), every page
rendered by Flask from a template compiled once, and Chromium resolves
every host name to loopback.

Every response is sent with ``Cross-Origin-Opener-Policy: same-origin`` and
``Cross-Origin-Embedder-Policy: require-corp``, which makes the pages
cross-origin isolated: Chromium then reports paint times to the microsecond,
where it otherwise rounds them to 4 ms, too coarse for budgets of a few
milliseconds. All their files are same-origin, so nothing else changes; and
because the empty page between loads is on the same origin too, no load
starts a new renderer process. Frames that change are drawn back to back
rather than on a 60 Hz tick, whose phase adds up to 16.7 ms of noise to a
first paint; frames with nothing new still come about 17 ms apart.

vanilla-cookieconsent hides itself from automated browsers (its
``hideFromBots`` option, on by default), so pages are told that no WebDriver
is in control, as an ordinary visitor's browser says.

Two kinds of rounds, in two tabs of the same Chromium:

- paint rounds time first contentful paint in pages where nothing of the
  bench runs: once the page has loaded, it is asked for its paint entries;
- probe rounds run an init script in every page. When the banner is first
  painted: Element Timing on every element of the banner (the attribute is
  set by a MutationObserver before the banner paints), which Chromium times
  exactly like first contentful paint, so the two compare: equal means the
  banner is in the first paint. Whether its buttons are usable then: a
  ``requestAnimationFrame`` loop notes the first frame with the banner on
  screen, the least opacity of its controls (with their ancestors') and the
  animations and transitions running on it (``document.getAnimations()``),
  and the first frame in which it is fully usable (opacity 1, nothing
  running). Layout shifts: a buffered ``layout-shift`` PerformanceObserver.
  That work is in the pages with a banner only, so first paint is not
  timed from these rounds.

Bytes come from the warm-up round: the HTML a banner adds to the page (the
difference from the article alone), and each extra response it loads, each
compressed with gzip -9; extra requests are counted with their caching.
"""

from __future__ import annotations

import datetime
import difflib
import gzip
import json
import os
import random
import re
import statistics
import tempfile
import time
import typing as t
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask
from flask import Response
from flask import abort
from flask import render_template
from flask import send_from_directory
from playwright.sync_api import BrowserContext
from playwright.sync_api import CDPSession
from playwright.sync_api import Page as PlaywrightPage
from playwright.sync_api import ViewportSize
from playwright.sync_api import sync_playwright
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from consent import Policy
from consent.flask import Consent
from consent.flask._context import urls
from examples.hangzhou_demo.policy import build_policy

from .common import Goal
from .common import goal
from .common import gunicorn
from .common import median
from .common import print_goals

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIApplication
    from _typeshed.wsgi import WSGIEnvironment

#: Rounds that time first paint, with nothing of the bench's in the page.
ROUNDS = int(os.environ.get("BENCH_BANNER_ROUNDS", "61"))
#: Rounds that watch the banner with ``PROBE``: whether it is in the first
#: paint, usable at once, and never shifts the page.
PROBE_ROUNDS = int(os.environ.get("BENCH_BANNER_PROBE_ROUNDS", "11"))
#: How long to keep watching for layout shifts once the banner is usable.
SETTLE_MS = 250
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}

ROOT = Path(__file__).resolve().parent.parent
PEERS = Path(__file__).resolve().parent / "peers"
NODE_MODULES = ROOT / "node_modules"
PACKAGES = ("vanilla-cookieconsent", "klaro")
#: The only files the peer pages may load from node_modules.
PEER_FILES = ("vanilla-cookieconsent/dist/", "klaro/dist/")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * 127.0.0.1",
    # Frames that change are drawn back to back instead of at the next
    # 60 Hz tick (2 to 8 ms apart instead of 16.7 for a page that changes on
    # every frame); frames with nothing new still come about 17 ms apart.
    # The tick's phase is random from load to load: noise, the same on
    # average for every page, so a paired difference keeps its expected value.
    "--disable-gpu-vsync",
    "--disable-frame-rate-limit",
]

#: What the banner may add: bytes (HTML, CSS and JS, gzip -9) and requests.
GOAL_BYTES = 3000
GOAL_REQUESTS = 2
#: First paint with the banner against the same page without it: at most
#: this share of that page's own first paint (median of the paired rounds).
GOAL_PAINT_SHARE = 0.10
#: The banner's own delay (on screen, minus the first paint of the page
#: without a banner): at most this share of the fastest peer's in the run.
GOAL_PEER_SHARE = 0.5

#: Figures quoted in the issue (gzip -9), beside the ones measured here.
QUOTED = {
    "vanilla-cookieconsent": "15.5 KB in 2 requests",
    "klaro": "68.9 KB",
}

NOT_AUTOMATED = (
    "Object.defineProperty(Navigator.prototype, 'webdriver',"
    " {get: () => false, configurable: true})"
)

#: Runs first in every document; ``SELECTORS`` maps a page's URL to the
#: selector of its banner.
PROBE = """
(() => {
  const selector = SELECTORS[location.origin + location.pathname] || null;
  const B = (window.budget = {
    visible: null, usable: null, shifts: [], elements: [], done: false, timeout: false,
  });
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if (!e.hadRecentInput) B.shifts.push(e.value);
  }).observe({type: "layout-shift", buffered: true});
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) B.elements.push(e.renderTime || e.loadTime);
  }).observe({type: "element", buffered: true});
  if (selector) new MutationObserver(() => {
    for (const e of document.querySelectorAll(`${selector}, ${selector} *`))
      if (!e.hasAttribute("elementtiming")) e.setAttribute("elementtiming", "banner");
  }).observe(document, {childList: true, subtree: true});
  const opacity = (e) => {
    let o = 1;
    for (let n = e; n instanceof Element; n = n.parentElement)
      o *= +getComputedStyle(n).opacity;
    return o;
  };
  const running = (el) => document.getAnimations().filter((a) => {
    const target = a.effect && a.effect.target;
    return a.playState === "running" && target instanceof Element
      && (el.contains(target) || target.contains(el));
  }).length;
  const painted = () => performance.getEntriesByType("paint")
    .some((p) => p.name === "first-contentful-paint");
  const tick = (ts) => {
    const el = selector && document.querySelector(selector);
    if (el) {
      const r = el.getBoundingClientRect();
      const shown = r.width > 0 && r.height > 0 && r.bottom > 0 && r.right > 0
        && r.top < innerHeight && r.left < innerWidth
        && getComputedStyle(el).visibility !== "hidden";
      const least = shown ? Math.min(
        opacity(el), ...[...el.querySelectorAll("button, a[href]")].map(opacity)) : 0;
      if (least > 0) {
        const moving = running(el);
        if (!B.visible) B.visible = {t: ts, opacity: least, animations: moving};
        if (!B.usable && least >= 1 && moving === 0) B.usable = {t: ts};
      }
    }
    B.done = (!selector || (!!B.usable && B.elements.length > 0)) && painted()
      && document.readyState === "complete";
    if (!B.done && performance.now() > 10000) B.done = B.timeout = true;
    if (!B.done) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})();
"""

COLLECT = """
() => {
  const B = window.budget;
  const paint = Object.fromEntries(
    performance.getEntriesByType("paint").map((p) => [p.name, p.startTime]));
  return {
    fcp: paint["first-contentful-paint"] ?? null,
    banner_paint: B.elements.length ? Math.min(...B.elements) : null,
    visible: B.visible,
    usable: B.usable,
    timeout: B.timeout,
    isolated: crossOriginIsolated,
    cls: B.shifts.reduce((a, b) => a + b, 0),
  };
}
"""


#: What a paint round reads once the page has painted: nothing runs in the
#: page before that.
COLLECT_PAINT = """
() => {
  const fcp = performance.getEntriesByType("paint")
    .find((p) => p.name === "first-contentful-paint");
  if (!fcp || document.readyState !== "complete") return null;
  return {
    fcp: fcp.startTime,
    isolated: crossOriginIsolated,
    response_start: performance.getEntriesByType("navigation")[0].responseStart,
    blocking: performance.getEntriesByType("resource")
      .filter((r) => r.renderBlockingStatus === "blocking")
      .map((r) => [new URL(r.name).pathname, r.responseEnd]),
    resources: performance.getEntriesByType("resource").map((r) => [
      new URL(r.name).pathname, r.fetchStart, r.requestStart, r.responseStart,
      r.responseEnd]),
  };
}
"""


class Page(t.NamedTuple):
    label: str
    url: str
    #: The banner's element; None for a page without a banner.
    selector: str | None
    #: The page without a banner that this one is compared with.
    baseline: str


def bench_policy() -> Policy:
    """The categories the peer pages are set up with: the demo's necessary,
    analytics and embedded media."""
    return build_policy()


def article(*, stylesheet: bool = True, from_root: bool = False) -> str:
    """The article page; without ``stylesheet``, its CSS is in the page.
    ``from_root`` links the stylesheet as ``/article.css``, for a page served
    under a prefix to load the same file as the page without a banner."""
    html = (PEERS / "article.html").read_text(encoding="utf-8")
    if stylesheet:
        if from_root:
            return html.replace('href="article.css"', 'href="/article.css"')
        return html
    css = (PEERS / "article.css").read_text(encoding="utf-8")
    return html.replace(
        '<link rel="stylesheet" href="article.css">\n', f"<style>\n{css}</style>\n"
    )


def consent_app(
    layout: str, instance_path: str, *, stylesheet: bool = True, script: bool = True
) -> Flask:
    """The article with the banner, as an app using the extension serves it;
    without ``script``, the tag of ``consent.js`` is taken out of the page."""
    app = Flask("banner_budget", instance_path=instance_path)
    app.config.update(
        SECRET_KEY="bench-banner-secret-key-5e0c7a93b1d2",
        CONSENT_LAYOUT=layout,
        CONSENT_RECEIPTS_URL=None,
    )
    Consent(app, bench_policy())
    # Compiled once, as an app's template cache does.
    html = article(stylesheet=stylesheet, from_root=True)
    template = app.jinja_env.from_string(
        html.replace("</head>", "{{ consent_head() }}\n</head>", 1)
    )

    @app.get("/")
    def page() -> str:
        html = render_template(template)
        if script:
            return html
        html, found = _SCRIPT_TAG.subn("", html, count=1)
        if not found:
            raise RuntimeError("the page has no tag of consent.js to take out")
        return html

    return app


#: ``consent.js`` in the page: inline while the banner shows
#: (``CONSENT_INLINE_ASSETS``), else the tag that loads the file.
_SCRIPT_TAG = re.compile(
    r'<script data-consent-api="[^"]*"[^>]*>.*?</script>'
    r'|<script src="[^"]*/consent\.js\?v=\w+" defer></script>',
    re.DOTALL,
)


def script_url(app: Flask, prefix: str) -> str:
    """The URL of ``consent.js`` in the pages of ``app`` mounted at
    ``prefix``, as the extension builds it."""
    with app.test_request_context(base_url=f"http://localhost{prefix}/"):
        return urls().asset("consent.js")


def script_alone(url: str) -> str:
    """The article with ``consent.js`` loaded from ``url``, as the page with
    the banner loads it, and nothing else."""
    tag = f'<script src="{url}" defer></script>'
    return article(from_root=True).replace("</head>", f"{tag}\n</head>", 1)


def peers_app(consent_js: str) -> Flask:
    """The article alone and with each peer, rendered from templates compiled
    once like the app with the extension renders its page, so that the
    server's part of first paint is alike; the files they load as static
    files. ``consent_js`` is the URL the page with the script alone loads."""
    app = Flask("banner_budget_peers")
    templates = {
        path.name: app.jinja_env.from_string(path.read_text(encoding="utf-8"))
        for path in PEERS.glob("*.html")
    }
    templates["article-no-stylesheet.html"] = app.jinja_env.from_string(
        article(stylesheet=False)
    )
    templates["article-consent-js.html"] = app.jinja_env.from_string(
        script_alone(consent_js)
    )

    @app.get("/node_modules/<path:path>")
    def node_modules(path: str) -> Response:
        if not path.startswith(PEER_FILES):
            abort(404)
        return send_from_directory(NODE_MODULES, path)

    @app.get("/<name>")
    def peer(name: str) -> str | Response:
        if name in templates:
            return render_template(templates[name])
        return send_from_directory(PEERS, name)

    return app


#: Sent with every response: cross-origin isolation, for paint times to
#: the microsecond.
ISOLATION = [
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Embedder-Policy", "require-corp"),
]
#: Where the tab waits between loads.
BLANK = "/blank"


def one_origin(peers: Flask, apps: dict[str, Flask]) -> WSGIApplication:
    """The peers' app at the root and each app with the extension under its
    prefix, every response cross-origin isolated."""

    def blank(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [b"<!doctype html><title>Blank</title>"]

    mounts: dict[str, WSGIApplication] = {BLANK: blank}
    mounts.update(apps)
    dispatch = DispatcherMiddleware(peers, mounts)

    def isolated(
        environ: WSGIEnvironment, start_response: StartResponse
    ) -> t.Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], *args: t.Any) -> t.Any:
            return start_response(status, headers + ISOLATION, *args)

        return dispatch(environ, start)

    return isolated


def site(instance_path: str) -> WSGIApplication:
    """Every page of the bench on one origin."""
    bar = consent_app("bar", instance_path)
    return one_origin(
        peers_app(consent_js=script_url(bar, "/bar")),
        {
            "/bar": bar,
            "/inline": consent_app("inline", instance_path),
            "/bare": consent_app("bar", instance_path, stylesheet=False),
            "/no-script": consent_app("bar", instance_path, script=False),
        },
    )


#: Where the apps keep their instance files, for the server's workers.
INSTANCE_ENV = "BENCH_BANNER_INSTANCE"


def site_from_env() -> WSGIApplication:
    """The site, for gunicorn (``bench.banner_budget:site_from_env()``)."""
    return site(os.environ[INSTANCE_ENV])


#: A production server, as a site runs one: gunicorn, four worker
#: processes of one thread each, keeping connections alive. A page's
#: requests are answered side by side instead of taking turns at one
#: interpreter lock, and the server does not share an interpreter with the
#: process that drives Chromium, which handles the browser's events while
#: the page loads.
SERVER_OPTIONS = ("--worker-class=gthread", "--workers=4", "--threads=1")


def serve(instance_path: str) -> t.ContextManager[str]:
    """The site served on 127.0.0.1; yields its base URL."""

    def ready(url: str) -> bool:
        with urllib.request.urlopen(url + BLANK, timeout=2) as response:
            return bool(response.status == 200)

    return gunicorn(
        "bench.banner_budget:site_from_env()",
        ready,
        options=SERVER_OPTIONS,
        env={INSTANCE_ENV: instance_path},
    )


def gz(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def added_html(base: str, html: str) -> str:
    """What ``html`` has that ``base`` has not."""
    matcher = difflib.SequenceMatcher(None, base, html, autojunk=False)
    return "".join(
        html[j1:j2]
        for op, _, _, j1, j2 in matcher.get_opcodes()
        if op in ("insert", "replace")
    )


def _quartiles(values: list[float]) -> list[float]:
    """The first and third quartiles."""
    q = statistics.quantiles(values, n=4)
    return [q[0], q[2]]


def caching(headers: dict[str, str]) -> str:
    """``fresh`` (reused without asking), ``revalidated`` (a conditional
    request each time) or ``none``."""
    control = headers.get("cache-control", "").lower()
    if "no-store" in control:
        return "none"
    age = re.search(r"max-age=(\d+)", control)
    if age and int(age.group(1)) > 0 and "no-cache" not in control:
        return "fresh"
    if "etag" in headers or "last-modified" in headers:
        return "revalidated"
    return "none"


class Tab(t.NamedTuple):
    """A tab, with the DevTools session that empties the browser's cache."""

    page: PlaywrightPage
    cdp: CDPSession


def open_tab(context: BrowserContext) -> Tab:
    page = context.new_page()
    return Tab(page, context.new_cdp_session(page))


def load(tab: Tab, page: Page) -> None:
    """One first visit of ``page``: empty cache, no cookies.

    The cache is emptied before each load rather than turned off, which
    would take DevTools' network events: a stream of messages for every
    request, handled by the browser while the page paints, so that a page
    would pay for each request it makes a second time.
    """
    tab.page.context.clear_cookies()
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(page.url))
    tab.page.goto(origin + BLANK)
    tab.cdp.send("Network.clearBrowserCache")
    tab.page.goto(page.url, wait_until="load")


def check_isolated(page: Page, timings: dict[str, t.Any]) -> None:
    if not timings["isolated"]:
        raise RuntimeError(
            f"{page.label} ({page.url}) is not cross-origin isolated: its paint"
            " times would come rounded to 4 ms."
        )


def time_paint(tab: Tab, page: Page) -> dict[str, t.Any]:
    """First paint of a page in which nothing of the bench runs: the page is
    asked for its paint entries only once it has painted."""
    load(tab, page)
    deadline = time.monotonic() + 10
    while True:
        # Waiting in this process, not in the page: no polling in the page.
        time.sleep(0.1)
        timings: dict[str, t.Any] | None = tab.page.evaluate(COLLECT_PAINT)
        if timings is not None:
            check_isolated(page, timings)
            return timings
        if time.monotonic() > deadline:
            raise RuntimeError(f"{page.label} ({page.url}): no first paint in 10 s.")


def watch_banner(tab: Tab, page: Page) -> dict[str, t.Any]:
    """A load watched by ``PROBE``."""
    load(tab, page)
    tab.page.wait_for_function("() => window.budget.done", timeout=15000)
    tab.page.wait_for_timeout(SETTLE_MS)
    timings: dict[str, t.Any] = tab.page.evaluate(COLLECT)
    if timings["timeout"]:
        raise RuntimeError(
            f"{page.label} ({page.url}): no first paint, or the banner was not"
            " painted and usable, within 10 s."
        )
    check_isolated(page, timings)
    return timings


def paint_share(results: dict[str, t.Any], label: str) -> float:
    """The first paint delay of ``label`` (median of the paired rounds) as a
    share of the first paint of its page without a banner."""
    entry = results[label]
    return float(entry["fcp_minus_baseline_ms"] / results[entry["baseline"]]["fcp_ms"])


def own_delay(entry: dict[str, t.Any]) -> float:
    """How long after the page without a banner paints first the banner is
    on screen: the first paint delay plus the banner's wait after it."""
    return float(entry["fcp_minus_baseline_ms"] + max(entry["banner_after_fcp_ms"], 0))


def weigh(
    base_html: str, responses: list[dict[str, t.Any]], base_paths: set[str]
) -> dict[str, t.Any]:
    """Bytes and requests a banner adds to the page."""
    document = next(r for r in responses if r["type"] == "document")
    html = added_html(base_html, document["body"].decode("utf-8"))
    files = [
        r
        for r in responses
        if r is not document
        and r["path"] not in base_paths
        and r["path"] != "/favicon.ico"
    ]
    parts = {"HTML": gz(html.encode())} if html.strip() else {}
    parts.update({r["path"]: gz(r["body"]) for r in files})
    kinds = [caching(r["headers"]) for r in files]
    return {
        "gzip_bytes": sum(parts.values()),
        "parts": parts,
        "library_gzip_bytes": sum(
            v for k, v in parts.items() if k.startswith("/node_modules/")
        ),
        "requests": len(files),
        "cacheable_requests": sum(k != "none" for k in kinds),
        "fresh_requests": kinds.count("fresh"),
        "cache_control": {r["path"]: r["headers"].get("cache-control") for r in files},
        "added_html": html,
    }


class Samples(t.NamedTuple):
    #: Timings of the paint rounds, by page.
    paint: dict[str, list[dict[str, t.Any]]]
    #: Observations of the probe rounds, by page.
    probe: dict[str, list[dict[str, t.Any]]]


def measure(pages: list[Page]) -> tuple[str, dict[str, t.Any], Samples]:
    """Chromium's version, the responses of the warm-up round and the
    samples of every round, by page.

    Two tabs in two contexts of one Chromium: the paint rounds in one with
    nothing of the bench in its pages, the probe rounds in the other, whose
    pages run ``PROBE``: its observers and its check on every frame are work
    the page without a banner would not do.
    """
    selectors = {p.url: p.selector for p in pages if p.selector}
    responses: dict[str, list[dict[str, t.Any]]] = {}
    samples = Samples({p.label: [] for p in pages}, {p.label: [] for p in pages})
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            plain = browser.new_context(viewport=VIEWPORT)
            plain.add_init_script(NOT_AUTOMATED)
            probed = browser.new_context(viewport=VIEWPORT)
            probed.add_init_script(NOT_AUTOMATED)
            probed.add_init_script(f"const SELECTORS = {json.dumps(selectors)};{PROBE}")
            paint_tab, probe_tab = open_tab(plain), open_tab(probed)
            seen: list[t.Any] = []

            def record(response: t.Any) -> None:
                seen.append(response)

            probe_tab.page.on("response", record)
            for page in pages:
                seen.clear()
                watch_banner(probe_tab, page)
                responses[page.label] = [
                    {
                        "path": urlsplit(r.url).path,
                        "type": r.request.resource_type,
                        "headers": r.all_headers(),
                        "body": r.body(),
                    }
                    for r in seen
                    if r.status == 200
                    and r.url.startswith("http")
                    and urlsplit(r.url).path != BLANK
                ]
                time_paint(paint_tab, page)
            probe_tab.page.remove_listener("response", record)
            order = list(pages)
            for round_ in range(max(ROUNDS, PROBE_ROUNDS)):
                # Shuffled, not rotated: a page is never always loaded after
                # the same one.
                random.Random(round_).shuffle(order)
                for page in order:
                    if round_ < ROUNDS:
                        samples.paint[page.label].append(time_paint(paint_tab, page))
                    if round_ < PROBE_ROUNDS:
                        samples.probe[page.label].append(watch_banner(probe_tab, page))
            return browser.version, responses, samples
        finally:
            browser.close()


def run() -> dict[str, t.Any]:
    for package in PACKAGES:
        if not (NODE_MODULES / package / "package.json").is_file():
            raise RuntimeError(
                f"node_modules/{package} is missing: run `npm ci` in {ROOT}."
            )
    versions = {
        package: json.loads(
            (NODE_MODULES / package / "package.json").read_text(encoding="utf-8")
        )["version"]
        for package in PACKAGES
    }
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as instance, serve(instance) as static:
        pages = [
            Page("none", f"{static}/article.html", None, "none"),
            # The same page again: how far apart two identical pages measure.
            Page("none, again", f"{static}/article.html?again", None, "none"),
            Page("consent", f"{static}/bar/", "#cookie-consent", "none"),
            Page(
                "consent inline",
                f"{static}/inline/",
                "#cookie-consent",
                "none",
            ),
            Page(
                "vanilla-cookieconsent",
                f"{static}/vanilla-cookieconsent.html",
                "#cc-main .cm",
                "none",
            ),
            Page("klaro", f"{static}/klaro.html", "#klaro .cookie-notice", "none"),
            Page(
                "none, no stylesheet",
                f"{static}/article-no-stylesheet.html",
                None,
                "none, no stylesheet",
            ),
            Page(
                "consent, no stylesheet",
                f"{static}/bare/",
                "#cookie-consent",
                "none, no stylesheet",
            ),
            Page(
                "consent without consent.js",
                f"{static}/no-script/",
                "#cookie-consent",
                "none",
            ),
            Page("consent.js alone", f"{static}/article-consent-js.html", None, "none"),
        ]
        chromium, responses, samples = measure(pages)

    results: dict[str, dict[str, t.Any]] = {}
    for page in pages:
        rounds = samples.paint[page.label]
        watched = samples.probe[page.label]
        fcps = [r["fcp"] for r in rounds]
        base = [r["fcp"] for r in samples.paint[page.baseline]]
        entry: dict[str, t.Any] = {
            "url_path": urlsplit(page.url).path,
            "fcp_ms": median(fcps),
            "fcp_minus_baseline_ms": median(
                a - b for a, b in zip(fcps, base, strict=True)
            ),
            "baseline": page.baseline,
            "response_start_ms": median(r["response_start"] for r in rounds),
            "fcp_minus_baseline_quartiles_ms": _quartiles(
                [a - b for a, b in zip(fcps, base, strict=True)]
            ),
            "render_blocking": sorted({path for path, _ in rounds[0]["blocking"]}),
            "render_blocking_done_ms": median(
                max((end for _, end in r["blocking"]), default=0.0) for r in rounds
            ),
            "cls_max": max(r["cls"] for r in watched),
            "rounds": rounds,
            "probe_rounds": watched,
        }
        if page.selector:
            base_html = article(stylesheet=page.baseline == "none", from_root=True)
            base_paths = {
                r["path"] for r in responses[page.baseline] if r["type"] != "document"
            }
            entry.update(weigh(base_html, responses[page.label], base_paths))
            base_blocking = results[page.baseline]["render_blocking"]
            entry["render_blocking_added"] = [
                p for p in entry["render_blocking"] if p not in base_blocking
            ]
            after = [r["banner_paint"] - r["fcp"] for r in watched]
            wait = [r["usable"]["t"] - r["visible"]["t"] for r in watched]
            entry.update(
                banner_paint_ms=median(r["banner_paint"] for r in watched),
                banner_after_fcp_ms=median(after),
                banner_after_fcp_worst_ms=max(after),
                rounds_banner_in_first_paint=sum(a <= 0 for a in after),
                fade_ms=median(wait),
                fade_worst_ms=max(wait),
                least_opacity_when_first_shown=min(
                    r["visible"]["opacity"] for r in watched
                ),
                most_animations_when_first_shown=max(
                    r["visible"]["animations"] for r in watched
                ),
            )
        results[page.label] = entry
    elapsed = time.monotonic() - started
    report(pages, results, versions, chromium, elapsed)

    ours = results["consent"]
    peers = [label for label in results if label.split()[0] in PACKAGES]
    goals: list[Goal] = [
        goal(
            "banner bytes (HTML+CSS+JS, gzip -9)",
            ours["gzip_bytes"] / 1000,
            GOAL_BYTES / 1000,
            fmt=".2f",
            unit=" KB",
        ),
        goal("banner requests", ours["requests"], GOAL_REQUESTS, fmt="d"),
        goal(
            "banner requests not cacheable",
            ours["requests"] - ours["cacheable_requests"],
            0,
            fmt="d",
        ),
        goal(
            "banner painted after first paint",
            max(ours["banner_after_fcp_worst_ms"], 0.0),
            0.0,
            fmt=".1f",
            unit=" ms",
        ),
        goal(
            "first paint delay / the page's first paint",
            paint_share(results, "consent"),
            GOAL_PAINT_SHARE,
            fmt=".3f",
        ),
        goal(
            "the same, no page CSS",
            paint_share(results, "consent, no stylesheet"),
            GOAL_PAINT_SHARE,
            fmt=".3f",
        ),
        goal(
            "banner's own delay / fastest peer's",
            own_delay(ours) / min(own_delay(results[p]) for p in peers),
            GOAL_PEER_SHARE,
            fmt=".3f",
        ),
        goal(
            "wait until buttons usable",
            ours["fade_worst_ms"],
            0.0,
            fmt=".1f",
            unit=" ms",
        ),
        goal("layout shift, bar", ours["cls_max"], 0.0, fmt=".4f"),
        goal(
            "layout shift, inline",
            results["consent inline"]["cls_max"],
            0.0,
            fmt=".4f",
        ),
    ]
    print_goals(goals)
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "chromium": chromium,
        "versions": versions,
        "rounds": ROUNDS,
        "probe_rounds": PROBE_ROUNDS,
        "viewport": VIEWPORT,
        "pages": results,
        "quoted": QUOTED,
        "goals": goals,
    }


def report(
    pages: list[Page],
    results: dict[str, dict[str, t.Any]],
    versions: dict[str, str],
    chromium: str,
    elapsed: float,
) -> None:
    ours = results["consent"]
    print(
        f"  {ROUNDS} paint rounds and {PROBE_ROUNDS} probe rounds (+1 warm-up)"
        f" of {len(pages)} first visits each, Chromium"
        f" {chromium}, {VIEWPORT['width']}x{VIEWPORT['height']}, {elapsed:.0f} s;"
        " medians"
    )
    print(
        f"  {'page':<28}{'adds':>10}{'×ours':>7}{'requests':>10}{'FCP':>9}"
        f"{'vs none':>9}{'banner':>9}{'fade':>8}{'CLS':>7}"
    )
    for page in pages:
        r = results[page.label]
        name = page.label
        if name in versions:
            name = f"{name} {versions[name]}"
        cells = ["—"] * 5
        if page.selector:
            cells = [
                f"{r['gzip_bytes'] / 1000:.2f} KB",
                f"{r['gzip_bytes'] / ours['gzip_bytes']:.1f}",
                f"{r['requests']} ({r['fresh_requests']}f"
                f"{r['cacheable_requests'] - r['fresh_requests']}r)",
                f"{r['banner_after_fcp_ms']:+.0f}",
                f"{r['fade_ms']:.0f}",
            ]
        vs = (
            "—" if page.label == page.baseline else f"{r['fcp_minus_baseline_ms']:+.1f}"
        )
        print(
            f"  {name:<28}{cells[0]:>10}{cells[1]:>7}{cells[2]:>10}"
            f"{r['fcp_ms']:>9.1f}{vs:>9}{cells[3]:>9}{cells[4]:>8}"
            f"{r['cls_max']:>7.3f}"
        )
    print(
        "  adds: HTML, CSS and JS the banner adds, each gzip -9 (KB = 1000 B);"
        " requests: extra requests, f = fresh from cache, r = revalidated each"
        " time; FCP: first contentful paint, ms; vs none: paired difference to"
        " the same page without a banner, ms; banner: its first paint minus"
        " FCP, ms (0 = in the first paint); fade: ms from on screen to usable;"
        " CLS: worst round"
    )
    for label in ("consent", "vanilla-cookieconsent", "klaro"):
        r = results[label]
        parts = ", ".join(f"{k} {v} B" for k, v in r["parts"].items())
        quoted = f" (quoted in the issue: {QUOTED[label]})" if label in QUOTED else ""
        print(f"  {label}: {parts}; library files {r['library_gzip_bytes']} B{quoted}")
    for label in (
        "none, again",
        "consent",
        "consent, no stylesheet",
        "consent without consent.js",
        "consent.js alone",
    ):
        r = results[label]
        q1, q3 = r["fcp_minus_baseline_quartiles_ms"]
        blocking = ", ".join(r.get("render_blocking_added", [])) or "none"
        # The same delay as a share of the baseline's own first paint, which
        # changes with the machine as the delay does.
        share = r["fcp_minus_baseline_ms"] / results[r["baseline"]]["fcp_ms"]
        print(
            f"  {label}: first paint vs {r['baseline']}, per round: median"
            f" {r['fcp_minus_baseline_ms']:+.1f} ms ({share:+.0%} of the first"
            f" paint without a banner), quartiles {q1:+.1f} and {q3:+.1f} ms;"
            f" render-blocking requests added: {blocking}"
        )
    print(
        "  consent's files: "
        + ", ".join(f"{k}: Cache-Control {v}" for k, v in ours["cache_control"].items())
    )


if __name__ == "__main__":
    run()

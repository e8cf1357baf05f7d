"""Running a scan: three visits, each in a fresh browser profile.

1. **No interaction**: the start page, then up to ``crawl`` same-site links
   found on it, nothing clicked.
2. **Reject all**: the start page, a click on "Reject all", then every page
   again.
3. **Accept all**: the same with "Accept all".

Then the site's declaration is read and the findings worked out. Every
browser started is closed and every profile folder deleted, also when the
scan fails or is interrupted.
"""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import dataclasses
import json
import logging
import tempfile
import time
import typing as t
from datetime import datetime
from datetime import timezone
from pathlib import Path
from urllib.parse import urljoin
from urllib.parse import urlsplit

from .banner import Action
from .declaration import DECLARATION_PATH
from .declaration import Declaration
from .errors import DeclarationError
from .errors import ScanError
from .findings import check
from .records import ScanResult
from .records import VisitName
from .records import VisitRecord
from .sites import host_of
from .sites import site_of

if t.TYPE_CHECKING:
    from playwright.sync_api import BrowserContext
    from playwright.sync_api import Playwright

    from .visit import Deadline

logger = logging.getLogger(__name__)

#: What to do when the extra is missing.
INSTALL_EXTRA = (
    'The scanner needs its extra: pip install "cookie-consent[scan]"'
    " (Playwright drives the system's Chromium; no browser is downloaded)."
)

#: The largest declaration read, in bytes.
MAX_DECLARATION_BYTES = 1024 * 1024

#: The visits that make a choice, and the button each clicks.
_CHOICES: tuple[tuple[VisitName, Action], ...] = (
    ("reject_all", "reject"),
    ("accept_all", "accept"),
)

#: Called after each page: pages done, pages planned, visit, page URL.
Progress = cabc.Callable[[int, int, VisitName, str], None]


@dataclasses.dataclass(frozen=True)
class ScanOptions:
    """How a scan runs.

    :param crawl: Same-site links to follow from the start page.
    :param page_timeout: Seconds one page may take to load.
    :param total_timeout: Seconds the whole scan may take.
    :param browser: Path or name of the Chromium to drive; found
        automatically when None.
    :param browser_args: Extra Chromium switches, after the quiet defaults
        (tests map every host name to loopback with one).
    :param declaration_path: Where the site publishes its declaration.
    """

    crawl: int = 0
    page_timeout: float = 30.0
    total_timeout: float = 600.0
    browser: str | None = None
    browser_args: tuple[str, ...] = ()
    declaration_path: str = DECLARATION_PATH

    def __post_init__(self) -> None:
        if self.crawl < 0:
            raise ValueError("crawl must be 0 or more.")
        if self.page_timeout <= 0 or self.total_timeout <= 0:
            raise ValueError("Timeouts must be more than 0 seconds.")


def check_url(url: str) -> str:
    """``url`` if the scanner can start there.

    :raises ScanError: When it is not an absolute ``http`` or ``https`` URL.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ScanError(
            f"{url!r} is not a web address: give a full URL such as"
            " http://127.0.0.1:5000/."
        )
    return url.strip()


def scan(
    url: str, options: ScanOptions | None = None, progress: Progress | None = None
) -> ScanResult:
    """Scan ``url`` in three visits and check what they record.

    :param url: The start page, ``http`` or ``https``.
    :param options: How to run; the defaults when None.
    :param progress: Called after each page with the pages done and planned.
    :raises ScanError: When the scan cannot be done: no Playwright, no
        browser, the start page does not load, or time ran out.
    """
    options = options or ScanOptions()
    url = check_url(url)
    try:
        import tldextract  # noqa: F401
        from playwright.sync_api import sync_playwright
    except ImportError as err:
        raise ScanError(INSTALL_EXTRA) from err
    from .browser import find_browser

    executable = find_browser(options.browser)
    from .visit import Deadline

    started_at = datetime.now(timezone.utc)
    start = time.monotonic()
    deadline = Deadline(options.total_timeout, options.page_timeout)
    from playwright.sync_api import Error as PlaywrightError

    try:
        with sync_playwright() as playwright:
            session = _Session(playwright, executable, options, deadline, progress)
            result = session.run(url)
    except PlaywrightError as err:
        # The browser crashed or could not start: the scan has no result.
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ScanError(f"The browser failed ({first or type(err).__name__}).") from err
    return dataclasses.replace(
        result, started_at=started_at, duration=time.monotonic() - start
    )


class _Session:
    """The three visits of one scan, sharing a plan and a time budget."""

    def __init__(
        self,
        playwright: Playwright,
        executable: str,
        options: ScanOptions,
        deadline: Deadline,
        progress: Progress | None,
    ) -> None:
        self.playwright = playwright
        self.executable = executable
        self.options = options
        self.deadline = deadline
        self.progress = progress
        self.done = 0
        self.planned = 0
        self.version = ""

    def _on_page(self, visit: VisitName) -> cabc.Callable[[str], None]:
        def report(url: str) -> None:
            self.done += 1
            if self.progress is not None:
                self.progress(self.done, max(self.planned, self.done), visit, url)

        return report

    @contextlib.contextmanager
    def _context(self) -> cabc.Iterator[BrowserContext]:
        from .browser import QUIET_ARGS
        from .browser import browser_group
        from .browser import end_browser
        from .browser import prepare_profile

        with tempfile.TemporaryDirectory(prefix="consent-scan-") as folder:
            profile = Path(folder)
            prepare_profile(profile)
            group = None
            try:
                context = self.playwright.chromium.launch_persistent_context(
                    folder,
                    executable_path=self.executable,
                    headless=True,
                    args=[*QUIET_ARGS, *self.options.browser_args],
                    viewport={"width": 1280, "height": 900},
                    timeout=self.deadline.step() * 1000,
                )
                group = browser_group(profile)
                try:
                    if not self.version:
                        self.version = _browser_version(context)
                    yield context
                finally:
                    with contextlib.suppress(Exception):
                        context.close()
            finally:
                # The profile goes only once the browser no longer writes it.
                end_browser(group if group is not None else browser_group(profile))

    def run(self, url: str) -> ScanResult:
        from .visit import Visit

        with self._context() as context:
            first = Visit(context, "no_interaction", self.deadline)
            start = first.load(url, required=True)
            final = start.final_url or url
            site = site_of(host_of(final))
            banner = first.read_banner()
            plan = [url, *(u for u in first.links(self.options.crawl) if u != url)]
            # Known once the first page is read: the start page and its links
            # in each visit, and the page each choice is made on.
            self.planned = len(plan) + 2 * (1 + len(plan))
            first.on_page = self._on_page("no_interaction")
            first.on_page(url)
            for page in plan[1:]:
                first.load(page)
            visits: list[VisitRecord] = [first.record(banner, False, site)]
            declaration_url = urljoin(final, self.options.declaration_path)
            declaration, declaration_error = self._declaration(context, declaration_url)
        for name, action in _CHOICES:
            with self._context() as context:
                visit = Visit(context, name, self.deadline, self._on_page(name))
                visit.load(url, required=True)
                banner = visit.read_banner()
                chosen = visit.choose(action)
                if chosen:
                    for page in plan:
                        visit.load(page)
                else:
                    self.planned -= len(plan)
                visits.append(visit.record(banner, chosen, site))
        findings = check(visits, declaration)
        return ScanResult(
            url=url,
            site=site,
            started_at=datetime.now(timezone.utc),
            duration=0.0,
            browser=(self.executable, self.version),
            declaration_url=declaration_url,
            declaration=declaration,
            declaration_error=declaration_error,
            pages=tuple(plan),
            visits=tuple(visits),
            findings=tuple(findings),
        )

    def _declaration(
        self, context: BrowserContext, url: str
    ) -> tuple[Declaration | None, str | None]:
        """Read the declaration in a page of its own (after the visit was
        recorded, so nothing of it counts as the site's behaviour).
        """
        from playwright.sync_api import Error as PlaywrightError

        page = context.new_page()
        try:
            response = page.goto(url, timeout=self.deadline.step() * 1000)
            if response is None or response.status in (404, 410):
                return None, None
            if response.status != 200:
                return None, f"{url} answered HTTP {response.status}."
            content_type = response.header_value("content-type") or ""
            if "json" not in content_type:
                # A site that answers every path with a page has no
                # declaration there.
                return None, None
            body = response.body()
        except PlaywrightError as err:
            return None, f"{url} could not be read: {str(err).splitlines()[0]}"
        finally:
            with contextlib.suppress(Exception):
                page.close()
        if len(body) > MAX_DECLARATION_BYTES:
            return None, f"{url} is larger than {MAX_DECLARATION_BYTES} bytes."
        try:
            return Declaration.from_json(json.loads(body)), None
        except (ValueError, DeclarationError) as err:
            return None, f"{url} is not a valid declaration: {err}"


def _browser_version(context: BrowserContext) -> str:
    page = context.pages[0] if context.pages else context.new_page()
    try:
        session = context.new_cdp_session(page)
        version = session.send("Browser.getVersion")
        session.detach()
        return str(version.get("product", ""))
    except Exception:  # the version is informative only
        logger.debug("Could not read the browser version.", exc_info=True)
        return ""

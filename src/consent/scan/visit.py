"""One visit in a fresh browser profile, and what it records.

A :class:`Visit` listens to every request and response of its browser
context, loads pages, waits until the network is quiet, and after each
page reads the cookie jar and the Web Storage of every frame. The phase
(before or after the visit's choice) is stamped on everything it records.
"""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import dataclasses
import time
import typing as t
from datetime import datetime
from datetime import timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urldefrag
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

from playwright.sync_api import Error as PlaywrightError

from .banner import Action
from .banner import find_button
from .banner import read_banner
from .errors import ScanError
from .records import BannerRecord
from .records import CookieRecord
from .records import PageRecord
from .records import Phase
from .records import RequestRecord
from .records import SetBy
from .records import StorageArea
from .records import StorageRecord
from .records import VisitName
from .records import VisitRecord
from .sites import host_of
from .sites import is_web_url
from .sites import party_of
from .sites import site_of

if t.TYPE_CHECKING:
    from playwright.sync_api import BrowserContext
    from playwright.sync_api import Request
    from playwright.sync_api import Response

#: The network counts as quiet after this long without a request.
QUIET_SECONDS = 0.5

#: The longest wait for a quiet network after a page load or a click.
SETTLE_SECONDS = 5.0

#: The storage keys of a frame, and its origin.
_STORAGE_JS = """() => {
  const read = (area) => {
    try { return Object.keys(area()); } catch (e) { return []; }
  };
  return {origin: location.origin, local: read(() => localStorage),
          session: read(() => sessionStorage)};
}"""

#: Every link of the page, resolved by the browser.
_LINKS_JS = "() => Array.from(document.querySelectorAll('a[href]'), a => a.href)"


class Deadline:
    """The time a scan may still take, and the timeout of each step.

    :param total: Seconds the whole scan may take.
    :param page: Seconds one page may take to load.
    """

    def __init__(self, total: float, page: float) -> None:
        self.total = total
        self.page = page
        self._end = time.monotonic() + total

    @property
    def remaining(self) -> float:
        """Seconds left before the total timeout."""
        return self._end - time.monotonic()

    def step(self, limit: float | None = None) -> float:
        """Seconds the next step may take: the page timeout (or ``limit``),
        cut to what is left.

        :raises ScanError: When no time is left.
        """
        left = self.remaining
        if left <= 0:
            raise ScanError(
                f"The scan took longer than its total timeout of {self.total:g} s;"
                " scan fewer pages (--crawl) or allow more time (--total-timeout)."
            )
        return min(self.page if limit is None else limit, left)


@dataclasses.dataclass
class _Seen:
    """A cookie or storage key while the visit goes on."""

    first_seen: str
    phases: dict[Phase, None] = dataclasses.field(default_factory=dict)
    attributes: dict[str, t.Any] = dataclasses.field(default_factory=dict)


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _expiry(value: float | None) -> datetime | None:
    if value is None or value < 0:
        return None
    return datetime.fromtimestamp(value, tz=timezone.utc)


def _domain_matches(host: str, domain: str) -> bool:
    domain = domain.lstrip(".")
    return host == domain or host.endswith("." + domain)


def stored_cookie_name(header: str, now: datetime | None = None) -> str | None:
    """The name of the cookie a ``Set-Cookie`` header stores, or None when
    it deletes one (``Max-Age`` of 0 or less, or an ``Expires`` in the past).

    :param header: One ``Set-Cookie`` header value.
    :param now: The time to compare ``Expires`` with; the current time when
        None.
    """
    pair, *attributes = header.split(";")
    name = pair.split("=", 1)[0].strip()
    if not name or "=" not in pair:
        return None
    now = now or datetime.now(timezone.utc)
    max_age: int | None = None
    expires: datetime | None = None
    for attribute in attributes:
        key, _, value = attribute.partition("=")
        key = key.strip().lower()
        if key == "max-age":
            with contextlib.suppress(ValueError):
                max_age = int(value.strip())
        elif key == "expires":
            with contextlib.suppress(TypeError, ValueError):
                expires = parsedate_to_datetime(value.strip())
                if expires.tzinfo is None:
                    expires = expires.replace(tzinfo=timezone.utc)
    # Max-Age wins over Expires (RFC 6265, section 5.3).
    if max_age is not None:
        return name if max_age > 0 else None
    if expires is not None and expires <= now:
        return None
    return name


def describe_error(err: Exception, url: str, timeout: float) -> str:
    """One line that says why ``url`` could not be loaded.

    :param err: What Playwright raised.
    :param url: The page.
    :param timeout: The timeout it had, in seconds.
    """
    text = str(err)
    reasons = {
        "ERR_CONNECTION_REFUSED": "nothing is listening there (connection refused)",
        "ERR_NAME_NOT_RESOLVED": "its host name does not resolve",
        "ERR_ADDRESS_UNREACHABLE": "its address is unreachable",
        "ERR_CONNECTION_RESET": "the connection was reset",
        "ERR_EMPTY_RESPONSE": "the server closed the connection without answering",
        "ERR_CERT_": "its TLS certificate is not valid",
        "ERR_INTERNET_DISCONNECTED": "there is no network",
    }
    for code, reason in reasons.items():
        if code in text:
            return f"Could not load {url}: {reason}."
    if "Timeout" in type(err).__name__ or "Timeout" in text:
        return f"Could not load {url}: no answer within {timeout:g} s."
    first = text.strip().splitlines()[0] if text.strip() else type(err).__name__
    return f"Could not load {url}: {first}"


class Visit:
    """Records one visit: attach, load pages, choose, then :meth:`record`.

    :param context: A fresh browser context, used by this visit only.
    :param name: Which visit this is.
    :param deadline: The scan's time budget.
    :param on_page: Called with each page's URL once it is recorded.
    """

    def __init__(
        self,
        context: BrowserContext,
        name: VisitName,
        deadline: Deadline,
        on_page: cabc.Callable[[str], None] | None = None,
    ) -> None:
        self.context = context
        self.name = name
        self.deadline = deadline
        self.on_page = on_page
        self.phase: Phase = "before_choice"
        self.page = context.pages[0] if context.pages else context.new_page()
        self.pages: list[PageRecord] = []
        self._current = ""
        self._inflight: set[Request] = set()
        self._last_activity = time.monotonic()
        self._requests: dict[tuple[str, Phase], tuple[str, str, str, str]] = {}
        self._responses: list[tuple[str, Response]] = []
        self._header_cookies: set[tuple[str, str]] = set()
        self._cookies: dict[tuple[str, str, str], _Seen] = {}
        self._storage: dict[tuple[str, StorageArea, str], _Seen] = {}
        context.on("request", self._on_request)
        context.on("requestfinished", self._on_done)
        context.on("requestfailed", self._on_done)
        context.on("response", self._on_response)

    # Events -----------------------------------------------------------------

    def _on_request(self, request: Request) -> None:
        self._inflight.add(request)
        self._last_activity = time.monotonic()
        url = request.url
        if not is_web_url(url):
            return
        key = (_without_query(url), self.phase)
        if key not in self._requests:
            self._requests[key] = (
                key[0],
                host_of(url),
                request.resource_type,
                self._current,
            )

    def _on_done(self, request: Request) -> None:
        self._inflight.discard(request)
        self._last_activity = time.monotonic()

    def _on_response(self, response: Response) -> None:
        self._responses.append((host_of(response.url), response))

    # Steps ------------------------------------------------------------------

    def settle(self) -> None:
        """Wait until no request has been open for :data:`QUIET_SECONDS`,
        for at most :data:`SETTLE_SECONDS` (a page that keeps polling never
        gets quiet, and that is not an error).
        """
        end = time.monotonic() + self.deadline.step(SETTLE_SECONDS)
        while time.monotonic() < end:
            # Waiting in the page lets Playwright deliver the events.
            self.page.wait_for_timeout(100)
            quiet = time.monotonic() - self._last_activity >= QUIET_SECONDS
            if not self._inflight and quiet:
                return

    def load(self, url: str, *, required: bool = False) -> PageRecord:
        """Load ``url``, wait for it to settle, and record what it left.

        :param url: The page.
        :param required: Raise instead of recording the error when the page
            cannot be loaded (the first page of a scan).
        :raises ScanError: When ``required`` and the page does not load.
        """
        timeout = self.deadline.step()
        self._current = url
        try:
            response = self.page.goto(url, wait_until="load", timeout=timeout * 1000)
        except PlaywrightError as err:
            message = describe_error(err, url, timeout)
            if required:
                raise ScanError(message) from err
            page = PageRecord(url, self.phase, error=message)
        else:
            status = response.status if response is not None else None
            if required and status is not None and status >= 400:
                raise ScanError(
                    f"{url} answered HTTP {status}: give the URL of a page that loads."
                )
            self.settle()
            page = PageRecord(url, self.phase, status, self.page.url)
            self.snapshot()
        self.pages.append(page)
        if self.on_page is not None:
            self.on_page(url)
        return page

    def snapshot(self) -> None:
        """Read the cookie jar and every frame's storage now."""
        for response_host, response in self._responses:
            try:
                values = response.header_values("set-cookie")
            except PlaywrightError:
                continue
            for value in values:
                for line in value.split("\n"):
                    name = stored_cookie_name(line)
                    if name:
                        self._header_cookies.add((name, response_host))
        self._responses.clear()
        where = self.page.url
        for cookie in self.context.cookies():
            key = (
                cookie.get("name", ""),
                cookie.get("domain", ""),
                cookie.get("path", "/"),
            )
            seen = self._cookies.setdefault(key, _Seen(where))
            seen.phases[self.phase] = None
            seen.attributes = dict(cookie)
        for frame in self.page.frames:
            try:
                found = frame.evaluate(_STORAGE_JS)
            except PlaywrightError:
                continue  # detached or navigating away
            origin = found.get("origin") or "null"
            if origin == "null":
                continue
            for area in ("local", "session"):
                for storage_key in found.get(area) or ():
                    item = self._storage.setdefault(
                        (origin, area, str(storage_key)), _Seen(where)
                    )
                    item.phases[self.phase] = None

    def read_banner(self) -> BannerRecord:
        """What the current page shows of a consent banner."""
        return read_banner(self.page)

    def choose(self, action: Action) -> bool:
        """Click "Accept all" or "Reject all" and wait for the page to settle.

        Everything recorded from here on belongs to the phase after the
        choice.

        :param action: ``"accept"`` or ``"reject"``.
        :returns: False when the page has no such button.
        """
        button = find_button(self.page, action)
        if button is None:
            return False
        self.phase = "after_choice"
        button.click(timeout=self.deadline.step() * 1000)
        self.settle()
        return True

    def links(self, limit: int) -> list[str]:
        """Up to ``limit`` distinct same-site links of the current page, in
        the order they appear, without fragments and without the page itself.
        """
        if limit <= 0:
            return []
        site = site_of(host_of(self.page.url))
        here = urldefrag(self.page.url).url
        found: dict[str, None] = {}
        for href in self.page.evaluate(_LINKS_JS):
            url = urldefrag(str(href)).url
            scheme = urlsplit(url).scheme
            if scheme not in ("http", "https") or url == here or url in found:
                continue
            if site_of(host_of(url)) != site:
                continue
            found[url] = None
            if len(found) >= limit:
                break
        return list(found)

    def record(self, banner: BannerRecord, choice_made: bool, site: str) -> VisitRecord:
        """Everything this visit recorded, as plain values.

        :param banner: What its first page showed.
        :param choice_made: Whether its button was clicked.
        :param site: The registrable domain of the scanned site.
        """
        cookies = []
        for (name, domain, path), seen in self._cookies.items():
            attrs = seen.attributes
            host = domain.lstrip(".")
            set_by: SetBy = (
                "header"
                if any(
                    n == name and _domain_matches(h, host)
                    for n, h in self._header_cookies
                )
                else "script"
            )
            cookies.append(
                CookieRecord(
                    name=name,
                    domain=domain,
                    path=path,
                    expires=_expiry(attrs.get("expires")),
                    http_only=bool(attrs.get("httpOnly")),
                    secure=bool(attrs.get("secure")),
                    same_site=attrs.get("sameSite"),
                    partitioned=bool(attrs.get("partitionKey")),
                    party=party_of(host, site),
                    set_by=set_by,
                    phases=tuple(seen.phases),
                    first_seen=seen.first_seen,
                )
            )
        requests = [
            RequestRecord(url, host, kind, phase, page)
            for (_, phase), (url, host, kind, page) in self._requests.items()
            if party_of(host, site) == "third"
        ]
        storage = [
            StorageRecord(
                origin,
                area,
                key,
                party_of(host_of(origin), site),
                tuple(seen.phases),
                seen.first_seen,
            )
            for (origin, area, key), seen in self._storage.items()
        ]
        return VisitRecord(
            name=self.name,
            banner=banner,
            choice_made=choice_made,
            pages=tuple(self.pages),
            cookies=tuple(cookies),
            requests=tuple(requests),
            storage=tuple(storage),
        )

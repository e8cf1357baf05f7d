"""What a scan records: pages, cookies, requests, storage, per visit.

Plain frozen values, so the checks, the reports and the tests work on them
without a browser.
"""

from __future__ import annotations

import dataclasses
import typing as t
from datetime import datetime

from .sites import Party

if t.TYPE_CHECKING:
    from .declaration import Declaration
    from .findings import Finding

#: The three visits: nothing clicked, "Reject all", "Accept all".
VisitName = t.Literal["no_interaction", "reject_all", "accept_all"]

#: The visits in the order they run.
VISITS: tuple[VisitName, ...] = ("no_interaction", "reject_all", "accept_all")

#: Plain-language names of the visits, for reports.
VISIT_TITLES: dict[VisitName, str] = {
    "no_interaction": "No interaction",
    "reject_all": "Reject all",
    "accept_all": "Accept all",
}

#: Whether something was seen before or after the visit's choice was made.
Phase = t.Literal["before_choice", "after_choice"]

#: How a cookie got into the browser.
SetBy = t.Literal["header", "script"]

#: Which Web Storage area a key is in.
StorageArea = t.Literal["local", "session"]


@dataclasses.dataclass(frozen=True)
class PageRecord:
    """One page load.

    :param url: The URL asked for.
    :param phase: Before or after the visit's choice.
    :param status: The HTTP status of the document, when one came.
    :param final_url: Where the page ended up after redirects.
    :param error: Why the page could not be loaded, when it could not.
    """

    url: str
    phase: Phase
    status: int | None = None
    final_url: str | None = None
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class CookieRecord:
    """A cookie found in the browser's cookie jar.

    :param name: The cookie name.
    :param domain: Its domain, with a leading dot for domain cookies.
    :param path: Its path.
    :param expires: When it expires; None for a session cookie.
    :param http_only: The HttpOnly attribute.
    :param secure: The Secure attribute.
    :param same_site: The SameSite attribute as the browser keeps it.
    :param partitioned: True for a partitioned (CHIPS) cookie.
    :param party: First or third party, by registrable domain.
    :param set_by: ``"header"`` when a ``Set-Cookie`` response header of
        its domain named it, ``"script"`` otherwise.
    :param phases: The phases in which it was in the jar.
    :param first_seen: The page after which it was first in the jar.
    """

    name: str
    domain: str
    path: str
    expires: datetime | None
    http_only: bool
    secure: bool
    same_site: str | None
    partitioned: bool
    party: Party
    set_by: SetBy
    phases: tuple[Phase, ...]
    first_seen: str


@dataclasses.dataclass(frozen=True)
class RequestRecord:
    """A request to another site.

    :param url: The URL, its query string left out.
    :param host: The host it went to.
    :param resource_type: What the browser fetched (``script``, ``image``...).
    :param phase: Before or after the visit's choice.
    :param page: The page that made it.
    """

    url: str
    host: str
    resource_type: str
    phase: Phase
    page: str


@dataclasses.dataclass(frozen=True)
class StorageRecord:
    """A ``localStorage`` or ``sessionStorage`` key.

    :param origin: The origin whose storage holds it.
    :param area: ``"local"`` or ``"session"``.
    :param key: The key.
    :param party: First or third party, by registrable domain.
    :param phases: The phases in which it was there.
    :param first_seen: The page after which it was first there.
    """

    origin: str
    area: StorageArea
    key: str
    party: Party
    phases: tuple[Phase, ...]
    first_seen: str


@dataclasses.dataclass(frozen=True)
class BannerRecord:
    """What the first page of a visit showed before any click.

    :param shown: True when an accept or reject button was visible.
    :param ours: True when it is this library's banner (``#cookie-consent``).
    :param has_accept: An "Accept all" button was visible.
    :param has_reject: A "Reject all" button was visible on the first layer.
    """

    shown: bool = False
    ours: bool = False
    has_accept: bool = False
    has_reject: bool = False


@dataclasses.dataclass(frozen=True)
class VisitRecord:
    """One visit in a fresh browser profile.

    :param name: Which visit.
    :param banner: What the first page showed.
    :param choice_made: True when the visit's button was found and clicked;
        always False for ``no_interaction``.
    :param pages: Every page load, in order.
    :param cookies: Every cookie seen in the jar.
    :param requests: Every request to another site.
    :param storage: Every Web Storage key seen.
    """

    name: VisitName
    banner: BannerRecord
    choice_made: bool
    pages: tuple[PageRecord, ...]
    cookies: tuple[CookieRecord, ...]
    requests: tuple[RequestRecord, ...]
    storage: tuple[StorageRecord, ...]


@dataclasses.dataclass(frozen=True)
class ScanResult:
    """Everything one scan found.

    :param url: The URL the scan started from.
    :param site: The registrable domain of the site scanned.
    :param started_at: When the scan started (aware, UTC).
    :param duration: How long it took, in seconds.
    :param browser: The browser's executable and version.
    :param declaration_url: Where the declaration was looked for.
    :param declaration: The declaration, when the site publishes one.
    :param declaration_error: Why a published declaration was not used.
    :param pages: The pages each visit went through.
    :param visits: The three visits.
    :param findings: What is wrong, most important first.
    """

    url: str
    site: str
    started_at: datetime
    duration: float
    browser: tuple[str, str]
    declaration_url: str
    declaration: Declaration | None
    declaration_error: str | None
    pages: tuple[str, ...]
    visits: tuple[VisitRecord, ...]
    findings: tuple[Finding, ...]

    @property
    def is_clean(self) -> bool:
        """True when there is no finding."""
        return not self.findings

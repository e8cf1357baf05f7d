"""The checks: what the recorded visits show against what the site declares.

With a declaration (``/consent/declaration.json``):

- any cookie or storage key not declared strictly necessary, and any request
  to another site, before a choice;
- any cookie of a refused category still there after "Reject all";
- any cookie the declaration does not list, in any visit.

Without one, the bundled list of well-known trackers stands in: a tracker
cookie or host before a choice, or a tracker cookie after "Reject all".
Either way, a request to a tracker host after "Reject all" is a finding,
and so is a banner that offers "Accept all" without "Reject all" beside it.

One problem is one finding, however many pages or visits show it: each
finding lists where it was seen.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import typing as t

from .records import CookieRecord
from .records import Phase
from .records import VisitName
from .records import VisitRecord
from .trackers import tracker_cookie
from .trackers import tracker_host

if t.TYPE_CHECKING:
    from .declaration import Declaration

#: Every kind of finding, most important first (reports keep this order).
FindingCode = t.Literal[
    "cookie_before_choice",
    "storage_before_choice",
    "request_before_choice",
    "tracker_cookie_before_choice",
    "tracker_request_before_choice",
    "refused_cookie_after_reject",
    "tracker_cookie_after_reject",
    "tracker_request_after_reject",
    "undeclared_cookie",
    "no_reject_button",
    "choice_not_offered",
]

#: The codes in report order.
FINDING_CODES: tuple[FindingCode, ...] = t.get_args(FindingCode)


@dataclasses.dataclass(frozen=True)
class Location:
    """Where a finding was seen.

    :param visit: Which visit.
    :param page: The page's URL.
    """

    visit: VisitName
    page: str


@dataclasses.dataclass(frozen=True)
class Finding:
    """One problem the scan found.

    :param code: What kind of problem (stable, for CI and the JSON report).
    :param subject: The cookie name, storage key or host it is about; empty
        for a finding about the banner.
    :param message: One sentence that says what is wrong.
    :param locations: Where it was seen, in order.
    """

    code: FindingCode
    subject: str
    message: str
    locations: tuple[Location, ...] = ()


class _Collector:
    """Findings keyed by (code, subject), each with its locations."""

    def __init__(self) -> None:
        self._messages: dict[tuple[FindingCode, str], str] = {}
        self._locations: dict[tuple[FindingCode, str], list[Location]] = {}

    def add(
        self, code: FindingCode, subject: str, message: str, location: Location | None
    ) -> None:
        key = (code, subject)
        self._messages.setdefault(key, message)
        places = self._locations.setdefault(key, [])
        if location is not None and location not in places:
            places.append(location)

    def findings(self) -> list[Finding]:
        order = {code: index for index, code in enumerate(FINDING_CODES)}
        keys = sorted(self._messages, key=lambda k: order[k[0]])
        return [
            Finding(code, subject, self._messages[(code, subject)], tuple(places))
            for (code, subject), places in ((k, self._locations[k]) for k in keys)
        ]


def check(
    visits: cabc.Sequence[VisitRecord], declaration: Declaration | None
) -> list[Finding]:
    """Every finding in ``visits``, most important first.

    :param visits: The recorded visits.
    :param declaration: The site's declaration, or None when it has none.
    """
    found = _Collector()
    if declaration is not None:
        _check_declared(visits, declaration, found)
    else:
        _check_trackers(visits, found)
    for visit in visits:
        if visit.name != "reject_all":
            continue
        for request in visit.requests:
            tracker = tracker_host(request.host)
            if request.phase == "after_choice" and tracker is not None:
                found.add(
                    "tracker_request_after_reject",
                    request.host,
                    f"The page contacts {request.host} ({tracker.vendor},"
                    f" {tracker.purpose}) after Reject all.",
                    Location(visit.name, request.page),
                )
    _check_banner(visits, declaration, found)
    return found.findings()


def _has(record: CookieRecord, phase: Phase) -> bool:
    return phase in record.phases


def _categories(declaration: Declaration, name: str) -> str:
    return ", ".join(declaration.categories_of(name)) or "not declared"


def _check_declared(
    visits: cabc.Sequence[VisitRecord], declaration: Declaration, found: _Collector
) -> None:
    for visit in visits:
        for cookie in visit.cookies:
            where = Location(visit.name, cookie.first_seen)
            if not declaration.is_declared(cookie.name):
                found.add(
                    "undeclared_cookie",
                    cookie.name,
                    f"Cookie {cookie.name} ({cookie.domain}) is not in the"
                    " site's cookie declaration.",
                    where,
                )
            necessary = declaration.is_necessary(cookie.name)
            if _has(cookie, "before_choice") and not necessary:
                found.add(
                    "cookie_before_choice",
                    cookie.name,
                    f"Cookie {cookie.name} ({_categories(declaration, cookie.name)})"
                    " is set before any choice.",
                    where,
                )
            if (
                visit.name == "reject_all"
                and visit.choice_made
                and _has(cookie, "after_choice")
                and not necessary
                and declaration.is_declared(cookie.name)
            ):
                found.add(
                    "refused_cookie_after_reject",
                    cookie.name,
                    f"Cookie {cookie.name} ({_categories(declaration, cookie.name)})"
                    " is set after Reject all.",
                    where,
                )
        for item in visit.storage:
            if "before_choice" in item.phases and not declaration.is_necessary(
                item.key
            ):
                found.add(
                    "storage_before_choice",
                    item.key,
                    f"{item.area}Storage key {item.key} of {item.origin} is written"
                    " before any choice.",
                    Location(visit.name, item.first_seen),
                )
        for request in visit.requests:
            if request.phase == "before_choice":
                found.add(
                    "request_before_choice",
                    request.host,
                    f"The page contacts {request.host}, another site, before any"
                    " choice.",
                    Location(visit.name, request.page),
                )


def _check_trackers(visits: cabc.Sequence[VisitRecord], found: _Collector) -> None:
    for visit in visits:
        rejected = visit.name == "reject_all" and visit.choice_made
        for cookie in visit.cookies:
            tracker = tracker_cookie(cookie.name)
            if tracker is None:
                continue
            where = Location(visit.name, cookie.first_seen)
            what = f"Cookie {cookie.name} of {tracker.vendor} ({tracker.purpose})"
            if _has(cookie, "before_choice"):
                found.add(
                    "tracker_cookie_before_choice",
                    cookie.name,
                    f"{what} is set before any choice.",
                    where,
                )
            if rejected and _has(cookie, "after_choice"):
                found.add(
                    "tracker_cookie_after_reject",
                    cookie.name,
                    f"{what} is set after Reject all.",
                    where,
                )
        for request in visit.requests:
            tracker = tracker_host(request.host)
            if tracker is not None and request.phase == "before_choice":
                found.add(
                    "tracker_request_before_choice",
                    request.host,
                    f"The page contacts {request.host} ({tracker.vendor},"
                    f" {tracker.purpose}) before any choice.",
                    Location(visit.name, request.page),
                )


def _check_banner(
    visits: cabc.Sequence[VisitRecord],
    declaration: Declaration | None,
    found: _Collector,
) -> None:
    first = visits[0] if visits else None
    if first is None or not first.pages:
        return
    page = first.pages[0].url
    banner = first.banner
    if banner.has_accept and not banner.has_reject:
        found.add(
            "no_reject_button",
            "",
            "The banner offers Accept all but no Reject all on its first layer.",
            Location(first.name, page),
        )
    if declaration is not None and declaration.optional and not banner.shown:
        found.add(
            "choice_not_offered",
            "",
            "The declaration has optional categories"
            f" ({', '.join(declaration.optional)}) but no Accept all or Reject"
            " all button was found.",
            Location(first.name, page),
        )


def describe(code: FindingCode) -> str:
    """A short title for a kind of finding, for report headings."""
    return _TITLES[code]


_TITLES: dict[FindingCode, str] = {
    "cookie_before_choice": "Non-essential cookie before a choice",
    "storage_before_choice": "Non-essential storage before a choice",
    "request_before_choice": "Request to another site before a choice",
    "tracker_cookie_before_choice": "Tracker cookie before a choice",
    "tracker_request_before_choice": "Tracker request before a choice",
    "refused_cookie_after_reject": "Refused cookie after Reject all",
    "tracker_cookie_after_reject": "Tracker cookie after Reject all",
    "tracker_request_after_reject": "Tracker request after Reject all",
    "undeclared_cookie": "Cookie missing from the declaration",
    "no_reject_button": "No Reject all on the first layer",
    "choice_not_offered": "No choice offered",
}

"""Recorded visits built by hand, for the scanner's checks and reports."""

from __future__ import annotations

import typing as t
from datetime import datetime
from datetime import timezone

from consent.scan.declaration import Declaration
from consent.scan.findings import check
from consent.scan.records import VISITS
from consent.scan.records import BannerRecord
from consent.scan.records import CookieRecord
from consent.scan.records import PageRecord
from consent.scan.records import Phase
from consent.scan.records import RequestRecord
from consent.scan.records import ScanResult
from consent.scan.records import StorageRecord
from consent.scan.records import VisitName
from consent.scan.records import VisitRecord

PAGE = "http://127.0.0.1:5000/"
BANNER = BannerRecord(shown=True, ours=True, has_accept=True, has_reject=True)

#: A declaration like the demo's, plus marketing.
DECLARATION = Declaration.from_json(
    {
        "revision": "r1",
        "categories": [
            {
                "key": "necessary",
                "required": True,
                "cookies": [{"name": "consent"}, {"name": "consent_csrf"}],
            },
            {
                "key": "analytics",
                "cookies": [
                    {"name": "_ga"},
                    {"name": "_ga_[A-Z0-9]+", "pattern": True},
                ],
            },
            {
                "key": "marketing",
                "services": [{"key": "pixel", "cookies": [{"name": "_fbp"}]}],
            },
        ],
    }
)


def cookie(
    name: str,
    *phases: Phase,
    domain: str = "127.0.0.1",
    party: t.Literal["first", "third"] = "first",
    page: str = PAGE,
) -> CookieRecord:
    return CookieRecord(
        name=name,
        domain=domain,
        path="/",
        expires=datetime(2030, 1, 1, tzinfo=timezone.utc),
        http_only=False,
        secure=False,
        same_site="Lax",
        partitioned=False,
        party=party,
        set_by="script",
        phases=phases or ("after_choice",),
        first_seen=page,
    )


def request(host: str, phase: Phase, page: str = PAGE) -> RequestRecord:
    return RequestRecord(f"https://{host}/t.js", host, "script", phase, page)


def storage(key: str, *phases: Phase) -> StorageRecord:
    return StorageRecord("http://127.0.0.1:5000", "local", key, "first", phases, PAGE)


def visit(
    name: VisitName,
    *records: CookieRecord | RequestRecord | StorageRecord,
    banner: BannerRecord = BANNER,
    choice_made: bool | None = None,
) -> VisitRecord:
    chosen = name != "no_interaction" if choice_made is None else choice_made
    pages = [PageRecord(PAGE, "before_choice", 200, PAGE)]
    if chosen:
        pages.append(PageRecord(PAGE, "after_choice", 200, PAGE))
    return VisitRecord(
        name=name,
        banner=banner,
        choice_made=chosen,
        pages=tuple(pages),
        cookies=tuple(r for r in records if isinstance(r, CookieRecord)),
        requests=tuple(r for r in records if isinstance(r, RequestRecord)),
        storage=tuple(r for r in records if isinstance(r, StorageRecord)),
    )


def clean_visits() -> list[VisitRecord]:
    """Three visits of a site that does everything right."""
    return [
        visit("no_interaction", cookie("consent_csrf", "before_choice")),
        visit(
            "reject_all",
            cookie("consent_csrf", "before_choice", "after_choice"),
            cookie("consent"),
        ),
        visit(
            "accept_all",
            cookie("consent"),
            cookie("_ga"),
            cookie("_fbp"),
            request("www.google-analytics.com", "after_choice"),
        ),
    ]


def result(
    visits: list[VisitRecord], declaration: Declaration | None = DECLARATION
) -> ScanResult:
    assert [v.name for v in visits] == list(VISITS)
    return ScanResult(
        url=PAGE,
        site="127.0.0.1",
        started_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        duration=4.2,
        browser=("/usr/bin/chromium", "HeadlessChrome/156.0"),
        declaration_url=PAGE + "consent/declaration.json",
        declaration=declaration,
        declaration_error=None,
        pages=(PAGE,),
        visits=tuple(visits),
        findings=tuple(check(visits, declaration)),
    )


def closed(schema: t.Any) -> t.Any:
    """A JSON Schema with every object closed: a field that a report has but
    the schema does not document fails validation.
    """
    if isinstance(schema, dict):
        schema = {key: closed(value) for key, value in schema.items()}
        if "properties" in schema:
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        schema = [closed(item) for item in schema]
    return schema

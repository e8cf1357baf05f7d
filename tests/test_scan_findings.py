"""The checks: recorded visits against the declaration or known trackers."""

from __future__ import annotations

import pytest

from consent.scan.findings import FINDING_CODES
from consent.scan.findings import Finding
from consent.scan.findings import Location
from consent.scan.findings import check
from consent.scan.findings import describe
from consent.scan.records import BannerRecord
from consent.scan.records import VisitRecord
from tests.scan_records import DECLARATION
from tests.scan_records import PAGE
from tests.scan_records import clean_visits
from tests.scan_records import cookie
from tests.scan_records import request
from tests.scan_records import storage
from tests.scan_records import visit


def codes(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.code, f.subject) for f in findings]


def test_a_site_that_does_it_right_is_clean() -> None:
    assert check(clean_visits(), DECLARATION) == []
    assert check(clean_visits(), None) == []


def test_the_broken_shop_with_its_declaration() -> None:
    before = [
        cookie("_ga", "before_choice"),
        request("static.hotjar.com", "before_choice"),
    ]
    visits = [
        visit("no_interaction", *before),
        visit("reject_all", *before, cookie("choice_x"), cookie("_fbp")),
        visit("accept_all", *before, cookie("_fbp")),
    ]
    found = check(visits, DECLARATION)
    assert codes(found) == [
        ("cookie_before_choice", "_ga"),
        ("request_before_choice", "static.hotjar.com"),
        ("refused_cookie_after_reject", "_fbp"),
        ("undeclared_cookie", "choice_x"),
    ]
    # One finding per problem, seen in every visit that showed it.
    assert [loc.visit for loc in found[0].locations] == [
        "no_interaction",
        "reject_all",
        "accept_all",
    ]
    assert found[0].message == "Cookie _ga (analytics) is set before any choice."


def test_the_broken_shop_against_known_trackers() -> None:
    before = [
        cookie("_ga", "before_choice"),
        request("static.hotjar.com", "before_choice"),
    ]
    visits = [
        visit("no_interaction", *before),
        visit("reject_all", *before, cookie("_fbp"), cookie("session")),
        visit("accept_all", *before, cookie("_fbp")),
    ]
    assert codes(check(visits, None)) == [
        ("tracker_cookie_before_choice", "_ga"),
        ("tracker_request_before_choice", "static.hotjar.com"),
        ("tracker_cookie_after_reject", "_fbp"),
    ]


def test_undeclared_cookie_before_a_choice_is_two_problems() -> None:
    visits = clean_visits()
    visits[0] = visit("no_interaction", cookie("mystery", "before_choice"))
    assert codes(check(visits, DECLARATION)) == [
        ("cookie_before_choice", "mystery"),
        ("undeclared_cookie", "mystery"),
    ]


def test_declared_patterns_count() -> None:
    visits = clean_visits()
    visits[2] = visit("accept_all", cookie("_ga_ABC123"), cookie("_ga_lower"))
    assert codes(check(visits, DECLARATION)) == [("undeclared_cookie", "_ga_lower")]


def test_cookie_cleared_by_reject_is_not_a_refused_cookie() -> None:
    visits = clean_visits()
    visits[1] = visit("reject_all", cookie("consent"), cookie("_ga", "before_choice"))
    assert codes(check(visits, DECLARATION)) == [("cookie_before_choice", "_ga")]


def test_no_click_no_after_reject_findings() -> None:
    visits = clean_visits()
    visits[1] = visit("reject_all", cookie("_fbp", "after_choice"), choice_made=False)
    assert codes(check(visits, DECLARATION)) == []


def test_storage_before_a_choice() -> None:
    visits = clean_visits()
    visits[0] = visit(
        "no_interaction",
        storage("consent", "before_choice"),
        storage("ab_test", "before_choice"),
        storage("later", "after_choice"),
    )
    found = check(visits, DECLARATION)
    assert codes(found) == [("storage_before_choice", "ab_test")]
    assert "localStorage key ab_test" in found[0].message


def test_tracker_request_after_reject_is_a_finding_either_way() -> None:
    visits = clean_visits()
    visits[1] = visit(
        "reject_all",
        cookie("consent"),
        request("connect.facebook.net", "after_choice"),
        request("cdn.example.net", "after_choice"),
    )
    for declaration in (DECLARATION, None):
        found = check(visits, declaration)
        assert codes(found) == [
            ("tracker_request_after_reject", "connect.facebook.net")
        ]
        assert "Meta Pixel" in found[0].message


def test_banner_without_reject() -> None:
    no_reject = BannerRecord(shown=True, has_accept=True)
    visits: list[VisitRecord] = [
        visit("no_interaction", banner=no_reject),
        visit("reject_all", banner=no_reject, choice_made=False),
        visit("accept_all", cookie("_ga"), banner=no_reject),
    ]
    found = check(visits, DECLARATION)
    assert codes(found) == [("no_reject_button", "")]
    assert found[0].locations == (Location("no_interaction", PAGE),)


def test_no_banner_while_declaring_optional_categories() -> None:
    none = BannerRecord()
    visits = [
        visit("no_interaction", banner=none),
        visit("reject_all", banner=none, choice_made=False),
        visit("accept_all", banner=none, choice_made=False),
    ]
    found = check(visits, DECLARATION)
    assert codes(found) == [("choice_not_offered", "")]
    assert "(analytics, marketing)" in found[0].message
    # Without a declaration, a site without a banner may need none.
    assert check(visits, None) == []


def test_findings_come_in_report_order() -> None:
    visits = [
        visit(
            "no_interaction",
            cookie("zz", "before_choice"),
            request("a.example", "before_choice"),
        ),
        visit("reject_all", cookie("_fbp")),
        visit("accept_all"),
    ]
    found = check(visits, DECLARATION)
    order = [FINDING_CODES.index(f.code) for f in found]
    assert order == sorted(order)
    assert found[0].code == "cookie_before_choice"


@pytest.mark.parametrize("code", FINDING_CODES)
def test_every_code_has_a_title(code: str) -> None:
    assert describe(code)  # type: ignore[arg-type]

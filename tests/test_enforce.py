from __future__ import annotations

import logging
from datetime import datetime
from datetime import timezone

import pytest

from consent import Category
from consent import ConsentState
from consent import Cookie
from consent import Policy
from consent import Service
from consent import allows
from consent.enforce import CookieGate
from consent.enforce import Verdict
from consent.enforce import set_cookie_name

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
CONSENT_COOKIES = ("consent", "consent_csrf")


def cookie(name: str = "", **fields: str) -> Cookie:
    values = {"provider": "A provider", "purpose": "A purpose", "duration": "1 year"}
    values.update(fields)
    return Cookie(name=name, **values)  # type: ignore[arg-type]


GA = cookie("_ga", domain=".example.com", path="/")
GA_FAMILY = cookie(pattern=r"_ga_[A-Z0-9]+", domain=".example.com")
APP = cookie("_hz_app", domain=".example.com", path="/app")
SESSION = cookie("session_id")
MAP = cookie("wl_map_pref", party="third")
VIDEO = cookie("yt_pref", party="third")

POLICY = Policy(
    categories=(
        Category("necessary", "Strictly necessary", required=True, cookies=(SESSION,)),
        Category(
            "analytics",
            "Analytics",
            cookies=(GA, GA_FAMILY, APP, cookie("_hz_analytics")),
        ),
        Category(
            "media",
            "Embedded media",
            services=(
                Service("westlake_map", "West Lake map", cookies=(MAP,)),
                Service("video", "Video", cookies=(VIDEO,)),
            ),
        ),
    )
)


def granting(*keys: str) -> ConsentState:
    return ConsentState(
        granted=frozenset(keys),
        given_at=NOW,
        revision=POLICY.revision,
        consent_id="AAAAAAAAAAAAAAAAAAAAAA",
    )


def allows_for(state: ConsentState | None):
    return lambda key: allows(state, POLICY, key, NOW)


def gate(**options) -> CookieGate:
    options.setdefault("always_allowed", CONSENT_COOKIES)
    return CookieGate(POLICY, **options)


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("_ga=GA1.2.3; Path=/; Domain=.example.com", "_ga"),
        ("_ga=GA1.2.3", "_ga"),
        (" spaced = value ; HttpOnly", "spaced"),
        ("a=b=c; Path=/", "a"),
        ("empty=; Max-Age=0", "empty"),
        ("flag; Secure", "flag"),
        ("=nameless; Path=/", ""),
    ],
)
def test_set_cookie_name(header: str, name: str) -> None:
    assert set_cookie_name(header) == name


def test_exact_names_follow_their_category() -> None:
    g = gate()
    refused = g.verdict("_hz_analytics", allows_for(None))
    assert refused == Verdict("_hz_analytics", False, "analytics")
    allowed = g.verdict("_hz_analytics", allows_for(granting("analytics")))
    assert allowed == Verdict("_hz_analytics", True, "analytics")


@pytest.mark.parametrize("name", ["_ga_ABC123", "_ga_Z"])
def test_patterns_match_whole_names(name: str) -> None:
    g = gate(undeclared="block")
    assert g.verdict(name, allows_for(granting("analytics"))).allowed
    assert g.verdict(name, allows_for(None)) == Verdict(name, False, "analytics")


@pytest.mark.parametrize("name", ["_ga_abc", "x_ga_ABC", "_ga_ABC;"])
def test_pattern_does_not_match_part_of_a_name(name: str) -> None:
    g = gate(undeclared="block")
    assert g.key_of(name) is None
    assert g.verdict(name, allows_for(granting("analytics"))) == Verdict(
        name, False, None
    )


def test_service_cookies_follow_the_service_not_the_category() -> None:
    g = gate()
    assert g.key_of("wl_map_pref") == "westlake_map"
    assert g.key_of("yt_pref") == "video"
    only_map = allows_for(granting("media", "westlake_map"))
    assert g.verdict("wl_map_pref", only_map) == Verdict(
        "wl_map_pref", True, "westlake_map"
    )
    assert g.verdict("yt_pref", only_map) == Verdict("yt_pref", False, "video")


def test_required_category_cookies_are_always_allowed() -> None:
    g = gate(undeclared="block")
    assert g.verdict("session_id", allows_for(None)) == Verdict(
        "session_id", True, "necessary"
    )
    assert g.verdict("session_id", allows_for(granting())).allowed


@pytest.mark.parametrize("name", CONSENT_COOKIES)
def test_consent_cookies_are_always_allowed(name: str) -> None:
    g = gate(undeclared="block")
    assert g.verdict(name, lambda key: False) == Verdict(name, True, None)


def test_undeclared_allow_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    g = gate(undeclared="allow")
    with caplog.at_level(logging.DEBUG, logger="consent.enforce"):
        assert g.verdict("mystery", allows_for(None)) == Verdict("mystery", True, None)
    assert caplog.records == []


def test_undeclared_warn_logs_once_per_name(caplog: pytest.LogCaptureFixture) -> None:
    g = gate(undeclared="warn")
    with caplog.at_level(logging.WARNING, logger="consent.enforce"):
        for _ in range(3):
            assert g.verdict("mystery", allows_for(None)).allowed
            assert g.verdict("other_one", allows_for(None)).allowed
        kept, removed = g.filter(["mystery=1", "mystery=2; Path=/"], allows_for(None))
    assert kept == ["mystery=1", "mystery=2; Path=/"]
    assert removed == []
    records = [r for r in caplog.records if r.name == "consent.enforce"]
    assert len(records) == 2
    assert all(r.levelno == logging.WARNING for r in records)
    first, second = (r.getMessage() for r in records)
    assert "'mystery'" in first
    assert "Cookie(name='mystery'" in first
    assert "CONSENT_UNDECLARED" in first
    assert "'other_one'" in second


def test_undeclared_warn_is_per_gate(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="consent.enforce"):
        gate().verdict("mystery", allows_for(None))
        gate().verdict("mystery", allows_for(None))
    assert len(caplog.records) == 2


def test_undeclared_block(caplog: pytest.LogCaptureFixture) -> None:
    g = gate(undeclared="block")
    with caplog.at_level(logging.DEBUG, logger="consent.enforce"):
        verdict = g.verdict("mystery", allows_for(granting(*POLICY.choice_keys)))
    assert verdict == Verdict("mystery", False, None)
    assert caplog.records == []


def test_default_is_warn() -> None:
    assert CookieGate(POLICY).undeclared == "warn"


def test_filter_keeps_order_and_reports_refusals() -> None:
    g = gate(undeclared="block")
    headers = [
        "consent=abc; HttpOnly; Path=/",
        "_hz_analytics=1; Path=/",
        "session_id=s; HttpOnly",
        "wl_map_pref=v; Secure; SameSite=None",
        "_ga_XYZ=1; Domain=.example.com",
        "yt_pref=1",
        "mystery=1",
        "consent_csrf=n; HttpOnly",
    ]
    kept, removed = g.filter(headers, allows_for(granting("media", "westlake_map")))
    assert kept == [
        "consent=abc; HttpOnly; Path=/",
        "session_id=s; HttpOnly",
        "wl_map_pref=v; Secure; SameSite=None",
        "consent_csrf=n; HttpOnly",
    ]
    assert removed == [
        Verdict("_hz_analytics", False, "analytics"),
        Verdict("_ga_XYZ", False, "analytics"),
        Verdict("yt_pref", False, "video"),
        Verdict("mystery", False, None),
    ]


def test_filter_with_everything_allowed_keeps_everything() -> None:
    headers = ["_ga=1", "_ga_A1=2", "yt_pref=3", "consent=4"]
    kept, removed = gate().filter(headers, allows_for(granting(*POLICY.choice_keys)))
    assert kept == headers
    assert removed == []


def test_to_expire_returns_declarations_with_domain_and_path() -> None:
    sent = [
        "consent",
        "consent_csrf",
        "session_id",
        "_ga",
        "_ga_ABC",
        "_hz_app",
        "wl_map_pref",
        "yt_pref",
        "mystery",
    ]
    expire = gate().to_expire(sent, allows_for(granting("media", "westlake_map")))
    assert expire == [
        ("_ga", GA),
        ("_ga_ABC", GA_FAMILY),
        ("_hz_app", APP),
        ("yt_pref", VIDEO),
    ]
    by_name = dict(expire)
    assert (by_name["_ga"].domain, by_name["_ga"].path) == (".example.com", "/")
    assert (by_name["_ga_ABC"].domain, by_name["_ga_ABC"].path) == (
        ".example.com",
        "/",
    )
    assert (by_name["_hz_app"].domain, by_name["_hz_app"].path) == (
        ".example.com",
        "/app",
    )
    assert by_name["yt_pref"].domain is None


def test_to_expire_nothing_when_everything_is_allowed() -> None:
    sent = ["_ga", "_ga_ABC", "_hz_app", "wl_map_pref", "yt_pref"]
    assert gate().to_expire(sent, allows_for(granting(*POLICY.choice_keys))) == []


def test_to_expire_never_touches_undeclared_or_consent_cookies() -> None:
    g = gate(undeclared="block", always_allowed=CONSENT_COOKIES)
    assert g.to_expire(["mystery", *CONSENT_COOKIES], lambda key: False) == []


def test_classification_stays_right_after_many_visitor_names() -> None:
    g = gate(undeclared="allow")
    for i in range(5000):
        assert g.key_of(f"visitor_cookie_{i}") is None
    assert g.key_of("_ga_Q1") == "analytics"
    assert g.key_of("wl_map_pref") == "westlake_map"

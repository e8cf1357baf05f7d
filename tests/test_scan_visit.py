"""The pure helpers of one visit: Set-Cookie names, errors, deadlines."""

from __future__ import annotations

from datetime import datetime
from datetime import timezone

import pytest
from playwright.sync_api import Error
from playwright.sync_api import TimeoutError

from consent.scan.errors import ScanError
from consent.scan.visit import Deadline
from consent.scan.visit import describe_error
from consent.scan.visit import stored_cookie_name

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("sid=abc; Path=/; HttpOnly", "sid"),
        ("a=; Max-Age=3600", "a"),
        ("a=1; Max-Age=0", None),
        ("a=1; max-age=-1", None),
        ("a=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT", None),
        ("a=1; Expires=Fri, 01 Jan 2027 00:00:00 GMT", "a"),
        # Max-Age wins over Expires.
        ("a=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=60", "a"),
        ("a=1; Expires=not a date", "a"),
        ("=novalue", None),
        ("no-equals-sign", None),
    ],
)
def test_stored_cookie_name(header: str, name: str | None) -> None:
    assert stored_cookie_name(header, NOW) == name


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            Error("page.goto: net::ERR_CONNECTION_REFUSED at http://x/"),
            "Could not load http://x/: nothing is listening there (connection"
            " refused).",
        ),
        (
            Error("page.goto: net::ERR_NAME_NOT_RESOLVED at http://x/"),
            "Could not load http://x/: its host name does not resolve.",
        ),
        (
            TimeoutError("page.goto: Timeout 3000ms exceeded."),
            "Could not load http://x/: no answer within 3 s.",
        ),
        (Error("Something\nelse"), "Could not load http://x/: Something"),
    ],
)
def test_describe_error(error: Exception, expected: str) -> None:
    assert describe_error(error, "http://x/", 3) == expected


def test_deadline_cuts_steps_to_what_is_left() -> None:
    deadline = Deadline(total=2, page=30)
    assert 0 < deadline.step() <= 2
    assert deadline.step(0.5) == 0.5


def test_deadline_spent() -> None:
    deadline = Deadline(total=0.001, page=30)
    while deadline.remaining > 0:
        pass
    with pytest.raises(ScanError, match="total timeout of 0.001 s"):
        deadline.step()

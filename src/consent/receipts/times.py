"""Times in receipts: aware UTC datetimes, read from operators and shown back."""

from __future__ import annotations

from datetime import datetime
from datetime import timezone


def require_aware(name: str, value: datetime) -> datetime:
    """Return ``value`` in UTC; refuse a naive datetime.

    A naive time has no place on a time line: read as local time on one
    server and as UTC on another, it would move receipts by hours.

    :param name: The argument's name, for the message.
    :param value: The datetime to check.
    :raises ValueError: when ``value`` has no time zone.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{name} must be a timezone-aware datetime, such as"
            " datetime.now(timezone.utc)."
        )
    return value.astimezone(timezone.utc)


def parse_utc(value: str) -> datetime:
    """Read ``YYYY-MM-DD`` or an ISO 8601 datetime as an aware UTC datetime.

    A date means its midnight; a time without an offset is taken as UTC.

    :param value: What an operator typed, or a query argument.
    :raises ValueError: when ``value`` is neither.
    """
    text = value.strip()
    if text.endswith(("Z", "z")):
        # Python 3.10's fromisoformat reads no "Z", and no version reads "z".
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def format_time(value: datetime) -> str:
    """A receipt time as operators read it: ``2025-03-01 12:00:05 UTC``."""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")

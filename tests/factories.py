"""Values several test modules build alike: policies and receipts."""

from __future__ import annotations

import dataclasses
import typing as t
import uuid
from datetime import datetime
from datetime import timedelta
from datetime import timezone

from consent import Category
from consent import Cookie
from consent import Policy
from consent import Service
from consent.receipts import Receipt

#: The time the numbered receipts of :func:`receipt_n` count from.
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


def cookie(name: str) -> Cookie:
    """A declared cookie whose texts do not matter to the test."""
    return Cookie(name=name, provider="A provider", purpose="A purpose", duration="1 y")


def gpc_policy(mode: str = "opt-in", *, sale: bool = True) -> Policy:
    """Necessary, analytics (UK statistics exemption), marketing (sold or
    shared unless ``sale`` is False) and media with a map and a video service
    (the video sold or shared likewise)."""
    return Policy(
        categories=(
            Category("necessary", "Strictly necessary", required=True),
            Category(
                "analytics",
                "Analytics",
                cookies=(cookie("_hz_analytics"),),
                exemption="statistics",
            ),
            Category(
                "marketing",
                "Marketing",
                cookies=(cookie("_ads"),),
                sale_or_sharing=sale,
            ),
            Category(
                "media",
                "Embedded media",
                services=(
                    Service("westlake_map", "West Lake map"),
                    Service("video", "Lake videos", sale_or_sharing=sale),
                ),
            ),
        ),
        mode=mode,  # type: ignore[arg-type]
    )


def receipt(
    at: datetime,
    *,
    consent_id: str | None = None,
    choices: dict[str, bool] | None = None,
    method: str = "banner",
    user_agent: str = "Mozilla/5.0",
    path: str = "/",
    ip: str | None = None,
) -> Receipt:
    """A receipt of the demo's categories made at ``at``."""
    return Receipt(
        receipt_id=uuid.uuid4().hex,
        consent_id=consent_id or uuid.uuid4().hex,
        created_at=at,
        revision="r1",
        texts_hash="ab" * 32,
        choices=tuple(
            (
                choices or {"analytics": True, "media": False, "westlake_map": False}
            ).items()
        ),
        method=t.cast(t.Any, method),
        language="de",
        path=path,
        user_agent=user_agent,
        ip=ip,
    )


def receipt_n(
    n: int = 0,
    *,
    consent_id: str = "visitor-1",
    at: datetime | None = None,
    choices: dict[str, bool] | None = None,
    method: str = "banner",
    ip: str | None = "203.0.113.0/24",
    texts_hash: str = "ab" * 32,
) -> Receipt:
    """Receipt number ``n`` of one visitor: made ``n`` minutes after
    :data:`T0`, granting analytics on even numbers and maps always."""
    made = receipt(
        T0 + timedelta(minutes=n) if at is None else at,
        consent_id=consent_id,
        choices=choices or {"analytics": n % 2 == 0, "maps": True},
        method=method,
        path="/visit",
        ip=ip,
    )
    return dataclasses.replace(made, texts_hash=texts_hash)

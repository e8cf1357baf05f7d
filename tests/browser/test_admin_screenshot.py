"""The receipts dashboard in a real browser, and its picture in the docs.

The picture goes to a temporary folder, so that a test run changes no
tracked file; with UPDATE_SCREENSHOTS=1 it replaces the one in the docs.
"""

from __future__ import annotations

import base64
import os
import random
import uuid
from datetime import datetime
from datetime import time
from datetime import timedelta
from datetime import timezone
from pathlib import Path

from flask import Flask
from playwright.sync_api import BrowserContext

from consent import Policy
from consent.flask import Consent
from consent.receipts import Receipt
from tests.browser.conftest import serve

SCREENSHOT = (
    Path(__file__).resolve().parents[2]
    / "docs"
    / "_static"
    / "screenshots"
    / "dashboard.png"
)
DAYS = 14
METHODS = ["banner"] * 40 + ["preferences"] * 6 + ["gpc", "api", "embed"]
LANGUAGES = ["en"] * 5 + ["de"] * 3 + ["fr"] * 2 + ["zh-Hans", "nl"]


def _receipts(now: datetime) -> list[Receipt]:
    """About two weeks of choices on a small site, the same on every run."""
    rng = random.Random(14)
    receipts = []
    for back in range(DAYS - 1, -1, -1):
        day = (now - timedelta(days=back)).date()
        start = datetime.combine(day, time(6), tzinfo=timezone.utc)
        # Weekdays are busier; the opt-in rate drifts up after a banner fix.
        visits = rng.randint(50, 80) if day.weekday() < 5 else rng.randint(25, 45)
        lean = 0.48 + 0.015 * (DAYS - back)
        for _ in range(visits):
            at = start + timedelta(seconds=rng.randint(0, 16 * 3600))
            if at > now:
                at = now - timedelta(seconds=rng.randint(1, 3600))
            accept_all = rng.random() < lean
            analytics = accept_all or rng.random() < 0.2
            media = accept_all or rng.random() < 0.3
            receipts.append(
                Receipt(
                    receipt_id=uuid.UUID(int=rng.getrandbits(128)).hex,
                    consent_id=base64.urlsafe_b64encode(rng.randbytes(16))
                    .decode()
                    .rstrip("="),
                    created_at=at,
                    revision="sHYQMRTc",
                    texts_hash="5e" * 32,
                    choices=(
                        ("analytics", analytics),
                        ("media", media),
                        ("westlake_map", media and rng.random() < 0.9),
                    ),
                    method=rng.choice(METHODS),
                    language=rng.choice(LANGUAGES),
                    path="/",
                    user_agent="Mozilla/5.0",
                    ip="203.0.113.0/24",
                )
            )
    return receipts


def test_dashboard_in_chromium(
    policy: Policy, context: BrowserContext, tmp_path: Path
) -> None:
    is_update = os.environ.get("UPDATE_SCREENSHOTS") == "1"
    screenshot = SCREENSHOT if is_update else tmp_path / "dashboard.png"
    app = Flask("test", instance_path=str(tmp_path))
    app.config.update(
        SECRET_KEY="browser-test-secret-key-0123456789abcdef",
        CONSENT_RECEIPTS_URL="sqlite",
        CONSENT_ADMIN_ACCESS=lambda: True,
    )
    Consent(app, policy)
    keeper = app.extensions["consent"].site(app).receipts
    keeper.store().add_many(_receipts(datetime.now(timezone.utc)))
    site = serve(app)
    try:
        page = context.new_page()
        response = page.goto(f"{site.url}/consent/admin/?days={DAYS}")
        assert response is not None and response.status == 200
        chart = page.locator('svg[data-consent-key="analytics"]')
        chart.scroll_into_view_if_needed()
        assert chart.is_visible()
        box = chart.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 80
        assert chart.locator("rect.consent-admin-bar").count() == DAYS
        assert page.get_by_role("img", name="Opt-in rate of Analytics per day").count()
        assert page.locator(".consent-admin-receipts tbody tr").count() == 50
        # The stylesheets applied: a coloured header, not bare HTML.
        header = page.locator(".consent-admin-header")
        colour = header.evaluate("e => getComputedStyle(e).backgroundColor")
        assert colour not in ("rgba(0, 0, 0, 0)", "rgb(255, 255, 255)")
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=True)
        assert screenshot.stat().st_size > 20_000
    finally:
        site.stop()
        keeper.close()

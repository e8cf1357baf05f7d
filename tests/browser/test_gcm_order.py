"""Google Consent Mode in a real browser: what reaches ``dataLayer``, in order."""

from __future__ import annotations

import typing as t

from playwright.sync_api import BrowserContext
from playwright.sync_api import Page

CONSENT_TYPES = {
    "ad_storage",
    "ad_user_data",
    "ad_personalization",
    "analytics_storage",
    "functionality_storage",
    "personalization_storage",
    "security_storage",
}
OPTIONAL_TYPES = CONSENT_TYPES - {"security_storage"}

# gtag pushes its ``arguments`` object, not an array.
READ_DATA_LAYER = "() => (window.dataLayer || []).map((entry) => Array.from(entry))"


def data_layer(page: Page) -> list[list[t.Any]]:
    entries: list[list[t.Any]] = page.evaluate(READ_DATA_LAYER)
    return entries


def assert_default_first(entries: list[list[t.Any]]) -> None:
    assert entries, "dataLayer is empty"
    command, kind, values = entries[0]
    assert (command, kind) == ("consent", "default")
    assert set(values) == CONSENT_TYPES | {"wait_for_update"}
    assert values["wait_for_update"] == 500
    assert {values[name] for name in OPTIONAL_TYPES} == {"denied"}
    assert values["security_storage"] == "granted"
    assert all(entry[:2] != ["consent", "default"] for entry in entries[1:])


def open_demo(context: BrowserContext, demo: str) -> Page:
    page = context.new_page()
    page.goto(demo + "/")
    page.wait_for_load_state("load")
    return page


def test_default_comes_first_and_alone_before_a_choice(
    demo: str, context: BrowserContext
) -> None:
    page = open_demo(context, demo)
    entries = data_layer(page)
    assert_default_first(entries)
    assert len(entries) == 1
    assert "analytics_storage denied" in page.locator("[data-gcm-status]").inner_text()


def choose_in_page(page: Page, button: str) -> dict[str, t.Any]:
    """Click a banner button; consent.js records the choice without a reload
    and gcm.js pushes the update. Returns that update."""
    page.evaluate("() => { window.consentTestMarker = 'same page'; }")
    page.get_by_role("button", name=button).click()
    page.wait_for_function("() => window.dataLayer.length >= 2", timeout=5000)
    assert page.evaluate("() => window.consentTestMarker") == "same page"
    assert page.locator("#cookie-consent").count() == 0
    entries = data_layer(page)
    assert_default_first(entries)
    assert len(entries) == 2
    command, kind, update = entries[1]
    assert (command, kind) == ("consent", "update")
    assert set(update) == CONSENT_TYPES
    return t.cast(dict[str, t.Any], update)


def update_after_reload(page: Page) -> dict[str, t.Any]:
    page.reload()
    page.wait_for_load_state("load")
    entries = data_layer(page)
    assert_default_first(entries)
    assert len(entries) == 2
    command, kind, update = entries[1]
    assert (command, kind) == ("consent", "update")
    assert set(update) == CONSENT_TYPES
    return t.cast(dict[str, t.Any], update)


def test_accept_all_updates_in_page_and_on_the_next_page(
    demo: str, context: BrowserContext
) -> None:
    page = open_demo(context, demo)
    update = choose_in_page(page, "Accept all")
    assert update["analytics_storage"] == "granted"
    assert update["security_storage"] == "granted"
    # The demo has no advertising category.
    assert update["ad_storage"] == "denied"
    page.wait_for_function(
        "() => document.querySelector('[data-gcm-status]')"
        ".textContent.includes('analytics_storage granted')",
        timeout=5000,
    )
    update = update_after_reload(page)
    assert update["analytics_storage"] == "granted"
    assert update["security_storage"] == "granted"
    assert "analytics_storage granted" in (
        page.locator("[data-gcm-status]").inner_text()
    )


def test_reject_all_denies_everything_optional(
    demo: str, context: BrowserContext
) -> None:
    page = open_demo(context, demo)
    for update in (choose_in_page(page, "Reject all"), update_after_reload(page)):
        assert {update[name] for name in OPTIONAL_TYPES} == {"denied"}
        assert update["security_storage"] == "granted"

"""Finding a consent banner's "Accept all" and "Reject all" buttons.

This library's banner is found by its own attributes
(``#cookie-consent button[name=action][value=reject_all]``). Any other
banner is found by the buttons' accessible names: the labels of every
catalogue this library ships, plus a few common English variants, matched
whole and without regard to case. A banner inside an iframe (some consent
platforms) is not looked for.
"""

from __future__ import annotations

import functools
import re
import typing as t

from ..i18n import available_languages
from ..i18n import load_catalog
from .records import BannerRecord

if t.TYPE_CHECKING:
    from playwright.sync_api import Locator
    from playwright.sync_api import Page

#: Which button: "Accept all" or "Reject all".
Action = t.Literal["accept", "reject"]

#: The element id of this library's banner.
BANNER_ID = "cookie-consent"

#: Wording other banners commonly use, beside the catalogues' labels.
EXTRA_LABELS: dict[Action, tuple[str, ...]] = {
    "accept": ("Accept all cookies", "Allow all", "Allow all cookies"),
    "reject": (
        "Reject all cookies",
        "Decline all",
        "Deny all",
        "Refuse all",
        "Only necessary cookies",
        "Necessary cookies only",
        "Use necessary cookies only",
    ),
}

#: Buttons looked at per action: enough for a banner, bounded on odd pages.
_MAX_CANDIDATES = 5


@functools.cache
def button_labels(action: Action) -> tuple[str, ...]:
    """Every label of the ``action`` button: each catalogue's, then the extras.

    :param action: ``"accept"`` or ``"reject"``.
    """
    labels: dict[str, None] = {}
    for language in available_languages():
        label = load_catalog(language).get(f"button.{action}_all")
        if label and label.strip():
            labels[label.strip()] = None
    for label in EXTRA_LABELS[action]:
        labels[label] = None
    return tuple(labels)


@functools.cache
def label_pattern(action: Action) -> re.Pattern[str]:
    """A regular expression matching a whole accessible name of ``action``."""
    choices = "|".join(re.escape(label) for label in button_labels(action))
    return re.compile(rf"^\s*(?:{choices})\s*$", re.IGNORECASE)


def find_button(page: Page, action: Action) -> Locator | None:
    """The visible ``action`` button of the page's banner, if there is one.

    :param page: A loaded page.
    :param action: ``"accept"`` or ``"reject"``.
    """
    ours = page.locator(f"#{BANNER_ID} button[name=action][value={action}_all]").first
    if ours.count() and ours.is_visible():
        return ours
    named = page.get_by_role("button", name=label_pattern(action))
    for index in range(min(named.count(), _MAX_CANDIDATES)):
        candidate = named.nth(index)
        if candidate.is_visible():
            return candidate
    return None


def read_banner(page: Page) -> BannerRecord:
    """What the page shows of a banner, before anything is clicked.

    :param page: A freshly loaded page.
    """
    accept = find_button(page, "accept")
    reject = find_button(page, "reject")
    ours = page.locator(f"#{BANNER_ID}").first
    return BannerRecord(
        shown=accept is not None or reject is not None,
        ours=bool(ours.count()) and ours.is_visible(),
        has_accept=accept is not None,
        has_reject=reject is not None,
    )

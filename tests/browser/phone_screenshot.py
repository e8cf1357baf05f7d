"""The docs' phone screenshot: the bar on a 360 × 640 phone, light theme, in
the language whose first layer is the longest.

Run from the repository root::

    .venv/bin/python -m tests.browser.phone_screenshot [FOLDER]

It serves the browser tests' site on 127.0.0.1, measures the first layer of
every shipped catalogue at 360 × 640 and prints the longest ones, then saves
``bar-light-phone.png`` in ``FOLDER`` (``docs/_static/screenshots`` by
default). The test suite calls it with a temporary folder, so a test run
never changes the docs.
"""

from __future__ import annotations

import collections.abc as cabc
import logging
import sys
import tempfile
import typing as t
from pathlib import Path

from playwright.sync_api import Browser
from playwright.sync_api import ViewportSize
from playwright.sync_api import sync_playwright

from consent.i18n import available_languages
from tests.browser.conftest import CHROMIUM
from tests.browser.conftest import CHROMIUM_ARGS
from tests.browser.conftest import make_site
from tests.browser.conftest import serve

DOCS = Path(__file__).resolve().parents[2] / "docs" / "_static" / "screenshots"
NAME = "bar-light-phone.png"
VIEWPORT: ViewportSize = {"width": 360, "height": 640}

#: The banner's height if nothing scrolled (its text's full height plus the
#: buttons'), and the width of the three labels each on one line.
LENGTH = """() => {
  const banner = document.getElementById("cookie-consent");
  const text = banner.querySelector(".consent-text");
  const actions = banner.querySelector(".consent-actions");
  let labels = 0;
  for (const button of actions.querySelectorAll(".consent-button")) {
    const range = document.createRange();
    range.selectNodeContents(button);
    for (const line of range.getClientRects()) labels += line.width;
  }
  return {height: text.scrollHeight + actions.offsetHeight, labels};
}"""


class Length(t.NamedTuple):
    """How long a language's first layer is at :data:`VIEWPORT`."""

    height: float
    labels: float
    language: str


def rank(
    browser: Browser, url: str, languages: cabc.Iterable[str] | None = None
) -> list[Length]:
    """The first layer of each of ``languages`` (every shipped one by
    default), the longest first: the tallest banner, then the widest labels."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        lengths = []
        for language in languages or available_languages():
            page.set_extra_http_headers({"Accept-Language": language})
            page.goto(url, wait_until="domcontentloaded")
            found = page.evaluate(LENGTH)
            lengths.append(Length(found["height"], found["labels"], language))
    finally:
        context.close()
    return sorted(lengths, reverse=True)


def shoot(browser: Browser, url: str, language: str, path: Path) -> None:
    """Save the bar in ``language`` as a phone shows it, at twice the pixels."""
    context = browser.new_context(
        viewport=VIEWPORT,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        extra_http_headers={"Accept-Language": language},
    )
    try:
        page = context.new_page()
        page.goto(url)
        page.screenshot(path=str(path))
    finally:
        context.close()


def main(folder: Path = DOCS) -> Length:
    """Measure, print the five longest first layers, shoot the longest."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as instance, sync_playwright() as pw:
        server = serve(make_site(instance, CONSENT_THEME="light"))
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            url = server.url + "/"
            ranking = rank(browser, url)
            for length in ranking[:5]:
                print(
                    f"{length.language}: banner {length.height:.0f} px tall,"
                    f" labels {length.labels:.0f} px wide"
                )
            shoot(browser, url, ranking[0].language, folder / NAME)
        finally:
            browser.close()
            server.stop()
    print(f"{folder / NAME}: {ranking[0].language}")
    return ranking[0]


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DOCS)

"""The first layer on phone-sized screens, in every shipped language.

For every catalogue in ``consent/translations/`` and every layout, one page
load (the language chosen by ``Accept-Language``, as a browser sends it),
then the viewport is resized to each size of :data:`SIZES` and measured:

- **No word is broken inside a button.** The button's text is split into
  words by ``Intl.Segmenter`` (ICU's word boundaries for the banner's
  language: spaces, and dictionaries for Thai, Chinese and Japanese), and
  for each word a ``Range`` over exactly its characters gives one client
  rectangle per line box the word lies in (``Range.getClientRects()``). A
  word is broken when two of its rectangles do not share a line, that is
  when one starts below the bottom of another. This is exact: it asks the
  layout where the glyphs are instead of guessing from widths. A label
  wider than its button (``scrollWidth > clientWidth``) is reported too,
  since an unbroken word may still overflow.
- **Accept all and Reject all are the same size**: width and height equal
  within 1/16 px. Chromium lays boxes out in units of 1/64 px, and a row
  whose width does not split evenly gives one share a unit more; anything
  larger is a real difference.
- **Every first-layer button is on screen without scrolling**: the page and
  the banner are at their initial scroll position, each button's box lies
  inside ``innerWidth`` × ``innerHeight``, and hit testing at the middle of
  each of its edges finds the button itself, so it is neither clipped by a
  scrolling part of the banner nor covered.
- **No horizontal scrolling**: ``scrollWidth <= clientWidth`` of the root.

Every failure is collected and reported with the language, layout, size
and what broke. :data:`BROKEN` shows that each check fails on a banner
broken on purpose, and the last test runs the script behind the docs' phone
screenshot (``python -m tests.browser.phone_screenshot``) into a temporary
folder.
"""

from __future__ import annotations

import collections.abc as cabc
import struct
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from consent.i18n import available_languages
from tests.browser import phone_screenshot

LAYOUTS = ["bar", "box", "center", "inline"]

#: Phones small and large (portrait), and a tablet.
SIZES = [(320, 568), (360, 640), (375, 667), (390, 844), (414, 736), (768, 844)]

#: Measures the first layer in the current viewport; returns what broke.
MEASURE = """() => {
  const problems = [];
  const banner = document.getElementById("cookie-consent");
  const root = document.documentElement;
  const width = innerWidth, height = innerHeight;
  if (root.scrollWidth > root.clientWidth)
    problems.push(`horizontal scroll: ${root.scrollWidth} > ${root.clientWidth}`);
  if (scrollX || scrollY || banner.scrollTop || banner.scrollLeft)
    problems.push("the page or the banner is scrolled");
  const words = new Intl.Segmenter(banner.lang, {granularity: "word"});
  const buttons = [...banner.querySelectorAll(".consent-actions .consent-button")];
  const boxes = buttons.map((b) => b.getBoundingClientRect());
  buttons.forEach((button, i) => {
    const name = JSON.stringify(button.textContent.trim());
    const r = boxes[i];
    if (r.left < 0 || r.top < 0 || r.right > width || r.bottom > height)
      problems.push(`${name} is off screen: ` +
        `${r.left},${r.top} to ${r.right},${r.bottom} in ${width}x${height}`);
    const edges = [[(r.left + r.right) / 2, r.top + 1],
                   [(r.left + r.right) / 2, r.bottom - 1],
                   [r.left + 1, (r.top + r.bottom) / 2],
                   [r.right - 1, (r.top + r.bottom) / 2]];
    for (const [x, y] of edges) {
      const hit = document.elementFromPoint(x, y);
      if (!hit || !button.contains(hit)) {
        problems.push(`${name} is hidden at ${x},${y}` +
          ` by ${hit ? hit.outerHTML.slice(0, 60) : "nothing"}`);
        break;
      }
    }
    if (button.scrollWidth > button.clientWidth)
      problems.push(`${name} overflows its button: ` +
        `${button.scrollWidth} > ${button.clientWidth}`);
    const walker = document.createTreeWalker(button, NodeFilter.SHOW_TEXT);
    for (let node; (node = walker.nextNode()); ) {
      for (const s of words.segment(node.data)) {
        if (!s.isWordLike) continue;
        const range = document.createRange();
        range.setStart(node, s.index);
        range.setEnd(node, s.index + s.segment.length);
        const rects = [...range.getClientRects()].filter((q) => q.width > 0);
        const split = rects.some((a) => rects.some((b) => b.top >= a.bottom));
        if (split) problems.push(`${name} breaks inside ${JSON.stringify(s.segment)}`);
      }
    }
  });
  const box = (action) =>
    banner.querySelector(`.consent-button[value=${action}]`).getBoundingClientRect();
  const accept = box("accept_all"), reject = box("reject_all");
  if (Math.abs(accept.width - reject.width) > 1 / 16 ||
      Math.abs(accept.height - reject.height) > 1 / 16)
    problems.push(`Accept all is ${accept.width}x${accept.height},` +
      ` Reject all ${reject.width}x${reject.height}`);
  return {problems, buttons: buttons.length, width, height, lang: banner.lang};
}"""


@pytest.mark.parametrize("layout", LAYOUTS)
def test_first_layer_fits_a_phone_in_every_language(
    site: cabc.Callable[..., str], browser: Browser, layout: str
) -> None:
    url = site(CONSENT_LAYOUT=layout) + "/"
    languages = available_languages()
    assert len(languages) >= 44
    first = {"width": SIZES[0][0], "height": SIZES[0][1]}
    context = browser.new_context(viewport=first)
    problems: list[str] = []
    try:
        page = context.new_page()
        for language in languages:
            page.set_extra_http_headers({"Accept-Language": language})
            page.set_viewport_size(first)
            page.goto(url, wait_until="domcontentloaded")
            for width, height in SIZES:
                page.set_viewport_size({"width": width, "height": height})
                found = page.evaluate(MEASURE)
                where = f"{language}, {layout}, {width}x{height}"
                # The extension negotiated the language asked for, and the
                # banner was measured at this size, with all its buttons.
                assert found["lang"] == language, where
                assert (found["width"], found["height"]) == (width, height), where
                assert found["buttons"] == 3, where
                problems.extend(f"{where}: {p}" for p in found["problems"])
    finally:
        context.close()
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)


#: Banners broken on purpose, and what the measurement must say about them
#: in German at 320 x 568.
BROKEN = [
    (
        ".consent-button { flex: 1 1 0; min-width: 0; overflow-wrap: anywhere }",
        '"Alle akzeptieren" breaks inside "akzeptieren"',
    ),
    (
        ".consent-button[value=reject_all] { padding-block: 1rem }",
        "Accept all is 280x44, Reject all 280x",
    ),
    (".consent-banner { display: block }", '"Anpassen" is off screen'),
    (
        "main::after { content: ''; position: fixed; inset: 0; z-index: 2147483647 }",
        '"Alle akzeptieren" is hidden',
    ),
    ("main { min-width: 400px }", "horizontal scroll: 400 > 320"),
]


@pytest.mark.parametrize(("css", "expected"), BROKEN)
def test_the_checks_catch_a_broken_banner(
    site: cabc.Callable[..., str], browser: Browser, css: str, expected: str
) -> None:
    context = browser.new_context(
        viewport={"width": 320, "height": 568},
        extra_http_headers={"Accept-Language": "de"},
    )
    try:
        page = context.new_page()
        page.goto(site() + "/")
        assert page.evaluate(MEASURE)["problems"] == []
        page.add_style_tag(content=css)
        problems = page.evaluate(MEASURE)["problems"]
        assert any(expected in problem for problem in problems), problems
    finally:
        context.close()


def test_docs_phone_screenshot(
    site: cabc.Callable[..., str], browser: Browser, tmp_path: Path
) -> None:
    """The script behind the docs' phone screenshot works; here it writes to
    a temporary folder, never to the docs."""
    url = site(CONSENT_THEME="light") + "/"
    ranking = phone_screenshot.rank(browser, url, ["en", "bg", "de"])
    assert {length.language for length in ranking} == {"en", "bg", "de"}
    # English has the shortest texts of the three, in any font.
    assert ranking[-1].language == "en"
    assert ranking[0].height > ranking[-1].height > 0
    path = tmp_path / phone_screenshot.NAME
    phone_screenshot.shoot(browser, url, ranking[0].language, path)
    png = path.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    # Twice the viewport's pixels, from the IHDR chunk.
    assert struct.unpack(">II", png[16:24]) == (720, 1280)

"""``consent.testing.read_page``: what a page shows of consent. The checks
built on it, over each adapter's test client, are tested on every adapter
in ``tests/conformance/test_compliance_helpers.py``."""

from __future__ import annotations

from consent.testing import BANNER_ID
from consent.testing import read_page

# read_page and friends.


def test_read_page() -> None:
    html = f"""
    <script src="/a.js" data-consent-key="analytics"></script>
    <script type="text/plain" data-consent-key="marketing" data-consent-src="/m.js">
    </script>
    <iframe src="https://x.example/" data-consent-key="video"></iframe>
    <div class="consent-embed" data-consent-embed data-consent-key="westlake_map">
    </div>
    <aside id="{BANNER_ID}"><div><form method="post" action="/consent">
      <input type="hidden" name="csrf_token" value="tok">
      <input type="hidden" name="next" value="/here">
      <input type="checkbox" name="choice" value="analytics">
      <button type="submit" name="action" value="accept_all"> Accept <b>all</b></button>
      <button type="submit" name="action" value="reject_all">Reject all</button>
      <button type="submit" form="other">Customize</button>
    </form></div></aside>
    <form method="post"><input type="hidden" name="outside" value="x">
    <button name="outside" value="1">Outside</button></form>
    """
    page = read_page(html)
    assert page.has_banner
    assert page.form == {"csrf_token": "tok", "next": "/here"}
    assert page.buttons == [
        ("action", "accept_all", "Accept all"),
        ("action", "reject_all", "Reject all"),
    ]
    assert page.live == [("script", "analytics"), ("iframe", "video")]
    assert page.inert == [("script", "marketing"), ("iframe", "westlake_map")]


def test_read_page_without_banner() -> None:
    page = read_page("<html><body><script src='/x.js'></script></body></html>")
    assert not page.has_banner
    assert page.form == {}
    assert page.buttons == []
    assert page.live == [] and page.inert == []

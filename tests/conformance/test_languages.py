"""The banner's language: negotiated, configured, selected by the app."""

from __future__ import annotations

import re

import pytest
from markupsafe import escape

from consent.i18n import Translator
from consent.i18n import available_languages
from tests.conformance.conftest import View


def banner_language(html: str) -> str:
    match = re.search(r'<aside id="cookie-consent"[^>]* lang="([^"]+)"', html)
    assert match is not None, "no banner on the page"
    return match[1]


@pytest.mark.parametrize("language", available_languages())
def test_accept_language_picks_a_shipped_language(adapter, language: str) -> None:
    client = adapter.make_app().client()
    response = client.get("/", headers={"Accept-Language": f"{language}, en;q=0.1"})
    assert banner_language(response.text) == language
    accept = Translator(language)("button.accept_all")
    assert f">{escape(accept)}</button>" in response.text


#: Languages with no shipped catalogue (at least Klingon stays that way).
UNSHIPPED = [tag for tag in ("de", "fr", "tlh") if tag not in available_languages()]


@pytest.mark.parametrize("language", UNSHIPPED)
def test_unshipped_language_falls_back_to_the_default(adapter, language: str) -> None:
    header = f"{language}-XX, {language};q=0.9"
    response = adapter.make_app().client().get("/", headers={"Accept-Language": header})
    assert banner_language(response.text) == "en"
    assert "Accept all" in response.text


@pytest.mark.parametrize("header", [None, "", "*", "en-GB,en;q=0.8"])
def test_default_language_without_a_usable_header(adapter, header: str | None) -> None:
    headers = {} if header is None else {"Accept-Language": header}
    response = adapter.make_app().client().get("/", headers=headers)
    assert banner_language(response.text) == "en"


def _app_with_klingon(adapter, **config):
    return adapter.make_app(
        views={"/": View("<html><body><p>Page</p></body></html>")},
        CONSENT_LANGUAGES=["en", "tlh"],
        CONSENT_TEXTS={"tlh": {"button.accept_all": "HIja'"}},
        **config,
    )


def test_configured_language_with_app_texts(adapter) -> None:
    client = _app_with_klingon(adapter).client()
    html = client.get("/", headers={"Accept-Language": "tlh"}).text
    assert banner_language(html) == "tlh"
    assert "HIja&#39;" in html
    # Texts the app did not translate fall back to English.
    assert "Reject all" in html
    html = client.get("/", headers={"Accept-Language": "en"}).text
    assert banner_language(html) == "en"
    assert "Accept all" in html


def test_language_selector_wins_over_the_header(adapter) -> None:
    app = _app_with_klingon(adapter, CONSENT_LANGUAGE_SELECTOR=lambda *_: "en_US")
    html = app.client().get("/", headers={"Accept-Language": "tlh"}).text
    assert banner_language(html) == "en"


@pytest.mark.parametrize("selected", [None, "", "fr"])
def test_language_selector_without_a_usable_answer(adapter, selected) -> None:
    app = _app_with_klingon(adapter, CONSENT_LANGUAGE_SELECTOR=lambda *_: selected)
    html = app.client().get("/", headers={"Accept-Language": "tlh"}).text
    assert banner_language(html) == "tlh"

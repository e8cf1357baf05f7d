"""Correctness found while trying the library as a user would, on every
adapter: undeclared keys, gated module scripts, receipts that cannot be
kept, the built-in cookies' language, the declaration's cache headers."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from consent import UnknownCategoryError
from consent.i18n import load_catalog
from tests.conformance.conftest import View
from tests.factories import gpc_policy

TYPO = View('<html><body>{{ consent.allows("analytcs") }}</body></html>')


def token_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match is not None, "no consent form"
    return match[1]


def test_an_undeclared_key_raises_at_once_in_testing(adapter) -> None:
    client = adapter.make_app(views={"/": TYPO}, TESTING=True).client()
    with pytest.raises(UnknownCategoryError, match="analytcs"):
        client.get("/")


def test_an_undeclared_key_is_refused_and_logged_in_production(
    adapter, caplog: pytest.LogCaptureFixture
) -> None:
    client = adapter.make_app(views={"/": TYPO}, TESTING=False).client()
    with caplog.at_level(logging.ERROR, logger="consent"):
        response = client.get("/")
    assert response.status_code == 200
    assert "False</body>" in response.text
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "'analytcs'" in errors[0].getMessage()


MODULE = View(
    "<html><body>"
    '{{ consent_script("analytics", "/m.js", type="module") }}'
    "</body></html>"
)


def test_a_module_script_is_inert_until_allowed(adapter) -> None:
    client = adapter.make_app(views={"/": MODULE, "/plain": View("x")}).client()
    before = client.get("/").text
    assert (
        '<script type="text/plain" data-consent-key="analytics"'
        ' data-consent-src="/m.js" data-consent-type="module"></script>'
    ) in before
    client.post(
        "/consent", data={"action": "accept_all", "csrf_token": token_of(before)}
    )
    after = client.get("/").text
    assert '<script src="/m.js" type="module" data-consent-key="analytics">' in after


@pytest.mark.parametrize(
    "call",
    [
        'consent_script("analytics", "/x.js", type="text/plain")',
        'consent_script("analytics", "/x.js", data_consent_key="media")',
        'consent_script("analytics", "/x.js", data_consent_src="/other.js")',
        'consent_script("analytics", "/x.js", nonce="guess")',
    ],
)
def test_reserved_script_attributes_cannot_be_overridden(adapter, call) -> None:
    view = View(f"<html><body>{{{{ {call} }}}}</body></html>")
    client = adapter.make_app(views={"/": view}, TESTING=True).client()
    with pytest.raises(ValueError, match="consent_script"):
        client.get("/")


def _unwritable(tmp_path: Path) -> dict[str, str]:
    # A folder below a regular file cannot be created, not even by root.
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    return {
        "CONSENT_RECEIPTS_URL": f"sqlite:///{blocker}/receipts/receipts.db",
        "CONSENT_RECEIPTS_SPOOL_DIR": str(blocker / "spool"),
    }


def test_a_grant_whose_receipt_cannot_be_kept_is_a_503(
    adapter, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = adapter.make_app(**_unwritable(tmp_path)).client()
    token = token_of(client.get("/").text)
    response = client.post(
        "/consent", data={"action": "accept_all", "csrf_token": token}
    )
    assert response.status_code == 503
    assert "could not be recorded" in response.text
    assert client.get_cookie("consent") is None
    assert "a-file" in caplog.text


def test_a_refusal_takes_effect_without_a_receipt(adapter, tmp_path: Path) -> None:
    client = adapter.make_app(**_unwritable(tmp_path)).client()
    token = token_of(client.get("/").text)
    response = client.post(
        "/consent", data={"action": "reject_all", "csrf_token": token}
    )
    assert response.status_code == 303
    assert client.get_cookie("consent") is not None
    assert client.get("/consent").json()["needs_banner"] is False


def test_gpc_pages_render_when_no_receipt_can_be_kept(adapter, tmp_path: Path) -> None:
    client = adapter.make_app(gpc_policy(), **_unwritable(tmp_path)).client()
    response = client.get("/", headers={"Sec-GPC": "1"})
    assert response.status_code == 200
    assert client.get("/consent").json()["gpc"] is True


@pytest.mark.parametrize("path", ["/consent/declaration", "/consent/preferences"])
def test_builtin_cookies_in_the_visitors_language(adapter, path: str) -> None:
    german = load_catalog("de")
    client = adapter.make_app().client()
    html = client.get(path, headers={"Accept-Language": "de-DE"}).text
    assert german["builtin.consent.purpose"] in html
    assert german["builtin.csrf.purpose"] in html
    assert load_catalog("en")["builtin.consent.purpose"] not in html


def test_declaration_json_is_cached_by_language(adapter) -> None:
    client = adapter.make_app().client()
    response = client.get(
        "/consent/declaration.json", headers={"Accept-Language": "fr"}
    )
    assert response.json()["language"] == "fr"
    assert "accept-language" in response.headers["Vary"].lower()
    assert "max-age=300" in response.headers["Cache-Control"]


def test_a_short_secret_key_is_warned_about_outside_testing(
    adapter, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="consent"):
        adapter.make_app(TESTING=False, CONSENT_SECRET_KEY="short")
    assert "5 bytes long" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="consent"):
        adapter.make_app(TESTING=True, CONSENT_SECRET_KEY="short")
    assert "bytes long" not in caplog.text


def test_zh_regions_get_their_script(adapter) -> None:
    client = adapter.make_app().client()
    for header, language in [
        ("zh-CN", "zh-Hans"),
        ("zh-SG", "zh-Hans"),
        ("zh-Hans-CN", "zh-Hans"),
        ("zh-TW", "zh-Hant"),
        ("zh-HK", "zh-Hant"),
    ]:
        html = client.get("/", headers={"Accept-Language": header}).text
        assert f'lang="{language}"' in html, header


def test_a_views_own_deletion_of_a_refused_cookie_passes(adapter) -> None:
    view = View("<html><body>bye</body></html>", deletes=("_hz_analytics",))
    client = adapter.make_app(views={"/": view}).client()
    response = client.get("/")
    deletions = [
        h for h in response.set_cookie_headers if h.startswith("_hz_analytics=")
    ]
    assert deletions and "max-age=0" in deletions[0].lower()

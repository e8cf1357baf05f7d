from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
from flask import Flask
from flask import Response
from flask import make_response
from flask import render_template_string

from consent import Category
from consent import Cookie
from consent import Policy
from consent import Service
from consent.flask import Consent
from consent.flask.testing import assert_banner_returns_after_revision_change
from consent.flask.testing import assert_nothing_optional_before_consent
from consent.flask.testing import assert_reject_takes_one_click
from consent.flask.testing import choose
from consent.testing import BANNER_ID
from consent.testing import read_page
from consent.testing import set_cookie_names

SECRET_KEY = "a secret key for the compliance helper tests, long enough"

PAGE = """\
<!doctype html>
<html lang="en"><head><title>West Lake</title></head>
<body><main>An article about the lake.</main>
{{ consent_script("analytics", "/static/analytics.js") }}
{{ consent_embed("westlake_map", "https://maps.example/lake", title="Map") }}
<footer>{{ consent_settings_link() }}</footer>
</body></html>
"""

LIVE_WITHOUT_ASKING = """\
<!doctype html>
<html lang="en"><head><title>West Lake</title></head>
<body><main>An article about the lake.</main>
<script src="/static/analytics.js" data-consent-key="analytics"></script>
</body></html>
"""

BANNER_WITHOUT_REJECT = """\
<aside id="cookie-consent" class="consent-banner">
  <p>We use cookies.</p>
  <form method="post" action="{{ update_url }}">
    <input type="hidden" name="csrf_token" value="{{ csrf_token }}">
    <input type="hidden" name="next" value="{{ next }}">
    <button type="submit" name="action" value="accept_all">Accept all</button>
    <button type="submit" form="consent-customize">Settings</button>
  </form>
</aside>
"""


def _cookie(name: str, **fields: t.Any) -> Cookie:
    values = {"provider": "A provider", "purpose": "A purpose", "duration": "1 year"}
    values.update(fields)
    return Cookie(name=name, **values)


def make_policy(*extra: Cookie) -> Policy:
    return Policy(
        categories=(
            Category(
                "necessary",
                "Strictly necessary",
                required=True,
                cookies=(_cookie("site_lang"),),
                services=(Service("payments", "Payments"),),
            ),
            Category(
                "analytics", "Analytics", cookies=(_cookie("_hz_analytics"), *extra)
            ),
            Category(
                "media",
                "Embedded media",
                services=(
                    Service(
                        "westlake_map",
                        "West Lake map",
                        provider="West Lake Maps",
                        cookies=(_cookie("wl_map_pref", party="third"),),
                    ),
                ),
            ),
        )
    )


POLICY = make_policy()


def make_app(
    path: Path,
    page: str = PAGE,
    *,
    policy: Policy = POLICY,
    set_cookie: str | None = None,
    templates: Path | None = None,
    **config: t.Any,
) -> Flask:
    app = Flask(
        "test",
        instance_path=str(path),
        template_folder=str(templates) if templates else "templates",
    )
    app.config.update(TESTING=True, SECRET_KEY=SECRET_KEY, CONSENT_RECEIPTS_URL=None)
    app.config.update(config)
    Consent(app, policy)

    @app.get("/")
    def index() -> Response:
        response = make_response(render_template_string(page))
        response.set_cookie("site_lang", "en")
        if set_cookie is not None:
            response.set_cookie(set_cookie, "1")
        return response

    @app.get("/about")
    def about() -> str:
        return "<!doctype html><html><body><main>About us.</main></body></html>"

    @app.get("/plain")
    def plain() -> Response:
        return Response("plain text", mimetype="text/plain")

    return app


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


def test_set_cookies_skips_expiring_ones(tmp_path: Path) -> None:
    app = make_app(tmp_path)

    @app.get("/cookies")
    def cookies() -> Response:
        response = make_response("text")
        response.mimetype = "text/plain"
        response.set_cookie("kept", "1")
        response.delete_cookie("gone")
        return response

    assert set_cookie_names(
        app.test_client().get("/cookies").headers.getlist("Set-Cookie")
    ) == ["kept"]


def test_choose_submits_the_banner(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    client = app.test_client()
    response = choose(client, "save", "/", ["analytics"])
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    choices = client.get("/consent").get_json()["choices"]
    assert choices == {"analytics": True, "media": False, "westlake_map": False}


def test_choose_needs_a_banner(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    with pytest.raises(AssertionError, match="no banner"):
        choose(app.test_client(), "accept_all", "/plain")


# assert_nothing_optional_before_consent


def test_nothing_optional_passes_on_a_compliant_app(tmp_path: Path) -> None:
    assert_nothing_optional_before_consent(make_app(tmp_path), ["/", "/about", "/"])


def test_nothing_optional_passes_when_enforcement_removes_a_cookie(
    tmp_path: Path,
) -> None:
    app = make_app(tmp_path, set_cookie="_hz_analytics")
    assert_nothing_optional_before_consent(app)


def test_nothing_optional_fails_on_an_undeclared_tracker(tmp_path: Path) -> None:
    app = make_app(tmp_path, set_cookie="_ga", CONSENT_UNDECLARED="allow")
    with pytest.raises(AssertionError, match="_ga"):
        assert_nothing_optional_before_consent(app, ["/about", "/"])


def test_nothing_optional_fails_on_a_live_tag(tmp_path: Path) -> None:
    app = make_app(tmp_path, LIVE_WITHOUT_ASKING)
    with pytest.raises(AssertionError, match="analytics"):
        assert_nothing_optional_before_consent(app)


def test_nothing_optional_accepts_tags_of_required_services(tmp_path: Path) -> None:
    page = PAGE.replace(
        "<footer>", '{{ consent_script("payments", "/static/pay.js") }}<footer>'
    )
    app = make_app(tmp_path, page)
    assert 'src="/static/pay.js"' in app.test_client().get("/").text
    assert_nothing_optional_before_consent(app)


# assert_reject_takes_one_click


def test_reject_one_click_passes_on_a_compliant_app(tmp_path: Path) -> None:
    assert_reject_takes_one_click(make_app(tmp_path))


def test_reject_one_click_under_another_url_prefix(tmp_path: Path) -> None:
    app = make_app(tmp_path, CONSENT_URL_PREFIX="/privacy/consent")
    assert_reject_takes_one_click(app)


def test_reject_one_click_fails_without_reject_all(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    (templates / "consent").mkdir(parents=True)
    (templates / "consent" / "banner.html").write_text(BANNER_WITHOUT_REJECT)
    app = make_app(tmp_path / "instance", templates=templates)
    assert read_page(app.test_client().get("/").text).has_banner
    with pytest.raises(AssertionError, match="No Reject all button"):
        assert_reject_takes_one_click(app)


def test_reject_one_click_fails_without_a_banner(tmp_path: Path) -> None:
    app = make_app(tmp_path, CONSENT_AUTO_INJECT=False)
    with pytest.raises(AssertionError, match="shows no banner"):
        assert_reject_takes_one_click(app)


def test_reject_one_click_fails_on_a_live_tag(tmp_path: Path) -> None:
    app = make_app(tmp_path, LIVE_WITHOUT_ASKING)
    with pytest.raises(AssertionError, match="Live gated tags after Reject all"):
        assert_reject_takes_one_click(app)


# assert_banner_returns_after_revision_change


def test_banner_returns_after_a_revision_change(tmp_path: Path) -> None:
    changed = make_policy(_cookie("_hz_session_count"))
    assert changed.revision != POLICY.revision
    assert_banner_returns_after_revision_change(
        make_app(tmp_path / "before"), make_app(tmp_path / "after", policy=changed)
    )


def test_banner_returns_fails_when_the_revision_is_the_same(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="did not return"):
        assert_banner_returns_after_revision_change(
            make_app(tmp_path / "before"), make_app(tmp_path / "after")
        )

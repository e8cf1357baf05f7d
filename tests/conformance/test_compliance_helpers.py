"""The compliance checks of ``consent.flask.testing`` and
``consent.asgi.testing``: the same functions, each over its framework's
test client, passing on a compliant app and failing on a broken one."""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

import pytest

from consent import Category
from consent import Cookie
from consent import Policy
from consent import Service
from consent.testing import read_page
from consent.testing import set_cookie_names
from tests.conformance.conftest import View

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
    adapter: t.Any,
    page: str = PAGE,
    *,
    policy: Policy = POLICY,
    set_cookie: str | None = None,
    templates: Path | None = None,
    **config: t.Any,
) -> t.Any:
    cookies = [("site_lang", "en", {})]
    if set_cookie is not None:
        cookies.append((set_cookie, "1", {}))
    views = {
        "/": View(page, cookies=tuple(cookies)),
        "/about": View(
            "<!doctype html><html><body><main>About us.</main></body></html>"
        ),
        "/plain": View("plain text", content_type="text/plain"),
        "/cookies": View(
            "text",
            content_type="text/plain",
            cookies=(("kept", "1", {}),),
            deletes=("gone",),
        ),
    }
    config.setdefault("CONSENT_RECEIPTS_URL", None)
    return adapter.make_app(policy, views, templates=templates, **config)


def test_set_cookies_skips_expiring_ones(adapter) -> None:
    response = make_app(adapter).client().get("/cookies")
    assert set_cookie_names(response.set_cookie_headers) == ["kept"]


def test_choose_submits_the_banner(adapter) -> None:
    app = make_app(adapter)
    client = app.native_client()
    response = app.testing.choose(client, "save", "/", ["analytics"])
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    choices = json.loads(client.get("/consent").text)["choices"]
    assert choices == {"analytics": True, "media": False, "westlake_map": False}


def test_choose_needs_a_banner(adapter) -> None:
    app = make_app(adapter)
    with pytest.raises(AssertionError, match="no banner"):
        app.testing.choose(app.native_client(), "accept_all", "/plain")


# assert_nothing_optional_before_consent


def test_nothing_optional_passes_on_a_compliant_app(adapter) -> None:
    app = make_app(adapter)
    app.testing.assert_nothing_optional_before_consent(app.native, ["/", "/about", "/"])


def test_nothing_optional_passes_when_enforcement_removes_a_cookie(adapter) -> None:
    app = make_app(adapter, set_cookie="_hz_analytics")
    app.testing.assert_nothing_optional_before_consent(app.native)


def test_nothing_optional_fails_on_an_undeclared_tracker(adapter) -> None:
    app = make_app(adapter, set_cookie="_ga", CONSENT_UNDECLARED="allow")
    with pytest.raises(AssertionError, match="_ga"):
        app.testing.assert_nothing_optional_before_consent(app.native, ["/about", "/"])


def test_nothing_optional_fails_on_a_live_tag(adapter) -> None:
    app = make_app(adapter, LIVE_WITHOUT_ASKING)
    with pytest.raises(AssertionError, match="analytics"):
        app.testing.assert_nothing_optional_before_consent(app.native)


def test_nothing_optional_accepts_tags_of_required_services(adapter) -> None:
    page = PAGE.replace(
        "<footer>", '{{ consent_script("payments", "/static/pay.js") }}<footer>'
    )
    app = make_app(adapter, page)
    assert 'src="/static/pay.js"' in app.client().get("/").text
    app.testing.assert_nothing_optional_before_consent(app.native)


# assert_reject_takes_one_click


def test_reject_one_click_passes_on_a_compliant_app(adapter) -> None:
    app = make_app(adapter)
    app.testing.assert_reject_takes_one_click(app.native)


def test_reject_one_click_under_another_url_prefix(adapter) -> None:
    app = make_app(adapter, CONSENT_URL_PREFIX="/privacy/consent")
    app.testing.assert_reject_takes_one_click(app.native)


def test_reject_one_click_fails_without_reject_all(adapter, tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    (templates / "consent").mkdir(parents=True)
    (templates / "consent" / "banner.html").write_text(BANNER_WITHOUT_REJECT)
    app = make_app(adapter, templates=templates)
    assert read_page(app.client().get("/").text).has_banner
    with pytest.raises(AssertionError, match="No Reject all button"):
        app.testing.assert_reject_takes_one_click(app.native)


def test_reject_one_click_fails_without_a_banner(adapter) -> None:
    app = make_app(adapter, CONSENT_AUTO_INJECT=False)
    with pytest.raises(AssertionError, match="shows no banner"):
        app.testing.assert_reject_takes_one_click(app.native)


def test_reject_one_click_fails_on_a_live_tag(adapter) -> None:
    app = make_app(adapter, LIVE_WITHOUT_ASKING)
    with pytest.raises(AssertionError, match="Live gated tags after Reject all"):
        app.testing.assert_reject_takes_one_click(app.native)


# assert_banner_returns_after_revision_change


def test_banner_returns_after_a_revision_change(adapter) -> None:
    changed = make_policy(_cookie("_hz_session_count"))
    assert changed.revision != POLICY.revision
    before = make_app(adapter)
    after = make_app(adapter, policy=changed)
    before.testing.assert_banner_returns_after_revision_change(
        before.native, after.native
    )


def test_banner_returns_fails_when_the_revision_is_the_same(adapter) -> None:
    before = make_app(adapter)
    after = make_app(adapter)
    with pytest.raises(AssertionError, match="did not return"):
        before.testing.assert_banner_returns_after_revision_change(
            before.native, after.native
        )

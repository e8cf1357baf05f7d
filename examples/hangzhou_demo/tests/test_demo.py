from __future__ import annotations

import re

import pytest

from consent.testing import read_page
from examples.hangzhou_demo import consent_settings_from_env
from examples.hangzhou_demo import load_or_create_secret
from examples.hangzhou_demo.content import ARTICLE_PATH
from examples.hangzhou_demo.content import load_article
from examples.hangzhou_demo.content import parse_article
from examples.hangzhou_demo.tests.conftest import make_twin

ANALYTICS_TAG = "analytics.js"
MAP_SRC = "http://localhost:5001/map/west-lake"


def _page(client, path="/"):
    response = client.get(path)
    assert response.status_code == 200
    return response.text


def _live(html):
    """The keys of gated tags rendered live."""
    return {key for _, key in read_page(html).live}


def _cookie_names(response):
    return [h.split("=", 1)[0] for h in response.headers.getlist("Set-Cookie")]


# The article


def test_article_file_is_the_seed_without_the_old_notice():
    text = ARTICLE_PATH.read_text(encoding="utf-8")
    assert len(text.splitlines()) == 21
    assert "By continuing to use the site" not in text
    assert text.endswith("from the West.\n")


def test_article_is_parsed_into_title_paragraphs_and_captions():
    article = load_article()
    assert article.title == "Let us look at China’s Hangzhou: digital and smart"
    assert len(article.paragraphs) == 8
    assert len(article.captions) == 2
    assert article.captions[1] == (
        "Hangzhou launched the 4th Qiantang Star Entrepreneurial Innovation Competition"
    )
    assert [b.art for b in article.blocks if b.kind == "figure"] == [
        "keynote",
        "competition",
    ]


def test_parse_article_keeps_order():
    article = parse_article("Title\n\nOne.\n\n(A photo)\n\nTwo.\n")
    assert [(b.kind, b.text) for b in article.blocks] == [
        ("paragraph", "One."),
        ("figure", "A photo"),
        ("paragraph", "Two."),
    ]


def test_home_page_shows_the_whole_article(client):
    html = _page(client)
    article = load_article()
    assert "<h1>Let us look at China’s Hangzhou: digital and smart</h1>" in html
    for paragraph in article.paragraphs:
        assert f"<p>{paragraph}</p>" in html
    assert html.count("<figure") == 2
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", html)
    assert captions == list(article.captions)
    assert not any(c.startswith("(") for c in captions)
    assert html.count("<svg") >= 2
    assert "By continuing to use the site" not in html
    assert "allow cookies" not in html


def test_home_page_uses_no_other_origin_before_consent(client):
    html = _page(client)
    # The map's address appears only as data of the inert placeholder.
    outside = re.findall(r'[\s<](?:src|href)="(https?://[^"]*)"', html)
    assert outside == []


# Before consent


def test_banner_on_first_visit(client):
    html = _page(client)
    assert 'id="cookie-consent"' in html
    assert 'name="csrf_token"' in html
    assert 'value="accept_all"' in html
    assert 'value="reject_all"' in html


def test_nothing_optional_before_consent(twin, client):
    twin.testing.assert_nothing_optional_before_consent(
        twin.app, ["/", "/consent/declaration", "/consent/preferences", "/"]
    )
    html = _page(client)
    assert f' src="/static/{ANALYTICS_TAG}"' not in html
    assert "<iframe" not in html
    inert = read_page(html).inert
    assert inert == [("script", "analytics"), ("iframe", "westlake_map")]


def test_reject_takes_one_click(twin):
    twin.testing.assert_reject_takes_one_click(twin.app, "/")


def test_map_placeholder_names_the_provider_and_cookie(client):
    html = _page(client)
    assert "Where is West Lake?" in html
    placeholder = html.split('class="consent-embed"', 1)[1].split("</section>")[0]
    assert "West Lake Maps (demo provider on a second local origin)" in placeholder
    assert "wl_map_pref" in placeholder
    assert 'value="westlake_map"' in placeholder


def test_analytics_hit_without_consent_counts_nothing(client):
    response = client.post("/analytics/hit", json={"path": "/"})
    assert response.status_code == 204
    assert "_hz_analytics" not in _cookie_names(response)
    assert client.get("/analytics/stats").json() == {"total": 0, "paths": {}}


def test_footer_links(client):
    html = _page(client)
    footer = html.split('<footer class="site-footer">', 1)[1]
    assert re.search(
        r'<a class="consent-settings-link" href="/consent/preferences[^"]*"'
        r"[^>]*>Cookie settings</a>",
        footer,
    )
    assert '<a href="/consent/declaration">Cookies</a>' in footer


def test_security_headers(client):
    response = client.get("/")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "frame-src http://localhost:5001" in csp
    assert "unsafe-inline" not in csp


# After a choice


def test_accept_all_loads_analytics_and_map(client, choose):
    choose("accept_all")
    html = _page(client)
    assert 'id="cookie-consent"' not in html
    assert '<script src="/static/analytics.js"' in html
    assert f'<iframe src="{MAP_SRC}" title="Map of West Lake"' in html
    assert 'class="consent-embed"' not in html
    assert _live(html) == {"analytics", "westlake_map"}


def test_reject_all_keeps_everything_off(client, choose):
    choose("reject_all")
    html = _page(client)
    assert 'id="cookie-consent"' not in html
    assert _live(html) == set()
    assert "<iframe" not in html


def test_analytics_only(client, choose):
    choose("save", "analytics")
    html = _page(client)
    assert _live(html) == {"analytics"}
    assert "<iframe" not in html


def test_map_only(client, choose):
    choose("save", "westlake_map")
    html = _page(client)
    assert _live(html) == {"westlake_map"}
    assert "<iframe" in html


def test_analytics_hit_with_consent_counts_and_sets_cookie(client, choose):
    choose("accept_all")
    response = client.post("/analytics/hit", json={"path": "/"})
    assert response.status_code == 204
    cookie = next(
        h for h in response.headers.getlist("Set-Cookie") if h.startswith("_hz_")
    )
    assert "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    assert "Max-Age=34128000" in cookie
    client.post("/analytics/hit", json={"path": "/"})
    assert client.get("/analytics/stats").json() == {
        "total": 2,
        "paths": {"/": 2},
    }


def test_analytics_cookie_is_set_once(client, choose):
    choose("accept_all")
    client.post("/analytics/hit", json={"path": "/"})
    again = client.post("/analytics/hit", json={"path": "/"})
    assert "_hz_analytics" not in _cookie_names(again)


def test_withdrawing_analytics_expires_its_cookie(client, choose):
    choose("accept_all")
    client.post("/analytics/hit", json={"path": "/"})
    response = choose("reject_all", page="/consent/preferences")
    expired = [
        h for h in response.headers.getlist("Set-Cookie") if h.startswith("_hz_")
    ]
    assert expired and "Max-Age=0" in expired[0]
    assert _live(_page(client)) == set()
    assert client.get_cookie("_hz_analytics") is None


@pytest.mark.parametrize("body", [{}, {"path": "no-slash"}, {"path": 3}, [1]])
def test_analytics_hit_refuses_bad_bodies(client, choose, body):
    choose("accept_all")
    assert client.post("/analytics/hit", json=body).status_code == 400


# The library's pages in the site's layout


@pytest.mark.parametrize("path", ["/consent/preferences", "/consent/declaration"])
def test_library_pages_use_the_site_layout(client, path):
    html = _page(client, path)
    assert 'class="site-header"' in html
    assert 'class="library-page"' in html
    assert "· Hangzhou Digital</title>" in html


def test_declaration_lists_the_demo_cookies(client):
    html = _page(client, "/consent/declaration")
    for name in ("_hz_analytics", "wl_map_pref"):
        assert f"<code>{name}</code>" in html
    assert "Hangzhou Digital (this site)" in html
    assert "13 months" in html


# The map provider


def test_map_page(map_client):
    response = map_client.get("/map/west-lake")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<svg" in html
    for label in ("Su Causeway", "Bai Causeway", "Leifeng Pagoda", "Broken Bridge"):
        assert label in html
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("wl_map_pref=")
    assert "Max-Age=31536000" in cookie
    assert "SameSite=None" in cookie and "Secure" in cookie
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'self' http://127.0.0.1:5000" in csp
    assert "X-Frame-Options" not in response.headers


# Configuration


def test_secret_is_created_once(tmp_path):
    path = tmp_path / "instance" / "secret_key"
    first = load_or_create_secret(path)
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_secret(path) == first


def test_consent_settings_from_env():
    settings = consent_settings_from_env(
        {
            "CONSENT_COOKIE_NAME": "hz_consent",
            "CONSENT_AUTO_INJECT": "false",
            "CONSENT_LANGUAGES": '["en"]',
            "OTHER": "1",
        }
    )
    assert settings == {
        "CONSENT_COOKIE_NAME": "hz_consent",
        "CONSENT_AUTO_INJECT": False,
        "CONSENT_LANGUAGES": ["en"],
    }


@pytest.mark.parametrize("name", ["flask", "asgi"])
def test_env_settings_reach_the_adapter(monkeypatch, tmp_path, name):
    monkeypatch.setenv("CONSENT_COOKIE_NAME", "hz_consent")
    twin = make_twin(name, tmp_path)
    assert twin.site.settings.cookie_name == "hz_consent"
    response = twin.client().get("/")
    assert any(h.startswith("hz_consent_csrf=") for h in response.set_cookie_headers)
    twin.site.close()

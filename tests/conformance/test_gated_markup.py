"""Gated scripts and embeds: inert until allowed, live once allowed."""

from __future__ import annotations

import logging

import pytest

from consent import UnknownCategoryError
from consent.testing import read_page
from tests.conformance.conftest import View
from tests.conformance.enforcement_app import POLICY
from tests.conformance.enforcement_app import make_app
from tests.conformance.pages import choice_of
from tests.conformance.pages import choose
from tests.conformance.pages import forms
from tests.conformance.pages import state_of
from tests.conformance.pages import tags

SCRIPTS = """\
<html><body>
{{ consent_script("analytics", "/static/analytics.js", defer=True,
                  data_endpoint="/hit") }}
{{ consent_script("analytics", body="countView('/');") }}
{{ consent_script("necessary", "/static/site.js") }}
</body></html>
"""


def test_script_refused_is_inert(adapter) -> None:
    html = make_app(adapter, SCRIPTS).client().get("/").text
    external, inline = tags(html, "script", "analytics")
    assert external == {
        "type": "text/plain",
        "data-consent-key": "analytics",
        "data-consent-src": "/static/analytics.js",
        "defer": None,
        "data-endpoint": "/hit",
        "#text": "",
    }
    assert inline == {
        "type": "text/plain",
        "data-consent-key": "analytics",
        "#text": "countView('/');",
    }
    (necessary,) = tags(html, "script", "necessary")
    assert necessary["src"] == "/static/site.js"
    assert "type" not in necessary
    assert read_page(html).inert == [("script", "analytics"), ("script", "analytics")]


def test_script_allowed_is_live(adapter) -> None:
    client = make_app(adapter, SCRIPTS).client()
    choose(client, "accept_all")
    html = client.get("/").text
    external, inline = tags(html, "script", "analytics")
    assert external == {
        "src": "/static/analytics.js",
        "data-consent-key": "analytics",
        "defer": None,
        "data-endpoint": "/hit",
        "#text": "",
    }
    assert inline == {"data-consent-key": "analytics", "#text": "countView('/');"}
    assert "text/plain" not in html
    assert read_page(html).inert == []


def test_script_carries_the_configured_csp_nonce(adapter) -> None:
    app = make_app(adapter, SCRIPTS, CONSENT_CSP_NONCE=lambda *_: "c0nfigured")
    client = app.client()
    html = client.get("/").text
    assert [s.get("nonce") for s in tags(html, "script", "analytics")] == [
        "c0nfigured",
        "c0nfigured",
    ]
    choose(client, "accept_all")
    html = client.get("/").text
    gated = tags(html, "script", "analytics") + tags(html, "script", "necessary")
    assert [s.get("nonce") for s in gated] == ["c0nfigured"] * 3
    assert gated[0]["src"] == "/static/analytics.js"
    # The library's own script too.
    (own,) = [s for s in tags(html, "script") if "consent.js" in s.get("src", "")]
    assert own["nonce"] == "c0nfigured"


def test_script_without_nonce_has_no_nonce_attribute(adapter) -> None:
    client = make_app(adapter, SCRIPTS).client()
    choose(client, "accept_all")
    html = client.get("/").text
    assert all("nonce" not in s for s in tags(html, "script"))


@pytest.mark.parametrize("body", ["a('</script>')", "a('</SCRIPT ')"])
def test_inline_body_cannot_close_the_tag(adapter, body: str) -> None:
    views = {
        "/closing": View(
            '{{ consent_script("analytics", body=body) }}', context={"body": body}
        )
    }
    client = adapter.make_app(POLICY, views, CONSENT_RECEIPTS_URL=None).client()
    with pytest.raises(ValueError, match="</script"):
        client.get("/closing")


def test_script_attributes_are_escaped(adapter) -> None:
    page = """{{ consent_script("analytics", '/a.js?x="><b>') }}"""
    html = make_app(adapter, page).client().get("/").text
    assert 'data-consent-src="/a.js?x=&#34;&gt;&lt;b&gt;"' in html
    assert "<b>" not in html


UNKNOWN = """\
<html><body>
{{ consent_script("analytcs", "/static/analytics.js") }}
</body></html>
"""


@pytest.mark.parametrize("config", [{}, {"TESTING": False, "DEBUG": True}])
def test_unknown_key_raises_in_debug_and_testing(adapter, config) -> None:
    app = make_app(adapter, UNKNOWN, **config)
    assert app.debug
    with pytest.raises(UnknownCategoryError, match="analytcs"):
        app.client().get("/")


def test_unknown_key_stays_inert_in_production(
    adapter, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(adapter, UNKNOWN, TESTING=False, DEBUG=False)
    assert not app.debug
    client = app.client()
    choose(client, "accept_all")
    with caplog.at_level(logging.ERROR, logger="consent.visitor"):
        response = client.get("/")
    assert response.status_code == 200
    assert tags(response.text, "script", "analytcs") == [
        {
            "type": "text/plain",
            "data-consent-key": "analytcs",
            "data-consent-src": "/static/analytics.js",
            "#text": "",
        }
    ]
    records = [r for r in caplog.records if r.name == "consent.visitor"]
    assert len(records) == 1
    assert records[0].levelno == logging.ERROR
    assert "'analytcs'" in records[0].getMessage()


def test_unknown_embed_key_stays_inert_in_production(adapter) -> None:
    page = '{{ consent_embed("wesltake_map", "https://maps.example/", title="Map") }}'
    app = make_app(adapter, page, TESTING=False, DEBUG=False)
    response = app.client().get("/")
    assert response.status_code == 200
    assert "<iframe" not in response.text


MACROS = """\
{% from "consent/macros.html" import gated_script, gated_embed %}
<html><body>
{% call gated_script("analytics") %}countView("/");{% endcall %}
{{ gated_script("analytics", "/static/analytics.js", defer=True) }}
{{ gated_embed("westlake_map", "https://maps.example/lake", "Map of West Lake") }}
</body></html>
"""


#: Why the macros do not load in an ASGI app's templates.


def test_macros_refused(adapter) -> None:
    html = make_app(adapter, MACROS).client().get("/").text
    inline, external = tags(html, "script", "analytics")
    assert inline == {
        "type": "text/plain",
        "data-consent-key": "analytics",
        "#text": 'countView("/");',
    }
    assert external == {
        "type": "text/plain",
        "data-consent-key": "analytics",
        "data-consent-src": "/static/analytics.js",
        "defer": None,
        "#text": "",
    }
    page = read_page(html)
    assert page.live == []
    assert ("iframe", "westlake_map") in page.inert


def test_macros_allowed(adapter) -> None:
    client = make_app(adapter, MACROS).client()
    choose(client, "accept_all")
    html = client.get("/").text
    inline, external = tags(html, "script", "analytics")
    assert inline == {"data-consent-key": "analytics", "#text": 'countView("/");'}
    assert external == {
        "src": "/static/analytics.js",
        "data-consent-key": "analytics",
        "defer": None,
        "#text": "",
    }
    assert read_page(html).live == [
        ("script", "analytics"),
        ("script", "analytics"),
        ("iframe", "westlake_map"),
    ]


# Gated embeds.

EMBED = """\
<html><body><main>
{{ consent_embed("westlake_map", "https://maps.example/lake?z=3&l=en",
                 title="Map of West Lake", width=600, allow_="fullscreen") }}
</main></body></html>
"""


def test_embed_allowed_is_an_iframe(adapter) -> None:
    client = make_app(adapter, EMBED).client()
    choose(client, "save", "westlake_map")
    html = client.get("/").text
    assert tags(html, "iframe") == [
        {
            "src": "https://maps.example/lake?z=3&l=en",
            "title": "Map of West Lake",
            "data-consent-key": "westlake_map",
            "width": "600",
            "allow": "fullscreen",
            "loading": "lazy",
            "#text": "",
        }
    ]
    assert "data-consent-embed" not in html


def test_embed_refused_is_a_placeholder(adapter) -> None:
    html = make_app(adapter, EMBED).client().get("/").text
    assert "<iframe" not in html
    assert ' src="https://maps.example' not in html
    assert 'data-consent-src="https://maps.example/lake?z=3&amp;l=en"' in html
    assert 'data-consent-embed data-consent-key="westlake_map"' in html
    assert "Content from West Lake Maps" in html
    assert "West Lake map is provided by West Lake Maps" in html
    assert "(wl_map_pref)" in html
    embed_form = next(f for f in forms(html) if f["fields"].get("method") == "embed")
    assert embed_form["attrs"]["method"] == "post"
    assert embed_form["attrs"]["action"] == "/consent"
    assert embed_form["fields"].getlist("choice") == ["westlake_map"]
    assert embed_form["fields"]["action"] == "save"
    always, load_once = embed_form["buttons"]
    assert "data-consent-load-once" in load_once
    assert "hidden" in load_once
    assert load_once["type"] == "button"
    assert always["type"] == "submit"
    assert "hidden" not in always
    assert "Load once" in html
    assert "Always allow" in html


def test_embed_always_allow_grants_that_service_and_keeps_the_rest(adapter) -> None:
    client = make_app(adapter, EMBED).client()
    choose(client, "save", "analytics")
    html = client.get("/").text
    embed_form = next(f for f in forms(html) if f["fields"].get("method") == "embed")
    assert embed_form["fields"].getlist("choice") == ["analytics", "westlake_map"]
    response = client.post(
        embed_form["attrs"]["action"], data=embed_form["fields"].to_dict()
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    assert choice_of(client) == {
        "analytics": True,
        "media": True,
        "westlake_map": True,
        "video": False,
    }
    assert state_of(client)["method"] == "embed"
    assert "<iframe" in client.get("/").text

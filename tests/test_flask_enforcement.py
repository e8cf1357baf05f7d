from __future__ import annotations

import logging
import typing as t
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask import Flask
from flask import Response
from flask import g
from flask import make_response
from flask import render_template_string
from flask import request
from werkzeug.datastructures import MultiDict

from consent import Category
from consent import ConfigurationError
from consent import Cookie
from consent import Policy
from consent import Service
from consent import UnknownCategoryError
from consent.flask import Consent
from consent.testing import read_page

SECRET_KEY = "a secret key for the enforcement tests, long enough"
ANALYTICS_JS = "/static/analytics.js"

PAGE = """\
<!doctype html>
<html lang="en"><head><title>West Lake</title></head>
<body><main>An article about the lake.</main>
{{ consent_script("analytics", "/static/analytics.js") }}
</body></html>
"""


def _cookie(name: str = "", **fields: t.Any) -> Cookie:
    values = {"provider": "A provider", "purpose": "A purpose", "duration": "1 year"}
    values.update(fields)
    return Cookie(name=name, **values)


POLICY = Policy(
    categories=(
        Category("necessary", "Strictly necessary", required=True),
        Category(
            "analytics",
            "Analytics",
            cookies=(
                _cookie("_hz_analytics"),
                _cookie("_hz_http"),
                _cookie("_hz_ext"),
                _cookie("_hz_app", domain=".example.com", path="/app"),
                _cookie(pattern=r"_ga_[A-Z0-9]+"),
            ),
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
                Service(
                    "video",
                    "Lake videos",
                    provider="Lake Video",
                    cookies=(_cookie("lv_id", party="third"),),
                ),
            ),
        ),
    ),
    controller="Hangzhou Digital",
)


def make_app(
    tmp_path: Path, page: str = PAGE, *, policy: Policy = POLICY, **config: t.Any
) -> Flask:
    app = Flask("test", instance_path=str(tmp_path))
    app.config.update(TESTING=True, SECRET_KEY=SECRET_KEY, CONSENT_RECEIPTS_URL=None)
    app.config.update(config)
    Consent(app, policy)

    @app.get("/")
    def index() -> str:
        return render_template_string(page)

    @app.get("/tracked")
    def tracked() -> Response:
        response = make_response(render_template_string(PAGE))
        response.set_cookie("_hz_analytics", "visitor-1", max_age=3600)
        response.set_cookie("_hz_http", "visitor-2", httponly=True, secure=True)
        response.set_cookie("site_lang", "en")
        return response

    @app.get("/plain")
    def plain() -> Response:
        response = make_response("plain text")
        response.mimetype = "text/plain"
        response.set_cookie("_hz_analytics", "visitor-1")
        return response

    @app.get("/undeclared")
    def undeclared() -> Response:
        response = make_response("plain text")
        response.mimetype = "text/plain"
        response.set_cookie("mystery", "1")
        return response

    return app


class OtherExtension:
    """Stands for a third-party extension that sets a cookie of its own."""

    def init_app(self, app: Flask) -> None:
        app.after_request(self._set_cookie)

    @staticmethod
    def _set_cookie(response: Response) -> Response:
        response.set_cookie("_hz_ext", "from-the-extension", httponly=True)
        return response


def choose(client: t.Any, action: str, *choices: str) -> t.Any:
    token = client.get("/consent").get_json()["csrf_token"]
    data = {"action": action, "csrf_token": token, "choice": list(choices)}
    response = client.post("/consent", data=data)
    assert response.status_code == 303, response.status_code
    return response


def cookies_set(response: t.Any) -> dict[str, dict[str, str]]:
    """Each ``Set-Cookie`` of ``response`` by name: value and attributes."""
    found: dict[str, dict[str, str]] = {}
    for header in response.headers.getlist("Set-Cookie"):
        first, *attributes = header.split(";")
        name, _, value = first.partition("=")
        parsed = {"value": value}
        for attribute in attributes:
            key, _, attr_value = attribute.strip().partition("=")
            parsed[key.lower()] = attr_value
        assert name not in found, f"{name} set twice: {header}"
        found[name] = parsed
    return found


def expired(response: t.Any) -> dict[str, dict[str, str]]:
    return {
        name: attrs
        for name, attrs in cookies_set(response).items()
        if attrs.get("max-age") == "0"
    }


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, t.Any]] = []
        self._form: dict[str, t.Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self._form = {"attrs": a, "fields": MultiDict(), "buttons": []}
            self.forms.append(self._form)
        elif self._form is not None and tag == "input" and a.get("name"):
            self._form["fields"].add(a["name"], a.get("value") or "")
        elif self._form is not None and tag == "button":
            self._form["buttons"].append(a)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None


def forms(html: str) -> list[dict[str, t.Any]]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


def choice_of(client: t.Any) -> dict[str, bool]:
    choices: dict[str, bool] = client.get("/consent").get_json()["choices"]
    return choices


# Set-Cookie filtering.


def test_refused_analytics_cookies_are_removed(tmp_path: Path) -> None:
    client = make_app(tmp_path).test_client()
    response = client.get("/tracked")
    assert response.status_code == 200
    names = set(cookies_set(response))
    assert "_hz_analytics" not in names
    assert "_hz_http" not in names
    # The necessary CSRF cookie of the banner and undeclared ones pass.
    assert {"consent_csrf", "site_lang"} <= names
    page = read_page(response.text)
    assert page.has_banner
    assert page.live == []
    assert page.inert == [("script", "analytics")]
    assert f'<script src="{ANALYTICS_JS}"' not in response.text
    assert client.get_cookie("_hz_analytics") is None
    assert client.get_cookie("_hz_http") is None


def test_refused_after_reject_all(tmp_path: Path) -> None:
    client = make_app(tmp_path).test_client()
    choose(client, "reject_all")
    response = client.get("/tracked")
    assert "_hz_analytics" not in cookies_set(response)
    assert "_hz_http" not in cookies_set(response)
    page = read_page(response.text)
    assert not page.has_banner
    assert page.live == []


def test_allowed_analytics_cookies_pass(tmp_path: Path) -> None:
    client = make_app(tmp_path).test_client()
    choose(client, "save", "analytics")
    response = client.get("/tracked")
    found = cookies_set(response)
    assert found["_hz_analytics"]["value"] == "visitor-1"
    assert found["_hz_analytics"]["max-age"] == "3600"
    assert "httponly" in found["_hz_http"]
    assert "secure" in found["_hz_http"]
    assert read_page(response.text).live == [("script", "analytics")]
    (live,) = tags(response.text, "script", "analytics")
    assert live["src"] == ANALYTICS_JS
    assert "type" not in live


@pytest.mark.parametrize("order", ["after", "before"])
def test_cookie_of_another_extension_is_removed(tmp_path: Path, order: str) -> None:
    app = Flask("test", instance_path=str(tmp_path))
    app.config.update(TESTING=True, SECRET_KEY=SECRET_KEY, CONSENT_RECEIPTS_URL=None)
    if order == "before":
        OtherExtension().init_app(app)
    Consent(app, POLICY)
    if order == "after":
        OtherExtension().init_app(app)

    @app.get("/")
    def index() -> str:
        return render_template_string(PAGE)

    client = app.test_client()
    assert "_hz_ext" not in cookies_set(client.get("/"))
    choose(client, "reject_all")
    assert "_hz_ext" not in cookies_set(client.get("/"))
    choose(client, "accept_all")
    assert "httponly" in cookies_set(client.get("/"))["_hz_ext"]


def test_expiring_response_does_not_set_the_cookie_again(tmp_path: Path) -> None:
    app = Flask("test", instance_path=str(tmp_path))
    app.config.update(TESTING=True, SECRET_KEY=SECRET_KEY, CONSENT_RECEIPTS_URL=None)
    OtherExtension().init_app(app)
    Consent(app, POLICY)
    client = app.test_client()
    client.set_cookie("_hz_ext", "from-the-extension")
    # The first response already expires a cookie nothing allows.
    response = client.get("/")
    headers = [
        h for h in response.headers.getlist("Set-Cookie") if h.startswith("_hz_ext=")
    ]
    assert headers == [
        "_hz_ext=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/"
    ]


def test_filtered_response_varies_on_cookie(tmp_path: Path) -> None:
    client = make_app(tmp_path).test_client()
    response = client.get("/plain")
    assert response.text == "plain text"
    assert "_hz_analytics" not in cookies_set(response)
    assert "Cookie" in response.vary
    assert response.cache_control.private


def test_response_without_consent_cookies_does_not_vary(tmp_path: Path) -> None:
    app = make_app(tmp_path)

    @app.get("/static-text")
    def static_text() -> Response:
        return Response("nothing personal", mimetype="text/plain")

    response = app.test_client().get("/static-text")
    assert "Cookie" not in response.vary
    assert "Set-Cookie" not in response.headers


def test_undeclared_allow(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    client = make_app(tmp_path, CONSENT_UNDECLARED="allow").test_client()
    with caplog.at_level(logging.WARNING, logger="consent"):
        assert "mystery" in cookies_set(client.get("/undeclared"))
    assert caplog.records == []


def test_undeclared_warn_by_default(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(tmp_path)
    assert app.config["CONSENT_UNDECLARED"] == "warn"
    client = app.test_client()
    with caplog.at_level(logging.WARNING, logger="consent"):
        for _ in range(3):
            assert "mystery" in cookies_set(client.get("/undeclared"))
    records = [r for r in caplog.records if "mystery" in r.getMessage()]
    assert len(records) == 1
    message = records[0].getMessage()
    assert records[0].levelno == logging.WARNING
    assert "undeclared cookie 'mystery'" in message
    assert "Cookie(name='mystery'" in message


def test_undeclared_block(tmp_path: Path) -> None:
    client = make_app(tmp_path, CONSENT_UNDECLARED="block").test_client()
    assert "mystery" not in cookies_set(client.get("/undeclared"))
    # The consent cookies are never blocked.
    found = cookies_set(client.get("/tracked"))
    assert "consent_csrf" in found
    assert "site_lang" not in found
    response = choose(client, "accept_all")
    assert "consent" in cookies_set(response)
    assert "_hz_analytics" in cookies_set(client.get("/tracked"))


def test_unknown_undeclared_action_fails_in_init_app(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="CONSENT_UNDECLARED"):
        make_app(tmp_path, CONSENT_UNDECLARED="drop")


# Withdrawal expires what the visitor holds.


def _send_tracked_cookies(client: t.Any) -> None:
    for name in ("_hz_analytics", "_hz_app", "_ga_X1Y2", "wl_map_pref", "lv_id"):
        client.set_cookie(name, "1")
    client.set_cookie("unrelated", "1")


def test_withdrawing_a_category_expires_its_cookies(tmp_path: Path) -> None:
    client = make_app(tmp_path).test_client()
    choose(client, "accept_all")
    _send_tracked_cookies(client)
    response = choose(client, "save", "media")
    gone = expired(response)
    assert set(gone) == {"_hz_analytics", "_hz_app", "_ga_X1Y2"}
    app_cookie = gone["_hz_app"]
    assert app_cookie["domain"] == "example.com"
    assert app_cookie["path"] == "/app"
    assert app_cookie["value"] == ""
    assert "1970" in app_cookie["expires"]
    assert gone["_hz_analytics"]["path"] == "/"
    assert "domain" not in gone["_hz_analytics"]
    assert "consent" in cookies_set(response)
    assert choice_of(client)["analytics"] is False


def test_reject_after_accept_expires_everything_optional(tmp_path: Path) -> None:
    client = make_app(tmp_path).test_client()
    choose(client, "accept_all")
    _send_tracked_cookies(client)
    response = choose(client, "reject_all")
    gone = expired(response)
    assert set(gone) == {"_hz_analytics", "_hz_app", "_ga_X1Y2", "wl_map_pref", "lv_id"}
    assert (gone["_hz_app"]["domain"], gone["_hz_app"]["path"]) == (
        "example.com",
        "/app",
    )
    assert "consent" not in gone
    assert "unrelated" not in cookies_set(response)


def test_withdrawing_one_service_expires_only_its_cookies(tmp_path: Path) -> None:
    client = make_app(tmp_path).test_client()
    choose(client, "accept_all")
    _send_tracked_cookies(client)
    response = choose(client, "save", "analytics", "westlake_map")
    assert set(expired(response)) == {"lv_id"}


def test_cookies_placed_before_any_choice_expire_on_the_next_response(
    tmp_path: Path,
) -> None:
    client = make_app(tmp_path).test_client()
    _send_tracked_cookies(client)
    assert set(expired(client.get("/plain"))) == {
        "_hz_analytics",
        "_hz_app",
        "_ga_X1Y2",
        "wl_map_pref",
        "lv_id",
    }


def test_granting_more_expires_nothing(tmp_path: Path) -> None:
    client = make_app(tmp_path).test_client()
    choose(client, "save", "analytics")
    _send_tracked_cookies(client)
    response = choose(client, "accept_all")
    assert expired(response) == {}


# Gated scripts.

SCRIPTS = """\
<html><body>
{{ consent_script("analytics", "/static/analytics.js", defer=True,
                  data_endpoint="/hit") }}
{{ consent_script("analytics", body="countView('/');") }}
{{ consent_script("necessary", "/static/site.js") }}
</body></html>
"""


class _Tags(HTMLParser):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.found: list[dict[str, t.Any]] = []
        self._open: dict[str, t.Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == self.name:
            self._open = {**dict(attrs), "#text": ""}
            self.found.append(self._open)

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open["#text"] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == self.name:
            self._open = None


def tags(html: str, name: str, key: str | None = None) -> list[dict[str, t.Any]]:
    """Every ``name`` element's attributes (a bare one is ``None``) and, as
    ``#text``, its content; only those of ``data-consent-key`` ``key``."""
    parser = _Tags(name)
    parser.feed(html)
    return [a for a in parser.found if key is None or a.get("data-consent-key") == key]


def test_script_refused_is_inert(tmp_path: Path) -> None:
    html = make_app(tmp_path, SCRIPTS).test_client().get("/").text
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


def test_script_allowed_is_live(tmp_path: Path) -> None:
    client = make_app(tmp_path, SCRIPTS).test_client()
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


def test_script_carries_the_configured_csp_nonce(tmp_path: Path) -> None:
    app = make_app(tmp_path, SCRIPTS, CONSENT_CSP_NONCE=lambda: "c0nfigured")
    client = app.test_client()
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


def test_script_carries_the_request_csp_nonce(tmp_path: Path) -> None:
    app = make_app(tmp_path, SCRIPTS)

    @app.before_request
    def talisman_like() -> None:
        request.csp_nonce = "fr0m-request"  # type: ignore[attr-defined]

    client = app.test_client()
    choose(client, "accept_all")
    html = client.get("/").text
    external, inline = tags(html, "script", "analytics")
    assert external["nonce"] == inline["nonce"] == "fr0m-request"
    assert external["src"] == "/static/analytics.js"


def test_script_nonce_from_g(tmp_path: Path) -> None:
    app = make_app(tmp_path, SCRIPTS)

    @app.before_request
    def set_nonce() -> None:
        g.csp_nonce = "g-n0nce"

    client = app.test_client()
    choose(client, "accept_all")
    html = client.get("/").text
    assert {s["nonce"] for s in tags(html, "script", "analytics")} == {"g-n0nce"}


def test_script_without_nonce_has_no_nonce_attribute(tmp_path: Path) -> None:
    client = make_app(tmp_path, SCRIPTS).test_client()
    choose(client, "accept_all")
    html = client.get("/").text
    assert all("nonce" not in s for s in tags(html, "script"))


@pytest.mark.parametrize("body", ["a('</script>')", "a('</SCRIPT ')"])
def test_inline_body_cannot_close_the_tag(tmp_path: Path, body: str) -> None:
    app = make_app(tmp_path)

    @app.get("/closing")
    def closing() -> str:
        return render_template_string(
            '{{ consent_script("analytics", body=body) }}', body=body
        )

    with pytest.raises(ValueError, match="</script"):
        app.test_client().get("/closing")


def test_script_attributes_are_escaped(tmp_path: Path) -> None:
    app = make_app(tmp_path, """{{ consent_script("analytics", '/a.js?x="><b>') }}""")
    html = app.test_client().get("/").text
    assert 'data-consent-src="/a.js?x=&#34;&gt;&lt;b&gt;"' in html
    assert "<b>" not in html


UNKNOWN = """\
<html><body>
{{ consent_script("analytcs", "/static/analytics.js") }}
</body></html>
"""


@pytest.mark.parametrize("config", [{}, {"TESTING": False, "DEBUG": True}])
def test_unknown_key_raises_in_debug_and_testing(
    tmp_path: Path, config: dict[str, t.Any]
) -> None:
    app = make_app(tmp_path, UNKNOWN, **config)
    with pytest.raises(UnknownCategoryError, match="analytcs"):
        app.test_client().get("/")


def test_unknown_key_stays_inert_in_production(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(tmp_path, UNKNOWN, TESTING=False, DEBUG=False)
    assert not app.testing and not app.debug
    client = app.test_client()
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


def test_unknown_embed_key_stays_inert_in_production(tmp_path: Path) -> None:
    page = '{{ consent_embed("wesltake_map", "https://maps.example/", title="Map") }}'
    app = make_app(tmp_path, page, TESTING=False, DEBUG=False)
    response = app.test_client().get("/")
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


def test_macros_refused(tmp_path: Path) -> None:
    html = make_app(tmp_path, MACROS).test_client().get("/").text
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


def test_macros_allowed(tmp_path: Path) -> None:
    client = make_app(tmp_path, MACROS).test_client()
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


def test_embed_allowed_is_an_iframe(tmp_path: Path) -> None:
    client = make_app(tmp_path, EMBED).test_client()
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


def test_embed_refused_is_a_placeholder(tmp_path: Path) -> None:
    html = make_app(tmp_path, EMBED).test_client().get("/").text
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


def test_embed_always_allow_grants_that_service_and_keeps_the_rest(
    tmp_path: Path,
) -> None:
    client = make_app(tmp_path, EMBED).test_client()
    choose(client, "save", "analytics")
    html = client.get("/").text
    embed_form = next(f for f in forms(html) if f["fields"].get("method") == "embed")
    assert embed_form["fields"].getlist("choice") == ["analytics", "westlake_map"]
    response = client.post(embed_form["attrs"]["action"], data=embed_form["fields"])
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    assert choice_of(client) == {
        "analytics": True,
        "media": True,
        "westlake_map": True,
        "video": False,
    }
    assert client.get("/consent").get_json()["method"] == "embed"
    assert "<iframe" in client.get("/").text


# requires()


def make_required_app(tmp_path: Path) -> tuple[Flask, Consent]:
    app = make_app(tmp_path)
    ext: Consent = app.extensions["consent"]

    @app.get("/map/<int:zoom>")
    @ext.requires("westlake_map")
    def lake_map(zoom: int) -> str:
        return f"the map at zoom {zoom}"

    @app.get("/video")
    @ext.requires("video", fallback=lambda: ("a still picture instead", 200))
    def video() -> str:
        return "the video"

    @app.get("/no-map/<int:zoom>")
    def no_map(zoom: int) -> str:
        return f"a text description at zoom {zoom}"

    @app.get("/map-or-text/<int:zoom>")
    @ext.requires("westlake_map", fallback="no_map")
    def map_or_text(zoom: int) -> str:
        return f"the map at zoom {zoom}"

    return app, ext


def test_requires_without_consent_explains_with_403(tmp_path: Path) -> None:
    app, _ = make_required_app(tmp_path)
    client = app.test_client()
    response = client.get("/map/3")
    assert response.status_code == 403
    assert "the map" not in response.text
    assert "This page needs your permission" in response.text
    assert "This page uses West Lake map, which you have not allowed." in (
        response.text
    )
    assert response.cache_control.private
    assert "Cookie" in response.vary
    grant = next(
        f
        for f in forms(response.text)
        if f["fields"].getlist("choice") == ["westlake_map"]
    )
    assert grant["attrs"]["action"] == "/consent"
    assert grant["fields"]["action"] == "save"
    assert 'href="/consent/preferences' in response.text
    # Granting from that page makes the view run.
    posted = client.post("/consent", data=grant["fields"])
    assert posted.status_code == 303
    assert posted.headers["Location"] == "/map/3"
    after = client.get("/map/3")
    assert after.status_code == 200
    assert after.text == "the map at zoom 3"


def test_requires_with_consent_runs_the_view(tmp_path: Path) -> None:
    app, _ = make_required_app(tmp_path)
    client = app.test_client()
    choose(client, "save", "westlake_map")
    assert client.get("/map/7").text == "the map at zoom 7"
    assert client.get("/map-or-text/7").text == "the map at zoom 7"
    assert client.get("/video").status_code == 200
    assert client.get("/video").text == "a still picture instead"


def test_requires_fallback_callable(tmp_path: Path) -> None:
    app, _ = make_required_app(tmp_path)
    client = app.test_client()
    response = client.get("/video")
    assert response.status_code == 200
    assert response.text == "a still picture instead"
    choose(client, "accept_all")
    assert client.get("/video").text == "the video"


def test_requires_fallback_endpoint(tmp_path: Path) -> None:
    app, _ = make_required_app(tmp_path)
    client = app.test_client()
    response = client.get("/map-or-text/4")
    assert response.status_code == 200
    assert response.text == "a text description at zoom 4"


def test_requires_unknown_key_fails_at_decoration(tmp_path: Path) -> None:
    _, ext = make_required_app(tmp_path)
    with pytest.raises(UnknownCategoryError, match="westlake_mapp"):

        @ext.requires("westlake_mapp")
        def view() -> str:
            return "never"


def test_requires_registry(tmp_path: Path) -> None:
    _, ext = make_required_app(tmp_path)
    prefix = f"{__name__}.make_required_app.<locals>."
    assert ext.required == {
        prefix + "lake_map": "westlake_map",
        prefix + "video": "video",
        prefix + "map_or_text": "westlake_map",
    }


def test_requires_sets_no_attribute_on_the_view(tmp_path: Path) -> None:
    _, ext = make_required_app(tmp_path)

    def view() -> str:
        return "a view"

    before = set(vars(view))
    wrapped = ext.requires("analytics")(view)
    assert set(vars(view)) == before
    assert wrapped.__name__ == "view"

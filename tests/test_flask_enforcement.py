"""What only the Flask extension does in enforcement: Flask's hook order,
the CSP nonce of Flask-Talisman (``request.csp_nonce``) and ``g``, and the
``requires`` decorator with its fallbacks and registry. The Set-Cookie
filter, withdrawal expiry, gated markup and the 403 page of ``requires`` are
tested on every adapter by the conformance suite (``tests/conformance``)."""

from __future__ import annotations

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

from consent import Category
from consent import ConfigurationError
from consent import Cookie
from consent import Policy
from consent import Service
from consent import UnknownCategoryError
from consent.flask import Consent

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


def test_unknown_undeclared_action_fails_in_init_app(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="CONSENT_UNDECLARED"):
        make_app(tmp_path, CONSENT_UNDECLARED="drop")


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


def test_requires_with_consent_runs_the_view_not_the_fallback(tmp_path: Path) -> None:
    app, _ = make_required_app(tmp_path)
    client = app.test_client()
    choose(client, "save", "westlake_map")
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


def test_requires_guards_an_async_view(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    ext: Consent = app.extensions["consent"]

    @app.get("/async-map")
    @ext.requires("westlake_map")
    async def async_map() -> str:
        return "the map, served by a coroutine"

    client = app.test_client()
    refused = client.get("/async-map")
    assert refused.status_code == 403
    choose(client, "save", "westlake_map")
    assert client.get("/async-map").text == "the map, served by a coroutine"


def test_requires_checks_its_key_against_the_policy_of_init_app(tmp_path: Path) -> None:
    # No policy yet when the view is decorated: init_app checks the key.
    ext = Consent()

    @ext.requires("westlake_mapp")
    def view() -> str:
        return "never"

    app = Flask("late", instance_path=str(tmp_path))
    app.config.update(TESTING=True, SECRET_KEY="a secret key, long enough to sign")
    with pytest.raises(UnknownCategoryError, match="westlake_mapp"):
        ext.init_app(app, POLICY)

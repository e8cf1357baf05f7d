from __future__ import annotations

import collections.abc as cabc
import itertools
import re
import typing as t
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from markupsafe import escape

from consent import ConfigurationError
from consent import Policy
from consent.flask import Consent
from consent.i18n import Translator
from consent.i18n import available_languages
from consent.settings import DEFAULTS as DEFAULT_CONFIG

KEY = "a secret key of the extension tests, long enough"
BANNER = 'id="cookie-consent"'


@pytest.fixture
def new_app(tmp_path: Path) -> cabc.Callable[..., Flask]:
    """Build a bare app (no ``Consent`` yet) with ``config``; its instance
    folder, where receipts go, is a temporary directory."""
    count = itertools.count()

    def factory(**config: t.Any) -> Flask:
        instance = tmp_path / f"instance-{next(count)}"
        app = Flask("test", instance_path=str(instance))
        app.config.update(TESTING=True, SECRET_KEY=KEY)
        app.config.update(config)
        return app

    return factory


def banner_language(html: str) -> str:
    match = re.search(r'<aside id="cookie-consent"[^>]* lang="([^"]+)"', html)
    assert match is not None, "no banner on the page"
    return match[1]


def test_no_secret_key_fails_in_init_app(new_app, policy: Policy) -> None:
    app = new_app(SECRET_KEY=None)
    with pytest.raises(ConfigurationError) as info:
        Consent(app, policy)
    assert str(info.value) == (
        "Consent signs its cookie: set CONSENT_SECRET_KEY (or the app's"
        " SECRET_KEY) to a long random secret."
    )
    assert "consent" not in app.extensions


def test_consent_secret_key_alone_is_enough(
    new_app, policy: Policy, csrf_token
) -> None:
    app = new_app(SECRET_KEY=None, CONSENT_SECRET_KEY=KEY)
    Consent(app, policy)
    client = app.test_client()
    token = csrf_token(client.get("/consent/preferences").text)
    response = client.post(
        "/consent", data={"action": "reject_all", "csrf_token": token}
    )
    assert response.status_code == 303
    assert client.get_cookie("consent") is not None


@pytest.mark.parametrize("samesite", ["lax", "Sometimes", ""])
def test_bad_samesite_fails(new_app, policy: Policy, samesite: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Consent(new_app(CONSENT_COOKIE_SAMESITE=samesite), policy)
    assert (
        "CONSENT_COOKIE_SAMESITE must be one of 'Strict', 'Lax', 'None', None"
        in str(info.value)
    )


def test_samesite_none_needs_secure(new_app, policy: Policy) -> None:
    app = new_app(CONSENT_COOKIE_SAMESITE="None", CONSENT_COOKIE_SECURE=False)
    with pytest.raises(ConfigurationError, match="browsers refuse without Secure"):
        Consent(app, policy)


@pytest.mark.parametrize(
    "config",
    [
        {"CONSENT_COOKIE_DOMAIN": "example.com"},
        {"CONSENT_COOKIE_PATH": "/app"},
        {"CONSENT_COOKIE_SECURE": False},
    ],
)
def test_host_prefix_rules_are_checked(new_app, policy: Policy, config: dict) -> None:
    app = new_app(CONSENT_COOKIE_NAME="__Host-consent", **config)
    with pytest.raises(ConfigurationError) as info:
        Consent(app, policy)
    assert "the cookie must be Secure, have Path=/ and no Domain" in str(info.value)


def test_host_prefix_cookie_is_secure_and_host_only(
    new_app, policy: Policy, csrf_token
) -> None:
    app = new_app(CONSENT_COOKIE_NAME="__Host-consent", CONSENT_COOKIE_SECURE=True)
    Consent(app, policy)
    client = app.test_client()
    token = csrf_token(client.get("/consent/preferences").text)
    response = client.post(
        "/consent", data={"action": "reject_all", "csrf_token": token}
    )
    (header,) = [
        h
        for h in response.headers.getlist("Set-Cookie")
        if h.startswith("__Host-consent=")
    ]
    assert "Secure" in header
    assert "Path=/" in header
    assert "Domain=" not in header


@pytest.mark.parametrize("max_age", [timedelta(days=396), 396 * 86400])
def test_max_age_over_13_months_fails(new_app, policy: Policy, max_age: t.Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        Consent(new_app(CONSENT_MAX_AGE=max_age), policy)
    assert str(info.value).startswith("CONSENT_MAX_AGE is 396 days: a choice must last")


def test_configured_max_age_is_used(new_app, policy: Policy, csrf_token) -> None:
    app = new_app(CONSENT_MAX_AGE=timedelta(days=30))
    Consent(app, policy)
    assert app.extensions["consent"].policy_for(app).max_age == timedelta(days=30)
    client = app.test_client()
    token = csrf_token(client.get("/consent/preferences").text)
    response = client.post(
        "/consent", data={"action": "reject_all", "csrf_token": token}
    )
    (header,) = [
        h for h in response.headers.getlist("Set-Cookie") if h.startswith("consent=")
    ]
    max_age = int(re.search(r"Max-Age=(\d+)", header)[1])  # type: ignore[index]
    assert abs(max_age - 30 * 86400) <= 2
    declared = client.get("/consent/declaration.json").get_json()
    durations = {
        c["name"]: c["duration"]
        for category in declared["categories"]
        for c in category["cookies"]
    }
    assert durations["consent"] == "30 days"


@pytest.mark.parametrize("prefix", ["consent", "/", "", None, 7])
def test_bad_url_prefix_fails(new_app, policy: Policy, prefix: t.Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        Consent(new_app(CONSENT_URL_PREFIX=prefix), policy)
    assert "CONSENT_URL_PREFIX must be a path such as '/consent'" in str(info.value)


def test_default_language_must_be_configured(new_app, policy: Policy) -> None:
    app = new_app(CONSENT_LANGUAGES=["en"], CONSENT_DEFAULT_LANGUAGE="de")
    with pytest.raises(ConfigurationError) as info:
        Consent(app, policy)
    assert str(info.value) == (
        "CONSENT_DEFAULT_LANGUAGE 'de' is not one of CONSENT_LANGUAGES (en)."
    )


def test_language_selector_must_be_callable(new_app, policy: Policy) -> None:
    with pytest.raises(ConfigurationError, match="must be a callable"):
        Consent(new_app(CONSENT_LANGUAGE_SELECTOR="en"), policy)


def test_no_policy_fails(new_app, policy: Policy) -> None:
    with pytest.raises(ConfigurationError) as info:
        Consent(new_app())
    assert "Consent needs a policy" in str(info.value)
    with pytest.raises(ConfigurationError, match="Consent needs a policy"):
        Consent().init_app(new_app())


def test_defaults_are_applied_without_overwriting(new_app, policy: Policy) -> None:
    app = new_app(CONSENT_COOKIE_NAME="choice", CONSENT_AUTO_INJECT=False)
    Consent(app, policy)
    assert app.config["CONSENT_COOKIE_NAME"] == "choice"
    assert app.config["CONSENT_AUTO_INJECT"] is False
    for key, value in DEFAULT_CONFIG.items():
        assert key.startswith("CONSENT_")
        if key not in ("CONSENT_COOKIE_NAME", "CONSENT_AUTO_INJECT"):
            assert app.config[key] == value


def test_configured_cookie_name_is_used(new_app, policy: Policy, csrf_token) -> None:
    app = new_app(CONSENT_COOKIE_NAME="choice")
    Consent(app, policy)
    client = app.test_client()
    token = csrf_token(client.get("/consent/preferences").text)
    assert client.get_cookie("choice_csrf") is not None
    client.post("/consent", data={"action": "accept_all", "csrf_token": token})
    assert client.get_cookie("choice") is not None
    assert client.get_cookie("consent") is None


def test_extension_is_registered(new_app, policy: Policy) -> None:
    app = new_app()
    ext = Consent(app, policy)
    assert app.extensions["consent"] is ext
    assert "consent" in app.blueprints
    assert not hasattr(ext, "app")


def test_app_factory_with_two_apps(new_app, policy: Policy, csrf_token) -> None:
    ext = Consent(policy=policy)

    def create_app(**config: t.Any) -> Flask:
        app = new_app(**config)
        ext.init_app(app)

        @app.get("/")
        def index() -> str:
            return "<html><body><p>Page</p></body></html>"

        return app

    first = create_app(SECRET_KEY=KEY, CONSENT_COOKIE_NAME="first")
    second = create_app(SECRET_KEY=KEY[::-1], CONSENT_COOKIE_NAME="second")
    assert first.extensions["consent"] is second.extensions["consent"] is ext
    assert ext.site(first).settings.cookie_name == "first"
    assert ext.site(second).settings.cookie_name == "second"

    client = first.test_client()
    token = csrf_token(client.get("/").text)
    client.post("/consent", data={"action": "accept_all", "csrf_token": token})
    value = client.get_cookie("first").value
    assert BANNER not in client.get("/").text

    # The second app has its own key: the first app's cookie means nothing.
    other = second.test_client()
    other.set_cookie("second", value)
    assert BANNER in other.get("/").text
    assert other.get("/consent").get_json()["choices"]["analytics"] is False


def test_settings_of_an_app_without_init_app(new_app, policy: Policy) -> None:
    ext = Consent(policy=policy)
    with pytest.raises(RuntimeError, match="call init_app"):
        ext.site(new_app())


def test_url_prefix_moves_the_endpoints(new_app, policy: Policy, csrf_token) -> None:
    app = new_app(CONSENT_URL_PREFIX="/privacy/consent")
    Consent(app, policy)

    @app.get("/")
    def index() -> str:
        return "<html><body><p>Page</p></body></html>"

    client = app.test_client()
    html = client.get("/").text
    assert 'action="/privacy/consent"' in html
    assert 'href="/privacy/consent/declaration"' in html
    assert client.get("/privacy/consent/preferences").status_code == 200
    assert client.get("/privacy/consent/declaration").status_code == 200
    assert client.get("/privacy/consent/declaration.json").status_code == 200
    assert client.get("/privacy/consent").is_json
    assert client.get("/consent/preferences").status_code == 404
    token = csrf_token(html)
    response = client.post(
        "/privacy/consent", data={"action": "reject_all", "csrf_token": token}
    )
    assert response.status_code == 303
    assert client.get_cookie("consent") is not None


def test_shipped_languages_include_english() -> None:
    assert "en" in available_languages()


@pytest.mark.parametrize("language", available_languages())
def test_accept_language_picks_a_shipped_language(app, language: str) -> None:
    client = app.test_client()
    response = client.get("/", headers={"Accept-Language": f"{language}, en;q=0.1"})
    assert banner_language(response.text) == language
    accept = Translator(language)("button.accept_all")
    assert f">{escape(accept)}</button>" in response.text


#: Languages with no shipped catalogue (at least Klingon stays that way).
UNSHIPPED = [tag for tag in ("de", "fr", "tlh") if tag not in available_languages()]


@pytest.mark.parametrize("language", UNSHIPPED)
def test_unshipped_language_falls_back_to_the_default(app, language: str) -> None:
    header = f"{language}-XX, {language};q=0.9"
    response = app.test_client().get("/", headers={"Accept-Language": header})
    assert banner_language(response.text) == "en"
    assert "Accept all" in response.text


@pytest.mark.parametrize("header", [None, "", "*", "en-GB,en;q=0.8"])
def test_default_language_without_a_usable_header(app, header: str | None) -> None:
    headers = {} if header is None else {"Accept-Language": header}
    response = app.test_client().get("/", headers=headers)
    assert banner_language(response.text) == "en"


def _app_with_klingon(new_app, policy: Policy, **config: t.Any) -> Flask:
    app = new_app(
        CONSENT_LANGUAGES=["en", "tlh"],
        CONSENT_TEXTS={"tlh": {"button.accept_all": "HIja'"}},
        **config,
    )
    Consent(app, policy)

    @app.get("/")
    def index() -> str:
        return "<html><body><p>Page</p></body></html>"

    return app


def test_configured_language_with_app_texts(new_app, policy: Policy) -> None:
    client = _app_with_klingon(new_app, policy).test_client()
    html = client.get("/", headers={"Accept-Language": "tlh"}).text
    assert banner_language(html) == "tlh"
    assert "HIja&#39;" in html
    # Texts the app did not translate fall back to English.
    assert "Reject all" in html
    html = client.get("/", headers={"Accept-Language": "en"}).text
    assert banner_language(html) == "en"
    assert "Accept all" in html


def test_language_selector_wins_over_the_header(new_app, policy: Policy) -> None:
    app = _app_with_klingon(new_app, policy, CONSENT_LANGUAGE_SELECTOR=lambda: "en_US")
    html = app.test_client().get("/", headers={"Accept-Language": "tlh"}).text
    assert banner_language(html) == "en"


@pytest.mark.parametrize("selected", [None, "", "fr"])
def test_language_selector_without_a_usable_answer(
    new_app, policy: Policy, selected
) -> None:
    app = _app_with_klingon(new_app, policy, CONSENT_LANGUAGE_SELECTOR=lambda: selected)
    html = app.test_client().get("/", headers={"Accept-Language": "tlh"}).text
    assert banner_language(html) == "tlh"

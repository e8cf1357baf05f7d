"""The Flask extension's own set-up: ``init_app``, app factories and several
apps, ``app.config`` defaults. The settings' messages are in
``test_settings.py``; what the extension does on requests is tested on every
adapter by the conformance suite (``tests/conformance``)."""

from __future__ import annotations

import collections.abc as cabc
import itertools
import typing as t
from pathlib import Path

import pytest
from flask import Flask
from flask import render_template_string
from flask import stream_template_string

from consent import ConfigurationError
from consent import Policy
from consent.flask import Consent
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


def test_extension_is_registered(new_app, policy: Policy) -> None:
    app = new_app()
    ext = Consent(app, policy)
    assert app.extensions["consent"] is ext
    assert "consent" in app.blueprints
    assert not hasattr(ext, "app")


def test_templates_find_the_helpers_without_globals(new_app, policy: Policy) -> None:
    """Rendered, streamed and string templates find the helpers and
    ``consent`` by name; none of them is a Jinja global, which Jinja would
    copy into every render."""
    app = new_app()
    Consent(app, policy)
    source = (
        '{{ consent.allows("analytics") }} {{ consent_script("analytics", "/a.js") }}'
    )

    @app.get("/string")
    def string() -> str:
        return render_template_string(source)

    @app.get("/stream")
    def stream() -> t.Any:
        return stream_template_string(source)

    assert not {"consent", "consent_script", "consent_head"} & set(
        app.jinja_env.globals
    )
    client = app.test_client()
    for path in ("/string", "/stream"):
        html = client.get(path).text
        assert html.startswith("False <script")
        assert 'data-consent-src="/a.js"' in html


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


def test_shipped_languages_include_english() -> None:
    assert "en" in available_languages()


@pytest.mark.parametrize(
    ("config", "setting"),
    [
        ({"CONSENT_COOKIE_SAMESITE": "lax"}, "CONSENT_COOKIE_SAMESITE"),
        ({"CONSENT_MAX_AGE": 396 * 86400}, "CONSENT_MAX_AGE"),
        ({"CONSENT_URL_PREFIX": "/"}, "CONSENT_URL_PREFIX"),
        ({"CONSENT_UNDECLARED": "drop"}, "CONSENT_UNDECLARED"),
        ({"CONSENT_PROFILE": "california"}, "CONSENT_PROFILE"),
        ({"CONSENT_PROFILE_SELECTOR": "us"}, "CONSENT_PROFILE_SELECTOR"),
        (
            {"CONSENT_GCM_MAPPING": {"analytics": ["analytic_storage"]}},
            "analytic_storage",
        ),
    ],
)
def test_misconfiguration_fails_in_init_app(
    new_app, policy: Policy, config: dict[str, t.Any], setting: str
) -> None:
    # Each message is checked in test_settings.py; here: it fails at once.
    app = new_app(**config)
    with pytest.raises(ConfigurationError, match=setting):
        Consent(app, policy)
    assert "consent" not in app.extensions

"""Settings that cannot work fail when the app starts, with a message that
names the setting and says what to do; no app is needed to check them."""

from __future__ import annotations

import typing as t
from datetime import timedelta

import pytest

from consent import ConfigurationError
from consent import Policy
from consent import framing_headers
from consent.i18n import available_languages
from consent.settings import DEFAULTS
from consent.settings import Settings
from tests.conftest import make_policy
from tests.factories import gpc_policy

KEY = "a secret key of the settings tests, long enough"


def read(policy: Policy | None = None, **config: t.Any) -> Settings:
    """The settings of ``config``, signed with :data:`KEY`."""
    return Settings.from_mapping(config, policy or make_policy(), secret_keys=[KEY])


def error_of(policy: Policy | None = None, **config: t.Any) -> str:
    with pytest.raises(ConfigurationError) as info:
        read(policy, **config)
    return str(info.value)


def test_defaults_are_valid() -> None:
    settings = read()
    assert settings.cookie_name == "consent"
    assert settings.csrf_cookie_name == "consent_csrf"
    assert settings.url_prefix == DEFAULTS["CONSENT_URL_PREFIX"]
    assert settings.secret_keys == (KEY,)


def test_no_secret_key() -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_mapping({}, make_policy())
    assert str(info.value) == (
        "Consent signs its cookie: set CONSENT_SECRET_KEY (or the app's"
        " SECRET_KEY) to a long random secret."
    )


def test_consent_secret_key_alone_is_enough() -> None:
    settings = Settings.from_mapping({"CONSENT_SECRET_KEY": KEY}, make_policy())
    assert settings.secret_keys == (KEY,)


@pytest.mark.parametrize("samesite", ["lax", "Sometimes", ""])
def test_bad_samesite(samesite: str) -> None:
    assert (
        "CONSENT_COOKIE_SAMESITE must be one of 'Strict', 'Lax', 'None', None"
        in error_of(CONSENT_COOKIE_SAMESITE=samesite)
    )


def test_samesite_none_needs_secure() -> None:
    message = error_of(CONSENT_COOKIE_SAMESITE="None", CONSENT_COOKIE_SECURE=False)
    assert "browsers refuse without Secure" in message


@pytest.mark.parametrize(
    "config",
    [
        {"CONSENT_COOKIE_DOMAIN": "example.com"},
        {"CONSENT_COOKIE_PATH": "/app"},
        {"CONSENT_COOKIE_SECURE": False},
    ],
)
def test_host_prefix_rules_are_checked(config: dict[str, t.Any]) -> None:
    message = error_of(CONSENT_COOKIE_NAME="__Host-consent", **config)
    assert "the cookie must be Secure, have Path=/ and no Domain" in message


@pytest.mark.parametrize("max_age", [timedelta(days=396), 396 * 86400])
def test_max_age_over_13_months(max_age: t.Any) -> None:
    assert error_of(CONSENT_MAX_AGE=max_age).startswith(
        "CONSENT_MAX_AGE is 396 days: a choice must last"
    )


def test_configured_max_age_is_the_policys() -> None:
    settings = read(CONSENT_MAX_AGE=timedelta(days=30))
    assert settings.policy.max_age == timedelta(days=30)


@pytest.mark.parametrize("prefix", ["consent", "/", "", None, 7])
def test_bad_url_prefix(prefix: t.Any) -> None:
    assert "CONSENT_URL_PREFIX must be a path such as '/consent'" in error_of(
        CONSENT_URL_PREFIX=prefix
    )


def test_default_language_must_be_configured() -> None:
    message = error_of(CONSENT_LANGUAGES=["en"], CONSENT_DEFAULT_LANGUAGE="de")
    assert message == (
        "CONSENT_DEFAULT_LANGUAGE 'de' is not one of CONSENT_LANGUAGES (en)."
    )


@pytest.mark.parametrize("languages", ["en,fr", b"en", ["en", ""], ["en", 3], 7, []])
def test_languages_must_be_a_list_of_tags(languages: t.Any) -> None:
    assert error_of(CONSENT_LANGUAGES=languages).startswith("CONSENT_LANGUAGES must ")


def test_a_language_needs_a_catalogue_or_texts_of_its_own() -> None:
    message = error_of(CONSENT_LANGUAGES=["en", "xx", "EN-gb"])
    assert message.startswith(
        "CONSENT_LANGUAGES names 'xx', 'EN-gb', which have no catalogue and no"
        " CONSENT_TEXTS: translate the texts there, or use a shipped catalogue"
        " (ar, bg,"
    )
    # Texts for every language ('*') do not make one a translation.
    assert "names 'xx', which has no catalogue" in error_of(
        CONSENT_LANGUAGES=["en", "xx"], CONSENT_TEXTS={"*": {"banner.title": "Hi"}}
    )
    settings = read(
        CONSENT_LANGUAGES=("fr", "en", "xx", "fr"),
        CONSENT_TEXTS={"xx": {"banner.title": "Xx"}},
    )
    assert settings.languages == ("fr", "en", "xx")
    # Any iterable, read once.
    assert read(CONSENT_LANGUAGES=iter(["fr", "en"])).languages == ("fr", "en")
    assert read(CONSENT_LANGUAGES=None).languages == available_languages()


def test_language_selector_must_be_callable() -> None:
    message = error_of(CONSENT_LANGUAGE_SELECTOR="en")
    assert message.startswith("CONSENT_LANGUAGE_SELECTOR ")
    assert "must be a callable" in message


def test_unknown_undeclared_action() -> None:
    assert "CONSENT_UNDECLARED" in error_of(CONSENT_UNDECLARED="drop")


def test_unknown_profile_name() -> None:
    assert "CONSENT_PROFILE" in error_of(gpc_policy(), CONSENT_PROFILE="california")


def test_profile_selector_must_be_callable() -> None:
    message = error_of(gpc_policy(), CONSENT_PROFILE_SELECTOR="us")
    assert "CONSENT_PROFILE_SELECTOR" in message


def test_unknown_consent_type_in_the_consent_mode_mapping() -> None:
    message = error_of(CONSENT_GCM_MAPPING={"analytics": ["analytic_storage"]})
    assert "CONSENT_GCM_MAPPING" in message
    assert "analytic_storage" in message


def test_unknown_setting_is_named() -> None:
    message = error_of(CONSENT_COOKIE_NAMES="choice")
    assert message.startswith("Unknown setting CONSENT_COOKIE_NAMES")


@pytest.mark.parametrize("value", ["*", "'self' https://partner.example", ""])
def test_frame_ancestors_is_self_none_or_left_to_the_app(value: str) -> None:
    assert "CONSENT_FRAME_ANCESTORS" in error_of(CONSENT_FRAME_ANCESTORS=value)


def test_framing_headers_for_an_app() -> None:
    assert framing_headers() == [
        ("Content-Security-Policy", "frame-ancestors 'self'"),
        ("X-Frame-Options", "SAMEORIGIN"),
    ]
    assert framing_headers("'none'")[1] == ("X-Frame-Options", "DENY")
    with pytest.raises(ValueError, match="ancestors"):
        framing_headers("*")


def test_unknown_text_keys_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="consent.settings"):
        read(CONSENT_TEXTS={"en": {"banner.titel": "Cookies", "banner.title": "C"}})
    (record,) = caplog.records
    assert "banner.titel" in record.getMessage()
    assert "banner.title," not in record.getMessage()


def test_known_text_keys_are_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="consent.settings"):
        read(CONSENT_TEXTS={"*": {"banner.title": "Cookies on Example"}})
    assert caplog.records == []

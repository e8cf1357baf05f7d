from __future__ import annotations

import pytest

from consent import Category
from consent import Cookie
from consent import Policy
from consent.gcm import ALWAYS_GRANTED
from consent.gcm import CONSENT_TYPES
from consent.gcm import DEFAULT_MAPPING
from consent.gcm import consent_types
from consent.gcm import default_command
from consent.gcm import effective_mapping

SECRET_KEY = "a secret key for the consent mode tests, long enough"
GTAG = "https://www.googletagmanager.com/gtag/js?id=G-TEST"
ADS = ["ad_storage", "ad_user_data", "ad_personalization"]
OPTIONAL_TYPES = [name for name in CONSENT_TYPES if name != "security_storage"]

PAGE = """\
<!doctype html>
<html><head>
{{ consent_mode_head(**gcm_args) }}
{{ consent_script("analytics", gtag, async=True) }}
</head><body><main>Article</main></body></html>
"""


def _cookie(name: str) -> Cookie:
    return Cookie(name=name, provider="A provider", purpose="A purpose", duration="1 y")


def make_policy(mode: str = "opt-in", exemption: str | None = None) -> Policy:
    return Policy(
        categories=(
            Category("necessary", "Strictly necessary", required=True),
            Category(
                "analytics",
                "Analytics",
                cookies=(_cookie("_ga"),),
                exemption=exemption,  # type: ignore[arg-type]
            ),
            Category("marketing", "Marketing", cookies=(_cookie("_gcl_au"),)),
            Category("preferences", "Preferences", cookies=(_cookie("theme"),)),
            Category("media", "Embedded media", cookies=(_cookie("yt"),)),
        ),
        mode=mode,  # type: ignore[arg-type]
    )


POLICY = make_policy()


# Unit tests of the mapping.


def test_seven_consent_types() -> None:
    assert CONSENT_TYPES == (
        "ad_storage",
        "ad_user_data",
        "ad_personalization",
        "analytics_storage",
        "functionality_storage",
        "personalization_storage",
        "security_storage",
    )
    assert ALWAYS_GRANTED == ("security_storage",)


def test_default_mapping() -> None:
    assert DEFAULT_MAPPING["analytics"] == ("analytics_storage",)
    assert list(DEFAULT_MAPPING["marketing"]) == ADS
    assert DEFAULT_MAPPING["preferences"] == (
        "functionality_storage",
        "personalization_storage",
    )
    assert all("security_storage" not in types for types in DEFAULT_MAPPING.values())


def test_effective_mapping_keeps_the_policy_keys() -> None:
    assert effective_mapping(POLICY) == {
        "analytics": ["analytics_storage"],
        "marketing": ADS,
        "preferences": ["functionality_storage", "personalization_storage"],
    }


def test_effective_mapping_with_a_custom_mapping() -> None:
    mapping = {
        "media": ["ad_storage"],
        "analytics": ["analytics_storage", "personalization_storage"],
        "not_in_policy": ["ad_storage"],
    }
    assert effective_mapping(POLICY, mapping) == {
        "analytics": ["analytics_storage", "personalization_storage"],
        "media": ["ad_storage"],
    }


def test_effective_mapping_refuses_unknown_consent_types() -> None:
    with pytest.raises(ValueError, match="analytic_storage"):
        effective_mapping(POLICY, {"analytics": ["analytic_storage"]})


def test_consent_types_all_denied_but_security() -> None:
    values = consent_types(effective_mapping(POLICY), lambda key: False)
    assert list(values) == list(CONSENT_TYPES)
    assert values == {
        **dict.fromkeys(OPTIONAL_TYPES, "denied"),
        "security_storage": "granted",
    }


def test_consent_types_follow_allowed_keys() -> None:
    mapping = effective_mapping(POLICY)
    values = consent_types(mapping, lambda key: key == "analytics")
    assert values["analytics_storage"] == "granted"
    assert all(values[name] == "denied" for name in ADS)
    values = consent_types(mapping, lambda key: key in ("marketing", "preferences"))
    assert values == {
        **dict.fromkeys(CONSENT_TYPES, "granted"),
        "analytics_storage": "denied",
    }


def test_a_type_is_granted_when_any_key_grants_it() -> None:
    mapping = {"analytics": ["analytics_storage"], "stats": ["analytics_storage"]}
    values = consent_types(mapping, lambda key: key == "stats")
    assert values["analytics_storage"] == "granted"


def test_default_command() -> None:
    assert default_command() == {
        **dict.fromkeys(OPTIONAL_TYPES, "denied"),
        "security_storage": "granted",
        "wait_for_update": 500,
    }
    command = default_command(wait_for_update=1200, region=("DE", "FR"))
    assert command["wait_for_update"] == 1200
    assert command["region"] == ["DE", "FR"]
    assert "region" not in default_command(region=[])

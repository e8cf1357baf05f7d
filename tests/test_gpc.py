from __future__ import annotations

import dataclasses
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import pytest

from consent import Category
from consent import ConfigurationError
from consent import ConsentState
from consent import Policy
from consent import Service
from consent import allows
from consent import decide
from consent import needs_banner
from consent.gpc import EU
from consent.gpc import NOTICE
from consent.gpc import PROFILES
from consent.gpc import UK
from consent.gpc import US
from consent.gpc import Profile
from consent.gpc import gpc_support_resource
from consent.gpc import has_gpc
from consent.gpc import profile_for_country
from consent.state import gpc_state
from tests.factories import gpc_policy

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
LATER = NOW + timedelta(days=3)


make_policy = gpc_policy


POLICY = make_policy()
OPTIONAL = ("analytics", "marketing", "media", "westlake_map", "video")


def choices(state: ConsentState | None, policy: Policy = POLICY, **kw) -> dict:
    return {key: allows(state, policy, key, LATER, **kw) for key in OPTIONAL}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["1"], True),
        (["0", "1"], True),
        (["1", "0"], True),
        ([], False),
        (["0"], False),
        (["true"], False),
        ([" 1 "], False),
        (["1 "], False),
        (["01"], False),
        (["yes"], False),
        ([""], False),
    ],
)
def test_has_gpc_only_exactly_one(values: list[str], expected: bool) -> None:
    assert has_gpc(values) is expected


def test_has_gpc_reads_any_iterable() -> None:
    assert has_gpc(iter(["0", "1"]))
    assert not has_gpc(v for v in ("0", "false"))


def test_gpc_support_resource() -> None:
    assert gpc_support_resource("2026-01-15") == {
        "gpc": True,
        "lastUpdate": "2026-01-15",
    }


def test_builtin_profiles() -> None:
    assert (EU.name, EU.mode, EU.exemptions, EU.honors_gpc) == (
        "eu",
        "opt-in",
        frozenset(),
        True,
    )
    assert (UK.name, UK.mode, UK.exemptions) == (
        "uk",
        "opt-in",
        frozenset({"statistics"}),
    )
    assert (US.name, US.mode, US.honors_gpc) == ("us", "opt-out", True)
    assert (NOTICE.name, NOTICE.mode) == ("notice", "notice")
    assert PROFILES == {"eu": EU, "uk": UK, "us": US, "notice": NOTICE}


def test_profiles_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        EU.mode = "opt-out"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("country", "profile"),
    [
        ("DE", EU),
        ("de", EU),
        (" FR ", EU),
        ("NO", EU),
        ("IS", EU),
        ("GB", UK),
        ("UK", UK),
        ("gb", UK),
        ("US", US),
        ("us", US),
        ("XX", EU),
        ("CN", EU),
        ("", EU),
        (None, EU),
    ],
)
def test_profile_for_country(country: str | None, profile: Profile) -> None:
    assert profile_for_country(country) is profile


def test_profile_for_unknown_country_takes_the_default() -> None:
    assert profile_for_country("JP", default=US) is US
    assert profile_for_country(None, default=UK) is UK
    assert profile_for_country("DE", default=US) is EU


def test_sale_or_sharing_keys() -> None:
    assert POLICY.sale_or_sharing_keys == frozenset({"marketing", "video"})
    assert POLICY.is_sale_or_sharing("marketing")
    assert POLICY.is_sale_or_sharing("video")
    assert not POLICY.is_sale_or_sharing("westlake_map")
    assert not POLICY.is_sale_or_sharing("media")


def test_services_of_a_sale_category_are_sale_too() -> None:
    policy = Policy(
        categories=(
            Category("necessary", "Strictly necessary", required=True),
            Category(
                "marketing",
                "Marketing",
                sale_or_sharing=True,
                services=(Service("pixel", "Pixel"),),
            ),
        )
    )
    assert policy.sale_or_sharing_keys == frozenset({"marketing", "pixel"})


def test_modes_without_a_choice() -> None:
    assert choices(None) == dict.fromkeys(OPTIONAL, False)
    assert choices(None, make_policy("opt-out")) == dict.fromkeys(OPTIONAL, True)


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        (EU, dict.fromkeys(OPTIONAL, False)),
        (UK, {**dict.fromkeys(OPTIONAL, False), "analytics": True}),
        (US, dict.fromkeys(OPTIONAL, True)),
        (NOTICE, dict.fromkeys(OPTIONAL, False)),
    ],
)
def test_profile_decides_without_a_choice(profile: Profile, expected: dict) -> None:
    assert choices(None, profile=profile) == expected


def test_profile_overrides_the_policy_mode() -> None:
    opt_out = make_policy("opt-out")
    assert choices(None, opt_out, profile=EU) == dict.fromkeys(OPTIONAL, False)


def test_uk_exemption_ends_with_an_objection() -> None:
    rejected = decide(POLICY, "reject_all", now=NOW)
    assert choices(rejected, profile=UK) == dict.fromkeys(OPTIONAL, False)


def test_required_is_allowed_in_every_mode() -> None:
    for profile in (EU, UK, US, NOTICE, None):
        assert allows(None, POLICY, "necessary", LATER, profile)


def test_gpc_state_without_a_choice_records_the_signal() -> None:
    state = gpc_state(POLICY, now=NOW)
    assert state.method == "gpc"
    assert state.gpc is True
    assert state.granted == frozenset()
    assert state.given_at == NOW
    assert state.revision == POLICY.revision
    assert len(state.consent_id) == 22
    # A signal refuses; it is no choice, so the banner still asks.
    assert needs_banner(state, POLICY, LATER)


def test_gpc_state_refuses_sale_even_in_opt_out_modes() -> None:
    state = gpc_state(POLICY, now=NOW)
    expected = {
        "analytics": True,
        "marketing": False,
        "media": True,
        "westlake_map": True,
        "video": False,
    }
    assert choices(state, profile=US) == expected
    assert choices(state, make_policy("opt-out")) == expected
    assert choices(state, profile=UK) == {
        **dict.fromkeys(OPTIONAL, False),
        "analytics": True,
    }


def test_gpc_state_keeps_a_current_choice_less_sale() -> None:
    accepted = decide(POLICY, "accept_all", now=NOW)
    state = gpc_state(POLICY, now=NOW + timedelta(hours=1), previous=accepted)
    assert state.gpc is True
    assert state.method == "banner"
    assert state.consent_id == accepted.consent_id
    assert state.given_at == accepted.given_at
    assert state.granted == frozenset({"analytics", "media", "westlake_map"})
    assert not needs_banner(state, POLICY, LATER)
    assert choices(state)["marketing"] is False
    assert choices(state)["video"] is False


def test_gpc_state_after_an_expired_choice_keeps_the_consent_id() -> None:
    old = decide(POLICY, "accept_all", now=NOW - POLICY.max_age - timedelta(days=1))
    state = gpc_state(POLICY, now=NOW, previous=old)
    assert state.method == "gpc"
    assert state.granted == frozenset()
    assert state.consent_id == old.consent_id


def test_gpc_opt_out_persists_without_the_signal() -> None:
    state = gpc_state(POLICY, now=NOW)
    # No new signal is needed: the stored opt-out keeps refusing.
    for profile in (US, EU, UK, None):
        assert not allows(state, POLICY, "marketing", LATER, profile)


def test_accept_all_under_gpc_keeps_sale_refused() -> None:
    signal = gpc_state(POLICY, now=NOW)
    state = decide(POLICY, "accept_all", now=LATER, previous=signal)
    assert state.gpc is True
    assert state.consent_id == signal.consent_id
    assert state.granted == frozenset({"analytics", "media", "westlake_map"})
    assert choices(state, profile=US)["marketing"] is False


def test_explicit_save_under_gpc_can_grant_sale() -> None:
    signal = gpc_state(POLICY, now=NOW)
    state = decide(
        POLICY,
        "save",
        now=LATER,
        chosen=["marketing", "video"],
        previous=signal,
        method="preferences",
    )
    assert state.gpc is True
    assert state.method == "preferences"
    assert allows(state, POLICY, "marketing", LATER, US)
    assert allows(state, POLICY, "video", LATER, US)
    assert not allows(state, POLICY, "westlake_map", LATER, US)


def test_accept_all_without_gpc_grants_sale() -> None:
    state = decide(POLICY, "accept_all", now=NOW)
    assert state.gpc is False
    assert state.granted == frozenset(POLICY.choice_keys)


def test_notice_mode_policy_needs_only_required_categories() -> None:
    with pytest.raises(ConfigurationError, match="notice"):
        make_policy("notice")
    policy = Policy(
        categories=(Category("necessary", "Strictly necessary", required=True),),
        mode="notice",
    )
    assert policy.choice_keys == ()


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="mode"):
        make_policy("implied")


def test_unknown_exemption_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="exemption"):
        Category("analytics", "Analytics", exemption="marketing")  # type: ignore[arg-type]

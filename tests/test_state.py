from __future__ import annotations

import dataclasses
import itertools
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import pytest

from consent import Category
from consent import ConsentState
from consent import Policy
from consent import Service
from consent import UnknownCategoryError
from consent import allows
from consent import decide
from consent import needs_banner

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def state_for(policy: Policy, *granted: str, **fields: object) -> ConsentState:
    values: dict[str, object] = {
        "granted": frozenset(granted),
        "given_at": NOW,
        "revision": policy.revision,
        "consent_id": "AAAAAAAAAAAAAAAAAAAAAA",
    }
    values.update(fields)
    return ConsentState(**values)  # type: ignore[arg-type]


def test_no_state_needs_banner(policy) -> None:
    assert needs_banner(None, policy, NOW)


def test_current_state_needs_no_banner(policy) -> None:
    state = state_for(policy)
    assert not needs_banner(state, policy, NOW)
    assert not state.needs_banner(policy, NOW + timedelta(days=181))


def test_state_of_another_revision_needs_banner(policy) -> None:
    state = state_for(policy, "analytics", revision="older")
    assert needs_banner(state, policy, NOW)
    assert not allows(state, policy, "analytics", NOW)


def test_state_expires_at_exactly_max_age(policy) -> None:
    state = state_for(policy, "analytics")
    just_before = NOW + policy.max_age - timedelta(microseconds=1)
    assert not needs_banner(state, policy, just_before)
    assert allows(state, policy, "analytics", just_before)
    assert needs_banner(state, policy, NOW + policy.max_age)
    assert not allows(state, policy, "analytics", NOW + policy.max_age)


def test_state_from_far_in_the_future_is_not_trusted(policy) -> None:
    assert not needs_banner(state_for(policy), policy, NOW - timedelta(minutes=4))
    assert needs_banner(state_for(policy), policy, NOW - timedelta(hours=1))


def test_required_category_and_its_services_are_always_allowed() -> None:
    policy = Policy(
        (
            Category(
                "necessary",
                "Necessary",
                required=True,
                services=(Service("login", "Login"),),
            ),
            Category("analytics", "Analytics"),
        )
    )
    refused = state_for(policy)
    for state in (None, refused):
        assert allows(state, policy, "necessary", NOW)
        assert allows(state, policy, "login", NOW)


def test_optional_key_is_refused_without_state(policy) -> None:
    for key in policy.choice_keys:
        assert not allows(None, policy, key, NOW)


@pytest.mark.parametrize(
    "granted",
    [
        frozenset(keys)
        for n in range(4)
        for keys in itertools.combinations(("analytics", "media", "westlake_map"), n)
    ],
    ids=lambda keys: "+".join(sorted(keys)) or "nothing",
)
def test_allows_exactly_what_was_granted(policy, granted: frozenset[str]) -> None:
    state = state_for(policy, *granted)
    for key in policy.choice_keys:
        assert allows(state, policy, key, NOW) == (key in granted)
        assert state.allows(policy, key, NOW) == (key in granted)
    assert state.choices(policy) == {k: k in granted for k in policy.choice_keys}


@pytest.mark.parametrize("key", ["marketing", "Analytics", ""])
def test_unknown_key_raises(policy, key: str) -> None:
    with pytest.raises(UnknownCategoryError):
        allows(None, policy, key, NOW)
    with pytest.raises(LookupError):
        allows(state_for(policy), policy, key, NOW)


def test_accept_all_grants_every_optional_key(policy) -> None:
    state = decide(policy, "accept_all", now=NOW)
    assert state.granted == frozenset(policy.choice_keys)
    assert "necessary" not in state.granted
    assert state.given_at == NOW
    assert state.revision == policy.revision
    assert state.method == "banner"
    assert not state.needs_banner(policy, NOW)


def test_reject_all_grants_nothing(policy) -> None:
    state = decide(policy, "reject_all", now=NOW, method="preferences")
    assert state.granted == frozenset()
    assert state.method == "preferences"
    # A refusal is a choice too: it is not asked again.
    assert not state.needs_banner(policy, NOW)


def test_save_with_nothing_chosen_equals_reject_all(policy) -> None:
    saved = decide(policy, "save", now=NOW, chosen=())
    rejected = decide(policy, "reject_all", now=NOW)
    assert saved.granted == rejected.granted == frozenset()


@pytest.mark.parametrize(
    ("chosen", "granted"),
    [
        ((), set()),
        (("analytics",), {"analytics"}),
        (("media",), {"media", "westlake_map"}),
        (("westlake_map",), {"media", "westlake_map"}),
        (("media", "westlake_map"), {"media", "westlake_map"}),
        (("analytics", "media"), {"analytics", "media", "westlake_map"}),
        (("analytics", "westlake_map"), {"analytics", "media", "westlake_map"}),
        (
            ("analytics", "media", "westlake_map"),
            {"analytics", "media", "westlake_map"},
        ),
    ],
    ids=lambda v: "+".join(v) if isinstance(v, tuple) else None,
)
def test_save_grants_exactly_the_chosen_subset(
    policy, chosen: tuple[str, ...], granted: set[str]
) -> None:
    state = decide(policy, "save", now=NOW, chosen=chosen)
    assert state.granted == frozenset(granted)


def test_chosen_service_does_not_bring_its_siblings() -> None:
    policy = Policy(
        (
            Category("necessary", "Necessary", required=True),
            Category(
                "marketing",
                "Marketing",
                services=(Service("ads", "Ads"), Service("pixel", "Pixel")),
            ),
        )
    )
    assert decide(policy, "save", now=NOW, chosen=["ads"]).granted == {
        "marketing",
        "ads",
    }
    assert decide(policy, "save", now=NOW, chosen=["marketing"]).granted == {
        "marketing",
        "ads",
        "pixel",
    }
    both = decide(policy, "save", now=NOW, chosen=["marketing", "pixel"])
    assert both.granted == {"marketing", "pixel"}


@pytest.mark.parametrize("chosen", [["marketing"], ["necessary"], ["analytics", "x"]])
def test_save_with_unknown_or_required_key_raises(policy, chosen: list[str]) -> None:
    with pytest.raises(UnknownCategoryError) as info:
        decide(policy, "save", now=NOW, chosen=chosen)
    assert "only the optional categories and services" in str(info.value)


def test_new_choice_gets_a_random_consent_id(policy) -> None:
    first = decide(policy, "accept_all", now=NOW)
    second = decide(policy, "accept_all", now=NOW)
    assert first.consent_id != second.consent_id
    assert len(first.consent_id) == 22


def test_consent_id_is_kept_from_previous(policy) -> None:
    previous = decide(policy, "accept_all", now=NOW)
    later = NOW + timedelta(days=3)
    state = decide(policy, "reject_all", now=later, previous=previous)
    assert state.consent_id == previous.consent_id
    assert state.given_at == later
    assert state.granted == frozenset()


def test_consent_id_is_kept_from_another_revision(policy) -> None:
    previous = state_for(policy, revision="older", consent_id="B" * 22)
    state = decide(policy, "accept_all", now=NOW, previous=previous)
    assert state.consent_id == "B" * 22
    assert state.revision == policy.revision


def test_gpc_flag_is_kept_from_previous(policy) -> None:
    previous = state_for(policy, gpc=True)
    assert decide(policy, "accept_all", now=NOW, previous=previous).gpc


@pytest.fixture
def opt_out_policy(policy) -> Policy:
    media = dataclasses.replace(policy.category("media"), sale_or_sharing=True)
    categories = tuple(media if c.key == "media" else c for c in policy.categories)
    return Policy(categories, mode="opt-out")


def test_opt_out_allows_optional_keys_until_refused(opt_out_policy) -> None:
    policy = opt_out_policy
    for key in policy.choice_keys:
        assert allows(None, policy, key, NOW)
    # The banner still shows, to offer the refusal.
    assert needs_banner(None, policy, NOW)
    refused = decide(policy, "reject_all", now=NOW)
    for key in policy.choice_keys:
        assert not allows(refused, policy, key, NOW)
    assert not needs_banner(refused, policy, NOW)


def test_opt_out_expired_refusal_falls_back_to_the_default(opt_out_policy) -> None:
    policy = opt_out_policy
    refused = decide(policy, "reject_all", now=NOW)
    later = NOW + policy.max_age
    assert needs_banner(refused, policy, later)
    assert allows(refused, policy, "analytics", later)


def test_opt_out_privacy_signal_refuses_sale_or_sharing(opt_out_policy) -> None:
    policy = opt_out_policy
    signal = state_for(policy, revision="older", gpc=True)
    assert allows(signal, policy, "analytics", NOW)
    assert not allows(signal, policy, "media", NOW)
    assert not allows(signal, policy, "westlake_map", NOW)


def test_opt_in_ignores_the_opt_out_default(policy) -> None:
    expired = state_for(policy, "analytics", given_at=NOW - policy.max_age)
    assert not allows(expired, policy, "analytics", NOW)

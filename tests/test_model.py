from __future__ import annotations

import dataclasses
import typing as t
from datetime import timedelta

import pytest

from consent import Category
from consent import ConfigurationError
from consent import Cookie
from consent import Policy
from consent import Service
from consent import UnknownCategoryError


def cookie(name: str = "", pattern: str = "", **fields: str) -> Cookie:
    values = {"provider": "This site", "purpose": "Counting.", "duration": "1 year"}
    values.update(fields)
    return Cookie(name=name, pattern=pattern, **values)


NECESSARY = Category("necessary", "Strictly necessary", required=True)


def policy_with(*categories: Category, **options: t.Any) -> Policy:
    return Policy((NECESSARY, *categories), **options)


def test_duplicate_category_keys_are_refused() -> None:
    with pytest.raises(ConfigurationError) as info:
        policy_with(Category("analytics", "Analytics"), Category("analytics", "Stats"))
    message = str(info.value)
    assert "'analytics' is used twice (as a category and as a category)" in message
    assert "give every category and service its own key" in message


def test_service_key_that_is_a_category_key_is_refused() -> None:
    with pytest.raises(ConfigurationError) as info:
        policy_with(
            Category("analytics", "Analytics"),
            Category("media", "Media", services=(Service("analytics", "Stats"),)),
        )
    assert "(as a category and as a service)" in str(info.value)


def test_same_service_key_in_two_categories_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="as a service and as a service"):
        policy_with(
            Category("media", "Media", services=(Service("map", "Map"),)),
            Category("marketing", "Marketing", services=(Service("map", "Map"),)),
        )


@pytest.mark.parametrize(
    "key", ["Analytics", "1st", "", "with space", "a" * 33, "ana.lytics", "é"]
)
def test_bad_category_key_is_refused(key: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Category(key, "Title")
    message = str(info.value)
    assert f"Category key {key!r} is not a valid key" in message
    assert "lowercase slug" in message


def test_bad_service_key_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="Service key 'West Lake'"):
        Service("West Lake", "West Lake map")


@pytest.mark.parametrize("key", ["analytics", "a", "west-lake_map2", "a" * 32])
def test_good_keys_are_accepted(key: str) -> None:
    assert Category(key, "Title").key == key
    assert Service(key, "Title").key == key


@pytest.mark.parametrize("title", ["", "   "])
def test_empty_title_is_refused(title: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Category("analytics", title)
    assert str(info.value) == (
        "Category 'analytics' has an empty title: give it a short title that"
        " visitors can read."
    )
    with pytest.raises(ConfigurationError, match="Service 'map' has an empty title"):
        Service("map", title)


def test_bad_pattern_is_refused() -> None:
    with pytest.raises(ConfigurationError) as info:
        cookie(pattern="_ga_[A-Z")
    message = str(info.value)
    assert "'_ga_[A-Z' is not a valid regular expression" in message
    assert "fix it or declare the exact name" in message
    assert isinstance(info.value.__cause__, Exception)


@pytest.mark.parametrize(
    ("name", "pattern"), [("", ""), ("_hz_analytics", r"_hz_[a-z]+")]
)
def test_cookie_needs_exactly_one_of_name_and_pattern(name: str, pattern: str) -> None:
    with pytest.raises(ConfigurationError, match="give exactly one of name="):
        cookie(name=name, pattern=pattern)


def test_cookie_name_with_bad_characters_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="characters a cookie name"):
        cookie(name="my cookie;")


@pytest.mark.parametrize("field", ["provider", "purpose", "duration"])
def test_cookie_needs_provider_purpose_and_duration(field: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        cookie(name="_hz_analytics", **{field: " "})
    assert str(info.value) == (
        f"Cookie '_hz_analytics' has an empty {field}: give it a short {field}"
        " that visitors can read."
    )


def test_cookie_party_is_checked() -> None:
    with pytest.raises(ConfigurationError, match="party must be 'first' or 'third'"):
        cookie(name="x", party="second")


@pytest.mark.parametrize(
    "tracker",
    [
        cookie(name="_ga"),
        cookie(pattern=r"_ga_.*"),
        cookie(pattern=r"_ga_[A-Z0-9]+"),
        cookie(name="_ga_ABC123"),
        cookie(name="_fbp"),
        cookie(name="_gid"),
        cookie(pattern=r"_g.*"),
    ],
    ids=lambda c: c.label,
)
def test_tracker_cookie_cannot_be_necessary(tracker: Cookie) -> None:
    necessary = Category("necessary", "Necessary", required=True, cookies=(tracker,))
    with pytest.raises(ConfigurationError) as info:
        Policy((necessary,))
    message = str(info.value)
    assert f"Cookie {tracker.label!r} is a well-known tracking cookie" in message
    assert "move it from 'necessary' to an optional category" in message


def test_tracker_cookie_of_a_necessary_service_is_refused() -> None:
    service = Service("stats", "Stats", cookies=(cookie(name="_ga"),))
    necessary = Category("necessary", "Necessary", required=True, services=(service,))
    with pytest.raises(ConfigurationError, match="'_ga' is a well-known tracking"):
        Policy((necessary,))


def test_tracker_cookie_in_an_optional_category_is_fine() -> None:
    analytics = Category(
        "analytics", "Analytics", cookies=(cookie(name="_ga"), cookie(name="_fbp"))
    )
    policy = policy_with(analytics)
    assert policy.classify("_ga") == (analytics, None)


def test_necessary_session_cookie_is_fine() -> None:
    necessary = Category(
        "necessary", "Necessary", required=True, cookies=(cookie(name="session"),)
    )
    assert Policy((necessary,)).category("necessary") is necessary


@pytest.mark.parametrize(
    "max_age", [timedelta(days=396), 396 * 86400, timedelta(0), -1]
)
def test_max_age_out_of_range_is_refused(max_age: timedelta | int) -> None:
    with pytest.raises(ConfigurationError) as info:
        policy_with(max_age=max_age)
    assert "must last between 1 second and 395 days" in str(info.value)


def test_max_age_of_13_months_and_seconds_are_accepted() -> None:
    assert policy_with(max_age=timedelta(days=395)).max_age == timedelta(days=395)
    assert policy_with(max_age=3600).max_age == timedelta(hours=1)
    assert policy_with().max_age == timedelta(days=182)


def test_policy_needs_a_required_category() -> None:
    with pytest.raises(ConfigurationError) as info:
        Policy((Category("analytics", "Analytics"),))
    assert "mark the category of strictly necessary cookies with required=True" in (
        str(info.value)
    )


def test_policy_needs_a_category() -> None:
    with pytest.raises(ConfigurationError, match="declares no category"):
        Policy(())


def test_required_category_without_cookies_is_fine() -> None:
    policy = Policy((NECESSARY,))
    assert policy.choice_keys == ()
    assert policy.optional_categories == ()
    assert policy.is_required("necessary")


@pytest.mark.parametrize("mode", ["opt-in", "opt-out", "notice"])
def test_modes_are_accepted(mode: str) -> None:
    assert policy_with(mode=mode).mode == mode


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="mode must be one of opt-in"):
        policy_with(mode="implied")


def test_empty_controller_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="empty name"):
        policy_with(controller=" ")


def test_auto_revision_is_stable_for_equal_policies(policy_factory) -> None:
    first, second = policy_factory(), policy_factory()
    assert first is not second
    assert first.revision == second.revision
    assert len(first.revision) == 8
    assert first.revision.replace("-", "").replace("_", "").isalnum()


def test_auto_revision_changes_when_a_cookie_is_added(policy_factory) -> None:
    extra = cookie(name="_hz_visit")
    assert policy_factory(extra).revision != policy_factory().revision


def test_auto_revision_changes_when_a_description_changes(policy) -> None:
    analytics = policy.category("analytics")
    changed = dataclasses.replace(analytics, description="Count visitors.")
    categories = tuple(
        changed if c.key == "analytics" else c for c in policy.categories
    )
    assert Policy(categories).revision != policy.revision


def test_auto_revision_changes_when_a_service_is_added(policy) -> None:
    media = policy.category("media")
    video = Service("video", "Video", provider="Video host")
    changed = dataclasses.replace(media, services=(*media.services, video))
    categories = tuple(changed if c.key == "media" else c for c in policy.categories)
    assert Policy(categories).revision != policy.revision


def test_auto_revision_ignores_what_visitors_are_not_asked_about(policy) -> None:
    assert Policy(policy.categories, max_age=3600).revision == policy.revision


def test_manual_revision_is_kept(policy) -> None:
    assert Policy(policy.categories, revision="2026-01").revision == "2026-01"
    assert Policy(policy.categories, revision="7").revision == "7"


@pytest.mark.parametrize("revision", ["2026.01", "a" * 17, "v 2", "é"])
def test_bad_manual_revision_is_refused(revision: str) -> None:
    with pytest.raises(ConfigurationError, match="must be 1 to 16 letters"):
        policy_with(revision=revision)


def test_choice_keys_are_optional_categories_each_followed_by_services() -> None:
    policy = Policy(
        (
            Category("media", "Media", services=(Service("map", "Map"),)),
            Category(
                "necessary",
                "Necessary",
                required=True,
                services=(Service("login", "Login"),),
            ),
            Category("analytics", "Analytics"),
            Category(
                "marketing",
                "Marketing",
                services=(Service("ads", "Ads"), Service("pixel", "Pixel")),
            ),
        )
    )
    assert policy.choice_keys == (
        "media",
        "map",
        "analytics",
        "marketing",
        "ads",
        "pixel",
    )
    assert [c.key for c in policy.optional_categories] == [
        "media",
        "analytics",
        "marketing",
    ]


def test_fixture_policy_choice_keys(policy) -> None:
    assert policy.choice_keys == ("analytics", "media", "westlake_map")


def test_classify_by_exact_name(policy) -> None:
    category, service = policy.classify("_hz_analytics")
    assert category.key == "analytics"
    assert service is None
    category, service = policy.classify("wl_map_pref")
    assert category.key == "media"
    assert service is not None and service.key == "westlake_map"


def test_classify_by_pattern() -> None:
    analytics = Category(
        "analytics", "Analytics", cookies=(cookie(pattern=r"_ga_[A-Z0-9]+"),)
    )
    policy = policy_with(analytics)
    assert policy.classify("_ga_ABC123") == (analytics, None)
    # The pattern must match the whole name.
    assert policy.classify("_ga_abc") is None
    assert policy.classify("x_ga_ABC") is None
    assert policy.classify("_ga_ABC123x") is None


def test_classify_unknown_cookie(policy) -> None:
    assert policy.classify("_hz_analytics_old") is None
    assert policy.classify("") is None


def test_category_lookup(policy) -> None:
    assert policy.category("analytics").title == "Analytics"
    assert policy.category_of("westlake_map").key == "media"
    assert not policy.is_required("westlake_map")
    with pytest.raises(UnknownCategoryError, match="declared categories: necessary"):
        policy.category("westlake_map")
    with pytest.raises(UnknownCategoryError, match="'marketing' is neither"):
        policy.category_of("marketing")


def test_policy_is_frozen(policy) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.revision = "other"  # type: ignore[misc]


def test_unknown_exemption_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="exemption must be one of"):
        Category("analytics", "Analytics", exemption="marketing")  # type: ignore[arg-type]


def test_notice_mode_needs_a_policy_without_optional_categories(policy) -> None:
    with pytest.raises(ConfigurationError) as info:
        Policy(policy.categories, mode="notice")
    assert "optional categories (analytics, media)" in str(info.value)
    assert Policy((NECESSARY,), mode="notice").mode == "notice"

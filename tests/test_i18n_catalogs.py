"""Every shipped message catalogue is complete and consistent with English."""

from __future__ import annotations

import string

import pytest

from consent.i18n import DEFAULT_LANGUAGE
from consent.i18n import available_languages
from consent.i18n import direction
from consent.i18n import load_catalog

LANGUAGES = available_languages()
ENGLISH = load_catalog(DEFAULT_LANGUAGE)

#: Languages written right to left among the shipped ones.
RTL = {"ar", "fa", "he"}

#: Texts that point the reader to the settings link by its label.
MENTIONS_SETTINGS = ("banner.body", "banner.optout_body", "requires.body")


def placeholders(text: str) -> set[str]:
    """The names of the ``{placeholder}`` fields in ``text``."""
    return {
        field for _, field, _, _ in string.Formatter().parse(text) if field is not None
    }


def dummy_values(text: str) -> dict[str, str]:
    return {name: f"<{name}>" for name in placeholders(text)}


def test_at_least_forty_languages_ship() -> None:
    assert DEFAULT_LANGUAGE in LANGUAGES
    assert len(LANGUAGES) >= 40


def test_english_placeholders_are_plain_names() -> None:
    for key, text in ENGLISH.items():
        for name in placeholders(text):
            assert name.isidentifier(), (key, name)


@pytest.mark.parametrize("language", LANGUAGES)
def test_catalogue_has_exactly_the_english_keys(language: str) -> None:
    catalogue = load_catalog(language)
    assert set(catalogue) == set(ENGLISH)


@pytest.mark.parametrize("language", LANGUAGES)
def test_keys_are_in_the_english_order(language: str) -> None:
    assert list(load_catalog(language)) == list(ENGLISH)


@pytest.mark.parametrize("language", LANGUAGES)
def test_placeholders_match_english(language: str) -> None:
    catalogue = load_catalog(language)
    for key, english in ENGLISH.items():
        assert placeholders(catalogue[key]) == placeholders(english), key


@pytest.mark.parametrize("language", LANGUAGES)
def test_texts_are_non_empty_and_trimmed(language: str) -> None:
    for key, text in load_catalog(language).items():
        assert isinstance(text, str), key
        assert text, key
        assert text == text.strip(), key


@pytest.mark.parametrize("language", LANGUAGES)
def test_texts_format_with_dummy_values(language: str) -> None:
    for key, text in load_catalog(language).items():
        values = dummy_values(ENGLISH[key])
        formatted = text.format(**values)
        for value in values.values():
            assert value in formatted, key


@pytest.mark.parametrize("language", LANGUAGES)
def test_direction(language: str) -> None:
    expected = "rtl" if language in RTL else "ltr"
    assert direction(language) == expected


@pytest.mark.parametrize("language", LANGUAGES)
def test_accept_and_reject_labels_differ(language: str) -> None:
    catalogue = load_catalog(language)
    accept = catalogue["button.accept_all"]
    reject = catalogue["button.reject_all"]
    assert accept.casefold() != reject.casefold()


@pytest.mark.parametrize("language", LANGUAGES)
def test_settings_link_label_is_reused(language: str) -> None:
    catalogue = load_catalog(language)
    label = catalogue["settings_link"]
    for key in MENTIONS_SETTINGS:
        assert label in catalogue[key], key

"""Message catalogues and language negotiation.

Catalogues are JSON files in ``translations/`` beside this module, one per
language (``en.json``, ``zh-Hans.json``...), each mapping a message key to a
text with ``{named}`` placeholders. English is complete by definition; any
other catalogue falls back to it key by key.
"""

from __future__ import annotations

import collections.abc as cabc
import functools
import json
import typing as t
from importlib import resources

from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

#: The language used when nothing better is known.
DEFAULT_LANGUAGE = "en"

#: Written right to left.
RTL_LANGUAGES = frozenset({"ar", "fa", "he", "ur"})

#: Per-app overrides: ``{language: {key: text}}``; the key ``"*"`` applies to
#: every language.
Overrides = cabc.Mapping[str, cabc.Mapping[str, str]]


@functools.cache
def available_languages() -> tuple[str, ...]:
    """Every language with a catalogue shipped in the package, sorted."""
    folder = resources.files("consent") / "translations"
    return tuple(
        sorted(
            entry.name.removesuffix(".json")
            for entry in folder.iterdir()
            if entry.name.endswith(".json")
        )
    )


@functools.cache
def load_catalog(language: str) -> cabc.Mapping[str, str]:
    """Return the shipped catalogue of ``language`` (empty when there is none)."""
    if language not in available_languages():
        return {}
    path = resources.files("consent") / "translations" / f"{language}.json"
    data: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
    return data


def direction(language: str) -> t.Literal["ltr", "rtl"]:
    """The writing direction of ``language``, for the ``dir`` attribute."""
    return "rtl" if language.split("-")[0].lower() in RTL_LANGUAGES else "ltr"


def negotiate(
    accept_language: str | None,
    languages: cabc.Sequence[str],
    default: str = DEFAULT_LANGUAGE,
) -> str:
    """Pick the best of ``languages`` for an ``Accept-Language`` header value.

    Parsing and matching (``zh-CN`` for ``zh``, quality values) are
    werkzeug's; the result is always one of ``languages`` or ``default``.
    """
    if not accept_language:
        return default
    accepted = parse_accept_header(accept_language, LanguageAccept)
    # The default first: a wildcard ("*") should get it, not whichever
    # language sorts first.
    ordered = [default, *(lang for lang in languages if lang != default)]
    best = accepted.best_match(ordered, default=default)
    return best if best is not None else default


class Translator:
    """Texts in one language, with the app's overrides applied.

    Calling it formats a message: ``t("banner.title")``. Placeholders are
    filled with plain values; escaping is left to the template engine, so
    every text stays plain text.

    :param language: The language tag, such as ``"en"`` or ``"zh-Hans"``.
    :param overrides: Texts that replace the shipped ones, by language.
    """

    def __init__(self, language: str, overrides: Overrides | None = None) -> None:
        self.language = language
        self.direction = direction(language)
        overrides = overrides or {}
        self._layers: tuple[cabc.Mapping[str, str], ...] = (
            overrides.get(language, {}),
            overrides.get("*", {}),
            load_catalog(language),
            load_catalog(DEFAULT_LANGUAGE),
        )

    def get(self, key: str) -> str | None:
        """The raw text of ``key``, or ``None`` when no layer has it."""
        for layer in self._layers:
            text = layer.get(key)
            if text is not None:
                return text
        return None

    def __call__(self, key: str, **params: object) -> str:
        text = self.get(key)
        if text is None:
            raise KeyError(f"No text for {key!r} in any catalogue.")
        return text.format(**params) if params else text

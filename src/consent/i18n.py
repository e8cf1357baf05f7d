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
import re
import typing as t
from importlib import resources

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


#: Longest ``Accept-Language`` value read, and most languages taken from it:
#: a header is visitor input, and a real browser sends a few dozen bytes.
MAX_HEADER = 1024
MAX_RANGES = 24

_RANGE = re.compile(r"^(?:\*|[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*)$")
_QUALITY = re.compile(r"^[qQ]=(0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$")

# Chinese is written in two scripts; browsers usually send a region
# (zh-CN, zh-TW), catalogues are per script (zh-Hans, zh-Hant).
_TRADITIONAL_REGIONS = frozenset({"tw", "hk", "mo"})

# Tags browsers still send for languages whose catalogue has another code.
_ALIASES = {"no": "nb", "iw": "he", "in": "id"}


def parse_accept_language(header: str | None) -> list[str]:
    """The language ranges of an ``Accept-Language`` value, best first.

    RFC 9110 section 12.5.4: ranges ordered by quality, the header's order
    kept between equal qualities; ranges with ``q=0`` (not acceptable) and
    malformed ones are left out. At most :data:`MAX_RANGES` ranges from the
    first :data:`MAX_HEADER` characters are read.
    """
    if not header:
        return []
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(header[:MAX_HEADER].split(",")[:MAX_RANGES]):
        tag, _, params = item.partition(";")
        tag = tag.strip()
        if not _RANGE.match(tag):
            continue
        quality = 1.0
        if params:
            found = _QUALITY.match(params.strip())
            if found is None:
                continue
            quality = float(found[1])
        if quality > 0:
            ranked.append((-quality, position, tag))
    return [tag for _, _, tag in sorted(ranked)]


def _candidates(tag: str) -> list[str]:
    """The tags to try for one language range, most specific first (the
    lookup of RFC 4647 section 3.4), with Chinese mapped to its script."""
    parts = tag.lower().split("-")
    parts[0] = _ALIASES.get(parts[0], parts[0])
    if parts[0] == "zh":
        subtags = set(parts[1:])
        if (
            "hant" in subtags
            or subtags & _TRADITIONAL_REGIONS
            and "hans" not in subtags
        ):
            return ["zh-hant", "zh"]
        return ["zh-hans", "zh"]
    return ["-".join(parts[:n]) for n in range(len(parts), 0, -1)]


def negotiate(
    accept_language: str | None,
    languages: cabc.Sequence[str],
    default: str = DEFAULT_LANGUAGE,
) -> str:
    """Pick the best of ``languages`` for an ``Accept-Language`` header value.

    Each range is looked up from its most specific form down (``de-CH``,
    then ``de``), then matched against a language of the same primary
    subtag (``pt`` finds ``pt-BR``); ``zh-CN``, ``zh-SG`` and ``zh-Hans-*``
    find Simplified Chinese, ``zh-TW``, ``zh-HK``, ``zh-MO`` and
    ``zh-Hant-*`` Traditional. The result is always one of ``languages`` or
    ``default``; a wildcard gets ``default``.
    """
    if not accept_language:
        return default
    by_lower = {language.lower(): language for language in languages}
    for tag in parse_accept_language(accept_language):
        if tag == "*":
            return default
        candidates = _candidates(tag)
        for candidate in candidates:
            if candidate in by_lower:
                return by_lower[candidate]
        primary = candidates[-1].split("-")[0]
        for lower, language in by_lower.items():
            if lower.split("-")[0] == primary:
                return language
    return default


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

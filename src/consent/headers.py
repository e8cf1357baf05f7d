"""The cache headers of a response that depends on the visitor's consent.

A shared cache must never hand one visitor's page to another: the page of
someone who accepted carries live tags and no banner. Every adapter marks
such responses the same way, through these two functions.
"""

from __future__ import annotations

import collections.abc as cabc


def _tokens(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def merge_vary(existing: str | None, names: cabc.Iterable[str]) -> str:
    """A ``Vary`` value that adds ``names`` to ``existing`` (kept as it is,
    ``*`` included)."""
    tokens = _tokens(existing or "")
    known = {token.lower() for token in tokens}
    if "*" not in known:
        tokens += [name for name in names if name.lower() not in known]
    return ", ".join(tokens)


def private_cache_control(existing: str | None) -> str:
    """A ``Cache-Control`` value that keeps a response out of shared caches:
    ``private`` added (``public`` dropped), ``no-store`` kept as it is."""
    tokens = _tokens(existing or "")
    lowered = {token.split("=", 1)[0].lower() for token in tokens}
    if "no-store" in lowered or "private" in lowered:
        return ", ".join(tokens)
    kept = [token for token in tokens if token.lower() != "public"]
    return ", ".join(["private", *kept])

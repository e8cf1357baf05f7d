"""Headers every adapter sets the same way.

The cache headers of a response that depends on the visitor's consent: a
shared cache must never hand one visitor's page to another (the page of
someone who accepted carries live tags and no banner). And the framing
headers that keep the library's own pages, and an app's if it wants, out of
other sites' frames, where a visitor could be tricked into a click on
"Accept all" (clickjacking).
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


def framing_headers(ancestors: str = "'self'") -> list[tuple[str, str]]:
    """The headers that keep a page out of other sites' frames.

    ``Content-Security-Policy: frame-ancestors …`` for current browsers and
    ``X-Frame-Options`` for older ones. The library sends them with its own
    pages (``CONSENT_FRAME_ANCESTORS``); an app can send them with all of
    its pages::

        @app.after_request
        def no_framing(response):
            for name, value in framing_headers():
                response.headers.setdefault(name, value)
            return response

    :param ancestors: ``"'self'"`` (pages of the same origin may frame it)
        or ``"'none'"`` (no page may).
    """
    if ancestors not in ("'self'", "'none'"):
        raise ValueError(
            f"ancestors must be \"'self'\" or \"'none'\", not {ancestors!r}"
        )
    options = "SAMEORIGIN" if ancestors == "'self'" else "DENY"
    return [
        ("Content-Security-Policy", f"frame-ancestors {ancestors}"),
        ("X-Frame-Options", options),
    ]

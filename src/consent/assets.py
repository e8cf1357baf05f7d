"""The library's static files: read once, versioned by content, and the
hashes a Content-Security-Policy needs for the banner's inline style and
script."""

from __future__ import annotations

import base64
import functools
import hashlib
import mimetypes
import typing as t
from importlib import resources

if t.TYPE_CHECKING:
    from importlib.resources.abc import Traversable


def static_folder() -> Traversable:
    """The folder of the library's static files."""
    return resources.files("consent") / "static" / "consent"


def _minify_js(text: str) -> str:
    import rjsmin

    return t.cast(str, rjsmin.jsmin(text))


def _minify_css(text: str) -> str:
    import rcssmin

    return t.cast(str, rcssmin.cssmin(text))


#: The files every page with the banner carries (inline while it shows):
#: served without comments and spaces, their sources kept readable.
_MINIFIED: dict[str, t.Callable[[str], str]] = {
    "consent.js": _minify_js,
    "consent.css": _minify_css,
}


@functools.cache
def static_files() -> dict[str, tuple[bytes, str, str]]:
    """The content, media type and version (a short hash of the content) of
    each of the library's static files, by name: read once, and never keyed
    by a name a request made up. The banner's own script and styles are
    minified (rjsmin, rcssmin)."""
    files = {}
    for entry in static_folder().iterdir():
        if entry.is_file():
            content = entry.read_bytes()
            minify = _MINIFIED.get(entry.name)
            if minify is not None:
                content = minify(content.decode("utf-8")).encode("utf-8")
            files[entry.name] = (
                content,
                mimetypes.guess_type(entry.name)[0] or "application/octet-stream",
                hashlib.sha256(content).hexdigest()[:10],
            )
    return files


def asset_version(filename: str) -> str:
    """A short hash of a static file's content, for cache-busting URLs."""
    return static_files()[filename][2]


@functools.cache
def banner_css() -> str:
    """The content of ``consent.css``, as the page carries it inline."""
    return static_files()["consent.css"][0].decode("utf-8")


@functools.cache
def banner_script() -> str:
    """The content of ``consent.js``, as the page carries it inline."""
    return static_files()["consent.js"][0].decode("utf-8")


def _sha256_source(text: str) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def banner_style_hash() -> str:
    """The CSP source that allows the inline banner styles.

    For an app whose ``style-src`` allows neither ``'unsafe-inline'`` nor the
    request's nonce: add this (``'sha256-…'``) to ``style-src``. It changes
    only with a release of the library.
    """
    return _sha256_source(banner_css())


def banner_script_hash() -> str:
    """The CSP source that allows the inline ``consent.js`` (``'sha256-…'``),
    for ``script-src``; see :func:`csp_sources`."""
    return _sha256_source(banner_script())


def csp_sources() -> dict[str, list[str]]:
    """Every Content-Security-Policy source the banner needs, by directive,
    for an app without a per-request nonce: the hashes of the inline styles
    and script (while the banner shows), and ``'self'`` for the cached files
    and the consent endpoint. Add each to the app's policy::

        {"script-src": ["'self'", "'sha256-…'"],
         "style-src": ["'self'", "'sha256-…'"],
         "connect-src": ["'self'"], "form-action": ["'self'"]}
    """
    return {
        "script-src": ["'self'", banner_script_hash()],
        "style-src": ["'self'", banner_style_hash()],
        "connect-src": ["'self'"],
        "form-action": ["'self'"],
    }

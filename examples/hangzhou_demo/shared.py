"""What both twins of the demo share: the site's texts, rules and settings.

The Flask app (``create_app``) and the ASGI app (``create_asgi_app``) serve
the same article from the same templates; each only translates its
framework's request and response, as the library's adapters do.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import json
import os
import secrets
import typing as t
from datetime import timedelta
from pathlib import Path

from .analytics import PageViews
from .content import Article

#: Where the demo keeps its generated secret key and receipts (git-ignored).
INSTANCE_PATH = Path(__file__).parent / "instance"

#: The file of the generated secret key, inside the instance folder.
SECRET_FILE = "secret_key"

#: The templates and static files both twins serve.
TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

#: The map provider's origin when nothing else is given.
DEFAULT_MAP_ORIGIN = "http://localhost:5001"

#: How long the analytics cookie lives: 13 months, as declared.
ANALYTICS_MAX_AGE = timedelta(days=395)

#: Longest path counted; a longer one is refused.
MAX_PATH_LENGTH = 512

#: The languages of the English / 中文 switch.
LANGUAGES = ("en", "zh-Hans")

#: The demo's own interface texts (the article itself stays in English).
UI_TEXTS = {
    "en": {
        "tagline": "Cities, technology and the people who build them",
        "language": "Language",
        "skip": "Skip to the content",
        "cookies": "Cookies",
        "note": "Hangzhou Digital is the demo site of the consent project.",
    },
    "zh-Hans": {
        "tagline": "城市、科技，以及建设它们的人",
        "language": "语言",
        "skip": "跳到正文",
        "cookies": "Cookie 说明",
        "note": "Hangzhou Digital 是 consent 项目的演示网站。",
    },
}


@dataclasses.dataclass(frozen=True)
class DemoSite:
    """What the demo keeps per app.

    :param article: The article, parsed once at startup.
    :param page_views: The page-view counter.
    :param map_url: The address of the embedded map.
    """

    article: Article
    page_views: PageViews
    map_url: str


def ui_texts(language: str) -> cabc.Callable[[str], str]:
    """The demo's interface texts in ``language`` (English by default)."""
    texts = UI_TEXTS.get(language, UI_TEXTS["en"])
    return lambda key: texts[key]


def language_of(cookie: str | None) -> str | None:
    """The language picked with the switch (a strictly necessary cookie)."""
    return cookie if cookie in LANGUAGES else None


def hit_path(body: object) -> str | None:
    """The path of a page-view hit, or ``None`` when the body is not a hit
    (a JSON object such as ``{"path": "/"}``)."""
    path = body.get("path") if isinstance(body, dict) else None
    if not isinstance(path, str) or not path.startswith("/"):
        return None
    if len(path) > MAX_PATH_LENGTH:
        return None
    return path


def content_security_policy(map_origin: str, sources: dict[str, list[str]]) -> str:
    """A strict Content-Security-Policy for the demo's pages.

    No inline script or style is allowed but the banner's, by their hashes
    (``sources`` is :func:`consent.assets.csp_sources`); the only other origin
    is the map provider, and only in a frame.
    """
    script = " ".join(sources["script-src"])
    style = " ".join(sources["style-src"])
    return (
        f"default-src 'self'; script-src {script}; style-src {style};"
        " img-src 'self' data:; object-src 'none';"
        f" frame-src {map_origin.rstrip('/')}; base-uri 'self'; form-action 'self';"
        " frame-ancestors 'none'"
    )


def load_or_create_secret(path: Path) -> str:
    """Return the secret key stored at ``path``, creating it the first time.

    A key generated once and kept on disk means consent cookies stay valid
    across restarts, without anyone committing a key to the repository.
    """
    try:
        key = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        key = ""
    if key:
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    # Owner-only from the start: the key signs every visitor's consent.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as file:
        file.write(key + "\n")
    return key


def consent_settings_from_env(
    environ: t.Mapping[str, str] | None = None,
) -> dict[str, t.Any]:
    """Collect ``CONSENT_*`` settings from the environment, keeping the prefix.

    Values are read as JSON when they parse (``true``, ``31536000``,
    ``["en", "de"]``) and kept as strings otherwise.

    :param environ: The variables to read; ``os.environ`` by default.
    """
    environ = os.environ if environ is None else environ
    settings: dict[str, t.Any] = {}
    for key, value in environ.items():
        if not key.startswith("CONSENT_"):
            continue
        try:
            settings[key] = json.loads(value)
        except ValueError:
            settings[key] = value
    return settings

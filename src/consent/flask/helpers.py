"""Template helpers, for Jinja and for views: each renders the current
response's consent markup (see :class:`consent.html.Page`)."""

from __future__ import annotations

import collections.abc as cabc
import typing as t

from markupsafe import Markup

from ..html import banner_style_hash as banner_style_hash
from ._context import csp_nonce as csp_nonce
from ._context import page


def consent_banner() -> Markup:
    """The banner when the visitor must choose, else nothing.

    Renders ``consent/banner.html``; an app overrides it by providing a
    template at the same path.
    """
    return page().banner()


def consent_head() -> Markup:
    """The ``<head>`` part: the banner's styles and the deferred
    ``consent.js``. Optional: without it, the banner carries its own tags."""
    return page().head()


def consent_settings_link(label: str | None = None) -> Markup:
    """The "Cookie settings" link that reopens the choice at any time.

    :param label: The link text; "Cookie settings" in the visitor's language
        by default.
    """
    return page().settings_link(label)


def consent_script(
    key: str, src: str | None = None, *, body: str | None = None, **attrs: t.Any
) -> Markup:
    """A ``<script>`` that runs only when ``key`` is allowed (inert until
    then, activated in place by ``consent.js``)."""
    return page().script(key, src, body=body, **attrs)


def consent_embed(key: str, src: str, *, title: str, **attrs: t.Any) -> Markup:
    """An ``<iframe>`` when ``key`` is allowed, else a placeholder with
    **Load once** and **Always allow**."""
    return page().embed(key, src, title=title, **attrs)


def consent_mode_head(region: cabc.Sequence[str] | None = None) -> Markup:
    """Google Consent Mode v2 default and update, before any Google tag.

    :param region: ISO 3166 codes the default applies to.
    """
    return page().mode_head(region)


#: The helpers every template gets as globals.
TEMPLATE_GLOBALS: dict[str, cabc.Callable[..., Markup]] = {
    "consent_banner": consent_banner,
    "consent_head": consent_head,
    "consent_settings_link": consent_settings_link,
    "consent_script": consent_script,
    "consent_embed": consent_embed,
    "consent_mode_head": consent_mode_head,
}

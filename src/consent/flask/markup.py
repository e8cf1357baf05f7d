"""Template helpers that gate markup: scripts and embeds.

What a visitor has not allowed is not rendered as a live tag at all. A gated
script becomes an inert ``<script type="text/plain">`` that ``consent.js``
brings to life, in place, when consent arrives; a gated embed becomes a
placeholder that says who provides it and what it would set.
"""

from __future__ import annotations

import logging
import typing as t

from flask import current_app
from flask import render_template
from markupsafe import Markup

from ..exceptions import UnknownCategoryError
from .extension import _page_context
from .extension import _request_consent
from .extension import csp_nonce

logger = logging.getLogger(__name__)


def _attributes(attrs: dict[str, t.Any]) -> Markup:
    """Render HTML attributes, escaped; ``True`` gives a bare attribute."""
    parts = []
    for name, value in attrs.items():
        if value is None or value is False:
            continue
        name = name.rstrip("_").replace("_", "-")
        if value is True:
            parts.append(Markup(" {}").format(name))
        else:
            parts.append(Markup(' {}="{}"').format(name, value))
    return Markup("").join(parts)


def _is_allowed(key: str) -> bool:
    """Whether ``key`` may run; an unknown key fails closed.

    In debug mode an unknown key raises, so the typo is seen at once; in
    production the tag stays inert and an error is logged.
    """
    try:
        return _request_consent().allows(key)
    except UnknownCategoryError:
        if current_app.debug or current_app.testing:
            raise
        logger.error("Gated markup names the undeclared key %r: kept inert.", key)
        return False


def consent_script(
    key: str,
    src: str | None = None,
    *,
    body: str | None = None,
    **attrs: t.Any,
) -> Markup:
    """A ``<script>`` that runs only when ``key`` is allowed.

    Allowed: a live script carrying the request's CSP nonce. Not allowed: an
    inert ``type="text/plain"`` tag with ``data-consent-key`` (and
    ``data-consent-src``) that ``consent.js`` activates without a reload once
    the visitor allows ``key``.

    :param key: A category or service key.
    :param src: The script URL, for an external script.
    :param body: The code of an inline script (trusted template content).
    :param attrs: More attributes (``defer=True``, ``data_domain="..."``).
    """
    if body is not None and "</script" in body.lower():
        raise ValueError("An inline script body cannot contain '</script'.")
    nonce = csp_nonce()
    allowed = _is_allowed(key)
    base: dict[str, t.Any] = {}
    if allowed:
        base["src"] = src
        base["data-consent-key"] = key
    else:
        base["type"] = "text/plain"
        base["data-consent-key"] = key
        base["data-consent-src"] = src
    base["nonce"] = nonce
    base.update(attrs)
    return Markup("<script{}>{}</script>").format(_attributes(base), Markup(body or ""))


def consent_embed(
    key: str,
    src: str,
    *,
    title: str,
    **attrs: t.Any,
) -> Markup:
    """An ``<iframe>`` that loads only when service or category ``key`` is
    allowed; otherwise a placeholder naming the provider and its cookies,
    with **Load once** and **Always allow**.

    :param key: A service (or category) key.
    :param src: The embed URL.
    :param title: The iframe's accessible title.
    :param attrs: More iframe attributes (``width``, ``height``, ``allow``).
    """
    attrs.setdefault("loading", "lazy")
    if _is_allowed(key):
        return Markup("<iframe{}></iframe>").format(
            _attributes({"src": src, "title": title, "data-consent-key": key, **attrs})
        )
    rc = _request_consent()
    policy = rc.policy
    try:
        category = policy.category_of(key)
    except UnknownCategoryError:
        # Fail closed: an undeclared key (logged by _is_allowed) stays inert.
        return Markup('<div class="consent-embed" data-consent-embed></div>')
    service = next((s for s in category.services if s.key == key), None)
    cookies = service.cookies if service else category.all_cookies()
    context = _page_context(rc)
    context.update(
        key=key,
        src=src,
        title=title,
        attributes={
            "title": title,
            **{k.rstrip("_").replace("_", "-"): v for k, v in attrs.items()},
        },
        service_title=service.title if service else category.title,
        provider=(service.provider if service else "") or category.title,
        cookie_names=", ".join(c.label for c in cookies) or "-",
        granted=[k for k in policy.choice_keys if rc.allows(k)],
    )
    return Markup(render_template("consent/embed.html", **context))

"""The cookie declaration: what the preferences page, the declaration page
and ``declaration.json`` list, generated from the policy.

Visitors must be told who sets each cookie, why and for how long (CJEU
*Planet49*); the library's own cookies are listed first, in the visitor's
language, under the first required category.
"""

from __future__ import annotations

import collections.abc as cabc
import typing as t

if t.TYPE_CHECKING:
    from .i18n import Translator
    from .model import Cookie
    from .site import Site


def _cookie_rows(
    cookies: cabc.Iterable[Cookie], tr: Translator
) -> list[dict[str, t.Any]]:
    return [
        {
            "name": c.label,
            "pattern": bool(c.pattern),
            "provider": c.provider,
            "purpose": c.purpose,
            "duration": c.duration,
            "party": c.party,
            "party_label": tr(
                "declaration.first_party"
                if c.party == "first"
                else "declaration.third_party"
            ),
        }
        for c in cookies
    ]


def declaration(site: Site, language: str) -> list[dict[str, t.Any]]:
    """Every category with its cookies and services, in ``language``."""
    tr = site.translator(language)
    policy = site.policy
    first_required = next(c.key for c in policy.categories if c.required)
    rows = []
    for category in policy.categories:
        cookies: list[Cookie] = list(category.all_cookies())
        if category.key == first_required:
            cookies = [*site.builtin_cookies(language), *cookies]
        rows.append(
            {
                "key": category.key,
                "title": category.title,
                "description": category.description,
                "required": category.required,
                "cookies": _cookie_rows(cookies, tr),
                "services": [
                    {
                        "key": s.key,
                        "title": s.title,
                        "description": s.description,
                        "provider": s.provider,
                        "cookies": _cookie_rows(s.cookies, tr),
                    }
                    for s in category.services
                ],
            }
        )
    return rows


def declaration_json(site: Site, language: str) -> dict[str, t.Any]:
    """The body of ``declaration.json``: the revision, the controller, the
    language and :func:`declaration`."""
    return {
        "revision": site.policy.revision,
        "controller": site.policy.controller,
        "language": language,
        "categories": declaration(site, language),
    }

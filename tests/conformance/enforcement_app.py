"""The policy and views of the enforcement and gated-markup tests."""

from __future__ import annotations

import typing as t

from consent import Category
from consent import Cookie
from consent import Policy
from consent import Service
from tests.conformance.conftest import View

ANALYTICS_JS = "/static/analytics.js"

PAGE = """\
<!doctype html>
<html lang="en"><head><title>West Lake</title></head>
<body><main>An article about the lake.</main>
{{ consent_script("analytics", "/static/analytics.js") }}
</body></html>
"""


def _cookie(name: str = "", **fields: t.Any) -> Cookie:
    values = {"provider": "A provider", "purpose": "A purpose", "duration": "1 year"}
    values.update(fields)
    return Cookie(name=name, **values)


POLICY = Policy(
    categories=(
        Category("necessary", "Strictly necessary", required=True),
        Category(
            "analytics",
            "Analytics",
            cookies=(
                _cookie("_hz_analytics"),
                _cookie("_hz_http"),
                _cookie("_hz_ext"),
                _cookie("_hz_app", domain=".example.com", path="/app"),
                _cookie(pattern=r"_ga_[A-Z0-9]+"),
            ),
        ),
        Category(
            "media",
            "Embedded media",
            services=(
                Service(
                    "westlake_map",
                    "West Lake map",
                    provider="West Lake Maps",
                    cookies=(_cookie("wl_map_pref", party="third"),),
                ),
                Service(
                    "video",
                    "Lake videos",
                    provider="Lake Video",
                    cookies=(_cookie("lv_id", party="third"),),
                ),
            ),
        ),
    ),
    controller="Hangzhou Digital",
)

_TEXT = "text/plain; charset=utf-8"


def views(page: str = PAGE) -> dict[str, View]:
    """``/`` renders ``page``; ``/tracked`` sets analytics cookies and one
    undeclared; ``/plain`` sets an analytics cookie on a text answer;
    ``/undeclared`` sets only an undeclared cookie."""
    return {
        "/": View(page),
        "/tracked": View(
            PAGE,
            cookies=(
                ("_hz_analytics", "visitor-1", {"max_age": 3600}),
                ("_hz_http", "visitor-2", {"httponly": True, "secure": True}),
                ("site_lang", "en", {}),
            ),
        ),
        "/plain": View(
            "plain text",
            content_type=_TEXT,
            cookies=(("_hz_analytics", "visitor-1", {}),),
        ),
        "/undeclared": View(
            "plain text", content_type=_TEXT, cookies=(("mystery", "1", {}),)
        ),
    }


def make_app(adapter: t.Any, page: str = PAGE, **config: t.Any) -> t.Any:
    """An app of :data:`POLICY` with :func:`views`, keeping no receipts."""
    config.setdefault("CONSENT_RECEIPTS_URL", None)
    return adapter.make_app(POLICY, views(page), **config)

"""The cookie policy of the Hangzhou demo site.

Three categories: the strictly necessary cookies (the consent cookie, which
the extension declares itself), the site's own page-view counting, and the
embedded West Lake map served from a second origin.
"""

from __future__ import annotations

from consent import Category
from consent import Cookie
from consent import Policy
from consent import Service

#: The name the site gives itself on the banner and the declaration.
CONTROLLER = "Hangzhou Digital"

#: Who runs the embedded map.
MAP_PROVIDER = "West Lake Maps (demo provider on a second local origin)"

ANALYTICS_COOKIE = Cookie(
    name="_hz_analytics",
    provider="Hangzhou Digital (this site)",
    purpose="Tells repeat visits apart when counting page views.",
    duration="13 months",
    party="first",
)

MAP_COOKIE = Cookie(
    name="wl_map_pref",
    provider=MAP_PROVIDER,
    purpose="Remembers how you last looked at the map.",
    duration="1 year",
    party="third",
)

LANGUAGE_COOKIE = Cookie(
    name="hz_lang",
    provider="Hangzhou Digital (this site)",
    purpose="Remembers the language you picked with the English / 中文 switch.",
    duration="1 year",
    party="first",
)

WESTLAKE_MAP = Service(
    key="westlake_map",
    title="West Lake map",
    description="A map of West Lake, loaded from the map provider's own site.",
    provider=MAP_PROVIDER,
    cookies=(MAP_COOKIE,),
)


def build_policy() -> Policy:
    """Return the demo's policy: necessary, analytics and embedded media."""
    return Policy(
        categories=(
            Category(
                key="necessary",
                title="Strictly necessary",
                description="Remember your cookie choice, protect the form you"
                " make it with, and keep the language you picked. The site"
                " cannot work without them.",
                required=True,
                cookies=(LANGUAGE_COOKIE,),
            ),
            Category(
                key="analytics",
                title="Analytics",
                description="Counts page views on this site, so we know which"
                " articles are read. Nothing is shared with anyone else.",
                cookies=(ANALYTICS_COOKIE,),
            ),
            Category(
                key="media",
                title="Embedded media",
                description="Shows content from other sites inside our pages,"
                " such as the West Lake map. Those sites can set their own"
                " cookies.",
                services=(WESTLAKE_MAP,),
            ),
        ),
        controller=CONTROLLER,
        privacy_url=None,
    )

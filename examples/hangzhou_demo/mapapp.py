"""The "map provider": a second small site that the demo embeds.

It runs on another host name (``localhost`` rather than ``127.0.0.1``), so
the browser treats it as another site, as it would a real map provider, and
its cookie ``wl_map_pref`` is a third-party cookie on the demo's pages.
"""

from __future__ import annotations

import collections.abc as cabc
from datetime import timedelta

from flask import Flask
from flask import Response
from flask import render_template
from flask import request

#: The cookie the map sets, as declared in the demo's policy.
COOKIE_NAME = "wl_map_pref"

#: How long the map remembers a visitor: one year.
COOKIE_MAX_AGE = timedelta(days=365)

#: The site allowed to frame the map when no other is given.
DEFAULT_SITE_ORIGIN = "http://127.0.0.1:5000"


def create_map_app(site_origins: cabc.Sequence[str] = (DEFAULT_SITE_ORIGIN,)) -> Flask:
    """Create the map provider app.

    :param site_origins: The origins that may show the map in a frame.
    """
    app = Flask(__name__, template_folder="map_templates", static_folder=None)
    app.config["SITE_ORIGINS"] = tuple(site_origins)

    @app.get("/map/west-lake")
    def west_lake() -> Response:
        """The map page, meant to be shown in an iframe."""
        is_returning = COOKIE_NAME in request.cookies
        response = Response(
            render_template("west_lake.html", is_returning=is_returning)
        )
        # A cookie set inside a cross-site iframe needs SameSite=None, which
        # needs Secure; browsers treat http://localhost as secure, so this
        # works on the demo's plain-HTTP second origin.
        response.set_cookie(
            COOKIE_NAME,
            request.cookies.get(COOKIE_NAME, "view=overview"),
            max_age=COOKIE_MAX_AGE,
            httponly=True,
            secure=True,
            samesite="None",
        )
        ancestors = " ".join(("'self'", *app.config["SITE_ORIGINS"]))
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'unsafe-inline';"
            f" frame-ancestors {ancestors}"
        )
        return response

    return app

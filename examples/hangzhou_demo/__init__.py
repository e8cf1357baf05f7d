"""Hangzhou Digital: the demo site of the consent project.

It serves one article behind the consent banner, counts page views only
with consent, and embeds a map from a second local origin only with consent.
``make demo`` runs it (Flask) together with the map provider, and
``make demo-asgi`` runs its twin (FastAPI, :mod:`.asgi`); see ``__main__``.
"""

from __future__ import annotations

import typing as t
from pathlib import Path

from flask import Flask
from flask import Response
from flask import current_app

from consent.flask import Consent
from consent.flask import csp_sources

from .analytics import PageViews
from .content import load_article
from .policy import build_policy
from .shared import DEFAULT_MAP_ORIGIN
from .shared import INSTANCE_PATH
from .shared import SECRET_FILE
from .shared import DemoSite
from .shared import consent_settings_from_env as consent_settings_from_env
from .shared import content_security_policy
from .shared import load_or_create_secret as load_or_create_secret
from .views import bp
from .views import selected_language


def create_app(test_config: dict[str, t.Any] | None = None) -> Flask:
    """Create the demo site.

    :param test_config: Settings applied last, over the environment; tests
        pass ``SECRET_KEY`` here, and the launcher passes ``MAP_ORIGIN``.
    """
    app = Flask(__name__, instance_path=str(INSTANCE_PATH))
    app.config.from_mapping(
        MAP_ORIGIN=DEFAULT_MAP_ORIGIN,
        CONSENT_LANGUAGE_SELECTOR=selected_language,
    )
    app.config.update(consent_settings_from_env())
    if test_config is not None:
        app.config.update(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = load_or_create_secret(
            Path(app.instance_path) / SECRET_FILE
        )

    Consent(app, build_policy())
    app.extensions["hangzhou_demo"] = DemoSite(
        article=load_article(),
        page_views=PageViews(),
        map_url=app.config["MAP_ORIGIN"].rstrip("/") + "/map/west-lake",
    )
    app.register_blueprint(bp)
    app.after_request(_security_headers)
    return app


def _security_headers(response: Response) -> Response:
    """Send a strict Content-Security-Policy (see
    :func:`.shared.content_security_policy`)."""
    response.headers.setdefault(
        "Content-Security-Policy",
        content_security_policy(current_app.config["MAP_ORIGIN"], csp_sources()),
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response

"""Hangzhou Digital: the demo site of the consent project.

It serves one article behind the consent banner, counts page views only
with consent, and embeds a map from a second local origin only with consent.
``make demo`` runs it together with the map provider (see ``__main__``).
"""

from __future__ import annotations

import json
import os
import secrets
import typing as t
from pathlib import Path

from flask import Flask
from flask import Response
from flask import current_app

from consent.flask import Consent
from consent.flask import banner_style_hash

from .analytics import PageViews
from .content import load_article
from .policy import build_policy
from .views import Site
from .views import bp
from .views import selected_language

#: Where the generated secret key is kept, inside the instance folder.
SECRET_FILE = "secret_key"

#: The instance folder (git-ignored): the generated secret key lives here.
INSTANCE_PATH = Path(__file__).parent / "instance"


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


def create_app(test_config: dict[str, t.Any] | None = None) -> Flask:
    """Create the demo site.

    :param test_config: Settings applied last, over the environment; tests
        pass ``SECRET_KEY`` here, and the launcher passes ``MAP_ORIGIN``.
    """
    app = Flask(__name__, instance_path=str(INSTANCE_PATH))
    app.config.from_mapping(
        MAP_ORIGIN="http://localhost:5001",
        CONSENT_LANGUAGE_SELECTOR=selected_language,
    )
    app.config.update(consent_settings_from_env())
    if test_config is not None:
        app.config.update(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = load_or_create_secret(
            Path(app.instance_path) / SECRET_FILE
        )

    policy = build_policy()
    Consent(app, policy)
    app.extensions["hangzhou_demo"] = Site(
        article=load_article(), page_views=PageViews()
    )
    app.register_blueprint(bp)
    app.after_request(_security_headers)
    return app


def _security_headers(response: Response) -> Response:
    """Send a strict Content-Security-Policy.

    No inline script is allowed, and the only inline style is the banner's,
    allowed by its hash; the only other origin is the map provider, and only
    in a frame.
    """
    map_origin = current_app.config["MAP_ORIGIN"].rstrip("/")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; object-src 'none';"
        f" style-src 'self' {banner_style_hash()};"
        f" frame-src {map_origin}; base-uri 'self'; form-action 'self';"
        " frame-ancestors 'none'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response

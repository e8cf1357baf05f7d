"""The apps served by gunicorn in :mod:`bench.wsgi`.

``create(kind)`` is a gunicorn app factory (``"bench.apps:create('plain')"``).
Every kind serves the same ~2 KB HTML page at ``/`` with the same secret key
(so Flask opens its session on every request in every kind, as it does in any
app with a key), and renders it from a template compiled once at start, as an
app's template cache does:

- ``plain``: no extension.
- ``consent``: the extension, auto-inject off; the page asks
  ``consent.allows("analytics")``, so the consent cookie is decoded.
- ``consent_unasked``: the extension, auto-inject off; the page never asks,
  so nothing is decoded.
- ``session``: no extension; the page reads ``session["x"]``, so the request's
  session cookie is what Flask decodes.

All four answer the same bytes when the consent cookie grants analytics and
the session cookie holds ``x``.
"""

from __future__ import annotations

import collections.abc as cabc
import typing as t
from datetime import datetime
from datetime import timezone

from flask import Flask
from flask import render_template
from werkzeug.test import EnvironBuilder

from consent import decide
from consent.flask import Consent

from .common import SECRET_KEY
from .common import bench_policy

KINDS = ("plain", "consent", "consent_unasked", "session")

#: What the page says when analytics may run, in every kind.
ANALYTICS_TAG = '<script src="/static/analytics.js" defer></script>'

_SECTION = """    <section>
      <h2>{{ heading }}</h2>
      <p>The causeway runs along the lake for almost three kilometres; the
      willows and peach trees along it are at their best in early spring.</p>
    </section>"""

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{{ title }}</title>
  <link rel="stylesheet" href="/static/site.css">
  @ANALYTICS@
</head>
<body>
  <header><nav>
    {% for item in nav %}<a href="/{{ item }}">{{ item|title }}</a> {% endfor %}
  </nav></header>
  <main>
    <h1>{{ title }}</h1>
    {% for heading in sections %}
@SECTION@
    {% endfor %}
  </main>
  <footer><p>&copy; Benchmark site. All rights reserved.</p></footer>
</body>
</html>
""".replace("@SECTION@", _SECTION)

_CONDITIONS = {
    "plain": "analytics",
    "consent": 'consent.allows("analytics")',
    "consent_unasked": "analytics",
    "session": 'session["x"]',
}

CONTEXT = {
    "title": "West Lake in spring",
    "nav": ["home", "walks", "temples", "tea", "about"],
    "sections": [
        "Su Causeway",
        "Bai Causeway",
        "Lingyin",
        "Longjing",
        "Leifeng",
        "Hupao",
        "Evening",
    ],
}


def page_source(kind: str) -> str:
    condition = _CONDITIONS[kind]
    tag = f"{{% if {condition} %}}{ANALYTICS_TAG}{{% endif %}}"
    return PAGE.replace("@ANALYTICS@", tag)


def create(kind: str = "plain") -> Flask:
    """Return the benchmark app of ``kind`` (one of :data:`KINDS`)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    app = Flask(__name__)
    app.secret_key = SECRET_KEY
    if kind.startswith("consent"):
        app.config["CONSENT_AUTO_INJECT"] = False
        Consent(app, bench_policy())
    template = app.jinja_env.from_string(page_source(kind))

    @app.get("/")
    def index() -> str:
        return render_template(template, analytics=True, **CONTEXT)

    return app


def consent_cookie() -> str:
    """A valid consent cookie value that grants everything."""
    app = create("consent")
    settings = app.extensions["consent"].site(app)
    now = datetime.now(timezone.utc)
    return t.cast(
        str, settings.codec.encode(decide(settings.policy, "accept_all", now=now))
    )


def session_cookie() -> str:
    """A valid session cookie value holding ``x`` and three other keys."""
    app = create("session")
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    return t.cast(
        str,
        serializer.dumps(
            {
                "x": 1,
                "_fresh": True,
                "_user_id": "4182",
                "csrf_token": "5b1e0c7d9a3f" * 3,
            }
        ),
    )


def wsgi_call(app: Flask, cookie: str) -> cabc.Callable[[], bytes]:
    """One in-process ``GET /`` of ``app`` with ``cookie`` (no server, no
    network), as a function that returns the body."""
    environ = EnvironBuilder(path="/", headers={"Cookie": cookie}).get_environ()

    def start_response(*args: object) -> None:
        pass

    def call() -> bytes:
        body = app(dict(environ), start_response)  # type: ignore[arg-type]
        try:
            return b"".join(body)
        finally:
            getattr(body, "close", lambda: None)()

    return call

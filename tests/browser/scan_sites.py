"""Small sites for the scanner's tests, each served on loopback by a test.

- :func:`make_broken_shop`: a shop that gets consent wrong on purpose. It
  sets ``_ga`` by script and loads a tracker from a second local origin
  before any choice, and its marketing pixel keeps setting ``_fbp`` after
  "Reject all". It publishes a declaration in this library's format, or
  none.
- :func:`make_tracker`: the second origin, reached as ``static.hotjar.com``
  (Chromium maps every host name to loopback; the host is a known tracker
  that is not on Chromium's HSTS preload list, so plain HTTP reaches it).
- :func:`make_other_banner_site`: a page whose banner is not this library's:
  plain buttons "Accept all" and "Reject all" in a form of its own.
- :class:`SilentServer`: accepts connections and never answers.
"""

from __future__ import annotations

import socket
import threading
import typing as t

from flask import Flask
from flask import Response
from flask import redirect
from flask import render_template_string
from flask import request
from werkzeug.wrappers import Response as BaseResponse

#: The host name the broken shop loads its tracker from.
TRACKER_HOST = "static.hotjar.com"

#: The broken shop's declaration, in the format of /consent/declaration.json.
SHOP_DECLARATION = {
    "revision": "shop-1",
    "controller": "Broken Shop",
    "language": "en",
    "categories": [
        {
            "key": "necessary",
            "required": True,
            "cookies": [{"name": "choice", "pattern": False}],
            "services": [],
        },
        {
            "key": "analytics",
            "required": False,
            "cookies": [
                {"name": "_ga", "pattern": False},
                {"name": "_ga_[A-Z0-9]+", "pattern": True},
            ],
            "services": [],
        },
        {
            "key": "marketing",
            "required": False,
            "cookies": [],
            "services": [
                {"key": "pixel", "cookies": [{"name": "_fbp", "pattern": False}]}
            ],
        },
    ],
}

SHOP_PAGE = """\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Broken Shop</title>
{% if not choice %}
<script>document.cookie = "_ga=GA1.1.1234.5678; path=/; max-age=3600";</script>
<script src="{{ tracker }}/c/hotjar.js"></script>
{% elif choice == "accept" %}
<script>document.cookie = "_ga=GA1.1.1234.5678; path=/; max-age=3600";</script>
<script>document.cookie = "_fbp=fb.1.1234.5678; path=/; max-age=3600";</script>
{% else %}
<script>document.cookie = "_fbp=fb.1.1234.5678; path=/; max-age=3600";</script>
{% endif %}
</head>
<body>
{% if not choice %}
<div class="notice">
  <p>We use cookies.</p>
  <form method="post" action="/choice">
    <button name="decision" value="accept">Accept all</button>
    <button name="decision" value="reject">Reject all</button>
  </form>
</div>
{% endif %}
<main><h1>Broken Shop</h1><p>Everything must go.</p></main>
</body>
</html>
"""


def make_broken_shop(tracker_origin: str, *, declares: bool = True) -> Flask:
    """The shop; ``declares=False`` publishes no declaration (a 404).

    :param tracker_origin: Where its tracker script comes from.
    """
    app = Flask("broken_shop")

    @app.get("/")
    def index() -> str:
        return render_template_string(
            SHOP_PAGE, choice=request.cookies.get("choice"), tracker=tracker_origin
        )

    @app.post("/choice")
    def choice() -> BaseResponse:
        decision = request.form.get("decision")
        if decision not in ("accept", "reject"):
            return Response("Choose accept or reject.", status=400)
        response = redirect("/", code=303)
        response.set_cookie("choice", decision, max_age=3600, httponly=True)
        if decision == "reject":
            # It does clean up what it set before the choice...
            response.delete_cookie("_ga")
        return response

    @app.get("/consent/declaration.json")
    def declaration() -> Response:
        if not declares:
            return Response("Not found.", status=404)
        response: Response = app.json.response(SHOP_DECLARATION)
        return response

    return app


def make_tracker() -> Flask:
    """The tracker's origin: a script that does nothing.

    ``app.extensions["hits"]`` counts the times it was loaded.
    """
    app = Flask("tracker")
    hits: list[str] = []
    app.extensions["hits"] = hits

    @app.get("/c/hotjar.js")
    def script() -> Response:
        hits.append(request.headers.get("Referer", ""))
        return Response("/* a tracker */", mimetype="text/javascript")

    return app


OTHER_BANNER_PAGE = """\
<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Lake Tours</title></head>
<body>
<main>
  <h1>Lake Tours</h1>
  <p>Our guides say "Accept all" the lake has to offer.</p>
</main>
{% if not choice %}
<section class="cookie-bar" aria-label="Cookies">
  <p>May we use cookies?</p>
  <form method="post" action="/decide">
    <button type="submit" name="answer" value="yes" class="primary">ACCEPT ALL</button>
    <button type="submit" name="answer" value="no">Reject all</button>
  </form>
</section>
{% endif %}
</body>
</html>
"""


def make_other_banner_site() -> Flask:
    """A site with a banner of its own; ``app.extensions["answers"]`` lists
    the buttons it received, in order.
    """
    app = Flask("other_banner")
    answers: list[str] = []
    app.extensions["answers"] = answers

    @app.get("/")
    def index() -> str:
        return render_template_string(
            OTHER_BANNER_PAGE, choice=request.cookies.get("tours_choice")
        )

    @app.post("/decide")
    def decide() -> BaseResponse:
        answer = request.form.get("answer", "")
        answers.append(answer)
        response = redirect("/", code=303)
        response.set_cookie("tours_choice", answer, max_age=3600, httponly=True)
        return response

    return app


class SilentServer:
    """A TCP server on loopback that accepts connections and never answers.

    :attr:`connected` is set when the first connection comes in.
    """

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port: int = self.sock.getsockname()[1]
        self.connected = threading.Event()
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._held.append(conn)
            self.connected.set()

    def close(self) -> None:
        # shutdown() wakes the thread blocked in accept(); close() alone
        # does not on Linux.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for conn in self._held:
            conn.close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc: t.Any) -> None:
        self.close()

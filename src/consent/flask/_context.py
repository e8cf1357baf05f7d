"""The Flask adapter's state: the app's site, the request's visitor and page.

Every other module of the adapter reaches consent through here, so none of
them imports another: views, template helpers, the CLI and the dashboard
all depend on this module and on the core only.
"""

from __future__ import annotations

import collections.abc as cabc
import typing as t

from flask import current_app
from flask import g
from flask import render_template
from flask import request
from flask import url_for
from werkzeug.local import LocalProxy

from ..html import Page
from ..html import Urls
from ..visitor import Visitor

if t.TYPE_CHECKING:
    from flask import Flask
    from flask import Request

    from ..site import Site

#: The key of the extension in ``app.extensions``.
EXTENSION = "consent"


class AppState:
    """What the extension keeps for one app: its site and URL cache."""

    def __init__(self, site: Site) -> None:
        #: The app's consent machinery.
        self.site = site
        # The library's URLs by script root: url_for once per mount point,
        # not on every page.
        self.urls: dict[str, Urls] = {}


def app_state(app: Flask | None = None) -> AppState:
    """The consent state of ``app`` (the current app by default).

    :raises RuntimeError: when the extension is not set up on the app.
    """
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        ext = app.extensions[EXTENSION]
    except KeyError:
        raise RuntimeError(
            "Consent is not set up on this app: call Consent(app, policy) or"
            " init_app(app) first."
        ) from None
    state: AppState = ext.state(app)
    return state


def site_of(app: Flask | None = None) -> Site:
    """The consent site of ``app`` (the current app by default)."""
    return app_state(app).site


class _FlaskRequest:
    """The request as a :class:`consent.visitor.RequestInfo`."""

    __slots__ = ("_request",)

    def __init__(self, req: Request) -> None:
        self._request = req

    @property
    def is_secure(self) -> bool:
        return self._request.is_secure

    def cookie_values(self, name: str) -> list[str]:
        return self._request.cookies.getlist(name)

    def cookie_names(self) -> cabc.Iterable[str]:
        return self._request.cookies.keys()

    def header(self, name: str) -> str | None:
        # The WSGI environ directly: a missing header costs no exception.
        key = "HTTP_" + name.upper().replace("-", "_")
        value: str | None = self._request.environ.get(key)
        return value


def _globals() -> t.Any:
    """The app context's ``g`` itself. Each attribute looked up through the
    ``g`` proxy first fails on the proxy (an exception), which costs more
    than the lookup: the hot paths below take the object once."""
    return g._get_current_object()


def _request() -> Request:
    """The current request itself, not its proxy (see :func:`_globals`)."""
    current: Request = request._get_current_object()  # type: ignore[attr-defined]
    return current


def visitor() -> Visitor:
    """The visitor of the current request, made on first use."""
    store = _globals()
    found: Visitor | None = store.get("_consent_visitor")
    if found is not None:
        return found
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    site = site_of(app)
    settings = site.settings
    made = Visitor(
        site,
        _FlaskRequest(_request()),
        strict=app.debug or app.testing,
        select_language=settings.language_selector,
        select_profile=settings.profile_selector,
    )
    store._consent_visitor = made
    return made


def current_visitor() -> Visitor | None:
    """The current request's visitor if something already asked for it."""
    found: Visitor | None = _globals().get("_consent_visitor")
    return found


#: The consent of the current request: ``current_consent.allows("analytics")``
#: (a :class:`consent.visitor.Visitor`), as Flask-Login's ``current_user``.
current_consent: Visitor = LocalProxy(visitor)  # type: ignore[assignment]


def csp_nonce() -> str | None:
    """The CSP nonce of the current request, if the app uses one:
    ``CONSENT_CSP_NONCE``, else Flask-Talisman's ``request.csp_nonce`` or
    ``g.csp_nonce``."""
    settings = site_of().settings
    if settings.csp_nonce is not None:
        nonce = settings.csp_nonce()
    else:
        nonce = getattr(_request(), "csp_nonce", None) or _globals().get("csp_nonce")
    return str(nonce) if nonce else None


def urls() -> Urls:
    """The library's URLs for the current request's mount point."""
    state = app_state()
    root = _request().script_root
    found = state.urls.get(root)
    if found is None:
        found = state.urls[root] = Urls(
            update=url_for("consent.update"),
            preferences=url_for("consent.preferences"),
            declaration=url_for("consent.declaration"),
            static=url_for("consent.static", filename="x")[:-2],
        )
    return found


def _render(template: str, context: dict[str, t.Any]) -> str:
    return render_template(template, **context)


def here() -> str:
    """The current page as a path the visitor's browser can go back to,
    including the script root of an app mounted under a prefix."""
    current = _request()
    path = current.full_path if current.query_string else current.path
    return current.script_root + path


def page() -> Page:
    """The consent markup of the current response, made on first use."""
    store = _globals()
    found: Page | None = store.get("_consent_page")
    if found is None:
        found = Page(
            visitor(),
            urls(),
            _render,
            here=here(),
            is_own_page=_request().blueprint == "consent",
            nonce=csp_nonce,
        )
        store._consent_page = found
    return found

"""The ASGI adapter's per-request state: the visitor and page of the request
being served, in context variables.

The middleware sets them for the duration of a request; template helpers,
:data:`current_consent` and the FastAPI dependency read them. Context
variables follow the request into the app's tasks and into the thread pool
that runs sync endpoints.
"""

from __future__ import annotations

import contextvars
import typing as t

from ..html import TemplateHelpers

if t.TYPE_CHECKING:
    from ..html import Page
    from ..visitor import Visitor


class _PageMaker(t.Protocol):
    def make_page(self, scope: t.Any, visitor: Visitor) -> Page: ...


class RequestState:
    """The consent of the request being served: its visitor, and its page,
    made on first use (most requests never render consent markup).

    :param visitor: The request's visitor.
    :param maker: Makes the request's :class:`~consent.html.Page` (the
        middleware).
    :param scope: The request's scope.
    """

    __slots__ = ("visitor", "_maker", "_scope", "_page")

    def __init__(self, visitor: Visitor, maker: _PageMaker, scope: t.Any) -> None:
        self.visitor = visitor
        self._maker = maker
        self._scope = scope
        self._page: Page | None = None

    @property
    def page(self) -> Page:
        """The consent markup of the request."""
        if self._page is None:
            self._page = self._maker.make_page(self._scope, self.visitor)
        return self._page


#: The state of the request being served (the middleware sets it).
CURRENT: contextvars.ContextVar[RequestState | None] = contextvars.ContextVar(
    "consent_request", default=None
)


def _state() -> RequestState:
    found = CURRENT.get()
    if found is None:
        raise RuntimeError(
            "No consent for this request: serve the app through"
            " consent.asgi.ConsentMiddleware."
        )
    return found


def page() -> Page:
    """The consent markup of the current request.

    :raises RuntimeError: outside a request served by
        :class:`~consent.asgi.ConsentMiddleware`.
    """
    return _state().page


def visitor() -> Visitor:
    """The visitor of the current request."""
    return _state().visitor


class _VisitorProxy:
    """The current request's :class:`~consent.visitor.Visitor`, looked up on
    every attribute access, as Flask-Login's ``current_user``."""

    __slots__ = ()

    def __getattr__(self, name: str) -> t.Any:
        return getattr(visitor(), name)

    def __repr__(self) -> str:
        found = CURRENT.get()
        return f"<current_consent {found.visitor if found else 'outside a request'}>"


#: The consent of the current request: ``current_consent.allows("analytics")``
#: in a view or a template (also ``request.state.consent``).
current_consent: Visitor = t.cast("Visitor", _VisitorProxy())


#: The helpers every template of the app knows by name, with ``consent``.
HELPERS = TemplateHelpers(page)

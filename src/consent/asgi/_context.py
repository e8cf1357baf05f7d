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

_page: contextvars.ContextVar[Page | None] = contextvars.ContextVar(
    "consent_page", default=None
)


def set_page(page: Page | None) -> contextvars.Token[Page | None]:
    """Make ``page`` the current request's page (the middleware does)."""
    return _page.set(page)


def reset_page(token: contextvars.Token[Page | None]) -> None:
    """Restore the page before :func:`set_page`."""
    _page.reset(token)


def page() -> Page:
    """The consent markup of the current request.

    :raises RuntimeError: outside a request served by
        :class:`~consent.asgi.ConsentMiddleware`.
    """
    found = _page.get()
    if found is None:
        raise RuntimeError(
            "No consent for this request: serve the app through"
            " consent.asgi.ConsentMiddleware."
        )
    return found


def visitor() -> Visitor:
    """The visitor of the current request."""
    return page().visitor


class _VisitorProxy:
    """The current request's :class:`~consent.visitor.Visitor`, looked up on
    every attribute access, as Flask-Login's ``current_user``."""

    __slots__ = ()

    def __getattr__(self, name: str) -> t.Any:
        return getattr(visitor(), name)

    def __repr__(self) -> str:
        found = _page.get()
        return f"<current_consent {found.visitor if found else 'outside a request'}>"


#: The consent of the current request: ``current_consent.allows("analytics")``
#: in a view or a template (also ``request.state.consent``).
current_consent: Visitor = t.cast("Visitor", _VisitorProxy())


_helpers = TemplateHelpers(page)

#: What every template gets as globals: the helpers and ``consent``.
TEMPLATE_GLOBALS: dict[str, t.Any] = {"consent": current_consent, **_helpers.globals()}

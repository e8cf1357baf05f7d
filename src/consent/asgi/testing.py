"""Compliance checks for an ASGI app's own tests (Starlette, FastAPI).

::

    from consent.asgi.testing import (
        assert_nothing_optional_before_consent,
        assert_reject_takes_one_click,
    )

    def test_consent():
        assert_nothing_optional_before_consent(app, ["/", "/about"])
        assert_reject_takes_one_click(app, "/")

Each takes the ASGI app (with :class:`~consent.asgi.ConsentMiddleware` in its
stack) and drives it through Starlette's ``TestClient``; see
:mod:`consent.testing` for what each checks. Needs ``httpx2`` (or ``httpx``),
as ``starlette.testclient`` does.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import typing as t

from ..testing import ConsentChecks
from ..testing import choice_form
from .middleware import ConsentMiddleware

if t.TYPE_CHECKING:
    from starlette.testclient import TestClient
    from starlette.types import ASGIApp


def find_middleware(app: ASGIApp) -> ConsentMiddleware:
    """The :class:`ConsentMiddleware` in ``app``'s middleware stack.

    :raises LookupError: when there is none.
    """
    layer: t.Any = app
    if getattr(layer, "middleware_stack", False) is None:
        # A Starlette app builds its stack on the first request.
        layer.middleware_stack = layer.build_middleware_stack()
    seen = 0
    while layer is not None and seen < 100:
        if isinstance(layer, ConsentMiddleware):
            return layer
        layer = getattr(layer, "middleware_stack", None) or getattr(layer, "app", None)
        seen += 1
    raise LookupError("The app has no ConsentMiddleware in its stack.")


@dataclasses.dataclass(frozen=True)
class _Response:
    status_code: int
    text: str
    set_cookie_headers: list[str]


class _Client:
    """Starlette's test client as a :class:`consent.testing.Client`."""

    def __init__(self, app: ASGIApp) -> None:
        from starlette.testclient import TestClient

        self._client = TestClient(app, base_url="http://localhost")

    def _wrap(self, response: t.Any) -> _Response:
        return _Response(
            response.status_code, response.text, response.headers.get_list("set-cookie")
        )

    def get(self, path: str) -> _Response:
        return self._wrap(self._client.get(path, follow_redirects=False))

    def post(self, path: str, data: cabc.Mapping[str, t.Any]) -> _Response:
        return self._wrap(
            self._client.post(path, data=dict(data), follow_redirects=False)
        )

    def get_cookie(self, name: str) -> str | None:
        value: str | None = self._client.cookies.get(name)
        return value

    def set_cookie(self, name: str, value: str) -> None:
        # httpx files cookies of a host without a dot under "<host>.local".
        self._client.cookies.set(name, value, domain="localhost.local")


def checks(app: ASGIApp) -> ConsentChecks:
    """The compliance checks of ``app``, over Starlette's test client."""
    return ConsentChecks(find_middleware(app).site, lambda: _Client(app))


def assert_nothing_optional_before_consent(
    app: ASGIApp, paths: cabc.Iterable[str] = ("/",)
) -> None:
    """No page sets a non-essential cookie, renders a live gated tag or loads
    from another site before the visitor has chosen."""
    checks(app).nothing_optional_before_consent(paths)


def assert_reject_takes_one_click(app: ASGIApp, path: str = "/") -> None:
    """Reject all is one button on the first layer, beside Accept all, and
    one click on it leaves nothing optional and no banner."""
    checks(app).reject_takes_one_click(path)


def assert_banner_returns_after_revision_change(
    app: ASGIApp, changed_app: ASGIApp, path: str = "/"
) -> None:
    """A choice made under ``app``'s policy is asked again under
    ``changed_app``'s (same keys, another revision)."""
    checks(app).banner_returns_after_revision_change(checks(changed_app), path)


def choose(
    client: TestClient, action: str, path: str = "/", choices: cabc.Iterable[str] = ()
) -> t.Any:
    """Make a choice the way a visitor does: load ``path``, submit its banner,
    and return the (not followed) response.

    :param action: ``accept_all``, ``reject_all`` or ``save``.
    """
    url, data = choice_form(client.get(path).text, action, choices, path)
    return client.post(url, data=data, follow_redirects=False)

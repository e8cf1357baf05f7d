"""Compliance checks for a Flask app's own tests.

::

    from consent.flask.testing import (
        assert_nothing_optional_before_consent,
        assert_reject_takes_one_click,
    )

    def test_consent(app):
        assert_nothing_optional_before_consent(app, ["/", "/about"])
        assert_reject_takes_one_click(app, "/")

Each takes a Flask app set up with :class:`consent.flask.Consent` and uses
its test client; see :mod:`consent.testing` for what each checks.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import typing as t

from ..testing import ConsentChecks
from ..testing import choice_form
from ._context import site_of

if t.TYPE_CHECKING:
    from flask import Flask
    from flask.testing import FlaskClient
    from werkzeug.test import TestResponse


@dataclasses.dataclass(frozen=True)
class _Response:
    status_code: int
    text: str
    set_cookie_headers: list[str]


class _Client:
    """A Flask test client as a :class:`consent.testing.Client`."""

    def __init__(self, client: FlaskClient) -> None:
        self._client = client

    @staticmethod
    def _wrap(response: TestResponse) -> _Response:
        return _Response(
            response.status_code,
            response.get_data(as_text=True),
            response.headers.getlist("Set-Cookie"),
        )

    def get(self, path: str) -> _Response:
        return self._wrap(self._client.get(path))

    def post(self, path: str, data: cabc.Mapping[str, t.Any]) -> _Response:
        return self._wrap(self._client.post(path, data=dict(data)))

    def get_cookie(self, name: str) -> str | None:
        cookie = self._client.get_cookie(name)
        return cookie.value if cookie is not None else None

    def set_cookie(self, name: str, value: str) -> None:
        self._client.set_cookie(name, value)


def checks(app: Flask) -> ConsentChecks:
    """The compliance checks of ``app``, over its test client."""
    return ConsentChecks(site_of(app), lambda: _Client(app.test_client()))


def assert_nothing_optional_before_consent(
    app: Flask, paths: cabc.Iterable[str] = ("/",)
) -> None:
    """No page sets a non-essential cookie, renders a live gated tag or loads
    from another site before the visitor has chosen."""
    checks(app).nothing_optional_before_consent(paths)


def assert_reject_takes_one_click(app: Flask, path: str = "/") -> None:
    """Reject all is one button on the first layer, beside Accept all, and
    one click on it leaves nothing optional and no banner."""
    checks(app).reject_takes_one_click(path)


def assert_banner_returns_after_revision_change(
    app: Flask, changed_app: Flask, path: str = "/"
) -> None:
    """A choice made under ``app``'s policy is asked again under
    ``changed_app``'s (same keys, another revision)."""
    checks(app).banner_returns_after_revision_change(checks(changed_app), path)


def choose(
    client: FlaskClient, action: str, path: str = "/", choices: cabc.Iterable[str] = ()
) -> TestResponse:
    """Make a choice the way a visitor does: load ``path``, submit its
    banner, and return the response.

    :param action: ``accept_all``, ``reject_all`` or ``save``.
    """
    url, data = choice_form(
        client.get(path).get_data(as_text=True), action, choices, path
    )
    return client.post(url, data=data)

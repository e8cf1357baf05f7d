"""Errors of the ASGI adapter."""

from __future__ import annotations

from ..exceptions import ConsentError


class ConsentRequiredError(ConsentError):
    """A route needs a category or service the visitor has not allowed.

    Raised by :func:`consent.asgi.requires`; the middleware answers it with
    a 403 page that explains and offers the choice.

    :param key: The category or service the route needs.
    """

    def __init__(self, key: str) -> None:
        super().__init__(f"This page needs {key!r}, which the visitor has not allowed.")
        #: The category or service the route needs.
        self.key = key

"""The HTTP errors of the consent endpoint, as werkzeug exceptions.

Each carries the core error in :attr:`ConsentHTTPError.error` and a
readable response (a page for forms, JSON for scripts); an app can answer
them its own way with ``app.errorhandler(ConsentHTTPError)`` or one class.
"""

from __future__ import annotations

import typing as t

from werkzeug.exceptions import BadRequest
from werkzeug.exceptions import Forbidden
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.exceptions import ServiceUnavailable
from werkzeug.exceptions import TooManyRequests

from ..exceptions import ChoiceError

if t.TYPE_CHECKING:
    from werkzeug.sansio.response import Response


class ConsentHTTPError(HTTPException):
    """A post to the consent endpoint that was refused.

    :param error: The core error: its ``status`` and ``description``.
    :param response: The readable answer made for it.
    """

    def __init__(self, error: ChoiceError, response: Response | None = None) -> None:
        super().__init__(error.description, response)
        #: The core error.
        self.error = error


class ConsentBadRequestError(ConsentHTTPError, BadRequest):
    """400: the post is not a choice (unknown action or key, unreadable body)."""


class ConsentForbiddenError(ConsentHTTPError, Forbidden):
    """403: the post did not come from this site's own page (origin, CSRF
    token), or its form expired."""


class ConsentTooLargeError(ConsentHTTPError, RequestEntityTooLarge):
    """413: the body is larger than a choice can be."""


class ConsentRateLimitedError(ConsentHTTPError, TooManyRequests):
    """429: too many choices from one client; ``Retry-After`` says when to
    try again."""


class ConsentNotRecordedError(ConsentHTTPError, ServiceUnavailable):
    """503: a grant whose receipt could not be kept; nothing was enabled."""


_BY_STATUS: dict[int, type[ConsentHTTPError]] = {
    400: ConsentBadRequestError,
    403: ConsentForbiddenError,
    413: ConsentTooLargeError,
    429: ConsentRateLimitedError,
    503: ConsentNotRecordedError,
}


def http_error(
    error: ChoiceError, response: Response | None = None
) -> ConsentHTTPError:
    """The werkzeug exception that answers ``error``."""
    return _BY_STATUS.get(error.status, ConsentBadRequestError)(error, response)

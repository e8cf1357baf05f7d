"""Errors raised by consent."""

from __future__ import annotations


class ConsentError(Exception):
    """Base class for every error raised by consent."""


class ConfigurationError(ConsentError):
    """The app or policy is set up in a way that cannot work.

    Raised when a policy is built or when an adapter is set up, never while
    serving a visitor. The message says what to change.
    """


class UnknownCategoryError(ConsentError, LookupError):
    """A category or service key is not part of the policy."""


class ReceiptNotKeptError(ConsentError):
    """Neither the receipt store nor the local spool could keep a receipt.

    A grant that cannot be demonstrated must not take effect (GDPR
    Art. 7(1)): treat the visitor as having given no consent and ask again
    later. A refusal or a withdrawal is still honoured.

    .. versionchanged:: 0.1
        Renamed from ``ReceiptNotKept``, as every error is named ``*Error``.
    """


class ChoiceError(ConsentError):
    """A request to the consent endpoint that cannot be accepted.

    Adapters answer it with :attr:`status` and :attr:`description`, the
    reason in words a visitor understands.

    :param description: Why the request was refused, and what to do.
    """

    #: The HTTP status of the answer.
    status = 400
    #: The catalogue text that tells a visitor, in their language.
    message_key = "error.bad"

    def __init__(self, description: str) -> None:
        super().__init__(description)
        #: Why the request was refused, and what to do.
        self.description = description


class BadChoiceError(ChoiceError):
    """A malformed choice: unknown action or key, unreadable body (400)."""


class ForbiddenChoiceError(ChoiceError):
    """A choice that did not prove it came from this site's own page: another
    origin, or a missing or invalid CSRF token (403)."""

    status = 403
    message_key = "error.forbidden"


class ExpiredFormError(ForbiddenChoiceError):
    """A choice posted with a CSRF token older than its lifetime (403).

    The page that answers it offers a fresh form, so the visitor only has to
    choose again.
    """

    message_key = "error.expired"


class ChoiceTooLargeError(ChoiceError):
    """A request body larger than the consent endpoint accepts (413)."""

    status = 413
    message_key = "error.too_large"


class RateLimitedError(ChoiceError):
    """Too many choices from one client in a short time (429).

    :param retry_after: Seconds after which the client may try again.
    """

    status = 429
    message_key = "error.rate_limited"

    def __init__(self, description: str, retry_after: int) -> None:
        super().__init__(description)
        #: Seconds after which the client may try again (``Retry-After``).
        self.retry_after = retry_after


class ChoiceNotRecordedError(ChoiceError):
    """A grant whose receipt could not be kept: it is not given effect (503).

    A refusal never raises it: refusing takes effect even without proof.
    """

    status = 503
    message_key = "error.not_recorded"

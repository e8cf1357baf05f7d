"""Errors raised by consent."""

from __future__ import annotations


class ConsentError(Exception):
    """Base class for every error raised by consent."""


class ConfigurationError(ConsentError):
    """The app or policy is set up in a way that cannot work.

    Raised when a policy is built or when the extension is initialised, never
    while serving a visitor. The message says what to change.
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

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

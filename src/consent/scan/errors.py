"""What stops a scan before it has a result."""

from __future__ import annotations

from ..exceptions import ConsentError


class ScanError(ConsentError):
    """The scan could not be done: no browser, the site is unreachable, or
    it took longer than allowed.

    The message is one line that says what happened and what to do; the
    ``consent scan`` command prints it and exits with status 2.
    """


class DeclarationError(ConsentError, ValueError):
    """A published cookie declaration cannot be read.

    :param message: What is wrong with it, for the report.
    """

"""Blinker signals sent by the extension (the core's, re-exported).

Each is sent with the real app as sender (never the ``current_app`` proxy)
and the keyword arguments ``state`` (the new :class:`~consent.ConsentState`)
and ``previous`` (the state before, or ``None``).
"""

from ..signals import consent_changed as consent_changed
from ..signals import consent_given as consent_given
from ..signals import consent_withdrawn as consent_withdrawn

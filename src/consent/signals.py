"""Blinker signals sent when a visitor makes a choice, by every adapter.

Each is sent with the app as sender (the Flask app, or the ASGI app the
middleware wraps) and the keyword arguments ``state`` (the new
:class:`~consent.ConsentState`) and ``previous`` (the state before, or
``None``).
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: Sent after a visitor makes a choice: every choice, first or later.
consent_given = _signals.signal("consent-given")

#: Sent after a visitor changes an earlier, still valid choice.
consent_changed = _signals.signal("consent-changed")

#: Sent after a choice takes back at least one category or service that was
#: allowed before. Cookies of what was withdrawn are expired in the response.
consent_withdrawn = _signals.signal("consent-withdrawn")

#: The signal of each name in :attr:`consent.choice.ChoiceOutcome.signals`.
BY_NAME = {
    "given": consent_given,
    "changed": consent_changed,
    "withdrawn": consent_withdrawn,
}

"""Putting the banner into an HTML body the app rendered: whole, or as it
streams out."""

from __future__ import annotations

import collections.abc as cabc
import logging
import re

logger = logging.getLogger(__name__)

_BODY_START = re.compile(rb"<body\b[^>]*>", re.IGNORECASE)
_BODY_END = re.compile(rb"</body\s*>", re.IGNORECASE)


def inject(body: bytes, markup: bytes, at_start: bool) -> bytes | None:
    """``body`` with ``markup`` after its ``<body>`` tag (``at_start``) or
    before its last ``</body>``; ``None`` when the page has no such tag."""
    if at_start:
        found = _BODY_START.search(body)
        if found is not None:
            return body[: found.end()] + markup + body[found.end() :]
    ends = list(_BODY_END.finditer(body))
    if not ends:
        return None
    at = ends[-1].start()
    return body[:at] + markup + body[at:]


class StreamInjector:
    """Put the banner into an HTML body that arrives in chunks.

    Chunks are held until the ``<body>`` tag is seen (at most ``limit``
    bytes, after which the page goes out as it is and an error is logged),
    or the body ends. Then ``decide`` says what to insert and where, as
    :meth:`Page.injection` does: the banner goes right after ``<body>``;
    ``consent.js`` alone goes before the last ``</body>`` (or at the very end
    of a page without one), so the tail of each chunk is held back from then
    on. Once :attr:`decided`, :attr:`added` is how many bytes the page grows
    by: what a ``Content-Length`` sent after that point must add.

    :param decide: What to insert, called once.
    :param limit: The most bytes held while looking for ``<body>``.
    """

    def __init__(
        self,
        decide: cabc.Callable[[], tuple[bytes, bool] | None],
        limit: int = 1 << 20,
    ) -> None:
        self._decide = decide
        self._limit = limit
        self._held = b""
        self._markup = b""
        self._at_end = False
        #: True once it is known what will be inserted.
        self.decided = False
        #: How many bytes the insertion adds, once decided.
        self.added = 0

    def _make_decision(self) -> None:
        found = self._decide()
        self.decided = True
        if found is not None:
            self._markup, at_start = found
            self._at_end = not at_start
            self.added = len(self._markup)

    def feed(self, chunk: bytes) -> bytes:
        """The bytes that can go out now (none while undecided)."""
        self._held += chunk
        if not self.decided:
            found = _BODY_START.search(self._held)
            if found is None:
                if len(self._held) <= self._limit:
                    return b""
                logger.error(
                    "No <body> tag in the first %d bytes of an HTML page: the"
                    " consent banner was not added to it.",
                    self._limit,
                )
                self.decided = True
                out, self._held = self._held, b""
                return out
            self._make_decision()
            if self._markup and not self._at_end:
                out = (
                    self._held[: found.end()] + self._markup + self._held[found.end() :]
                )
                self._held, self._markup = b"", b""
                return out
        if not self._at_end:
            out, self._held = self._held, b""
            return out
        # Before the last </body>: hold back from it (or from what could be
        # the start of one) to the end.
        cut = self._held.lower().rfind(b"</body")
        if cut == -1:
            cut = self._held.rfind(b"</")
        if cut == -1:
            cut = len(self._held)
        out, self._held = self._held[:cut], self._held[cut:]
        return out

    def close(self) -> bytes:
        """The bytes still held when the body ends, with the insertion."""
        if not self.decided:
            # No <body> tag: whatever goes in goes before </body>, or, as in
            # a page that never had one, nowhere.
            self._make_decision()
            held, self._held = self._held, b""
            markup, self._markup = self._markup, b""
            injected = inject(held, markup, False) if markup else None
            self.added = 0 if injected is None else len(markup)
            return held if injected is None else injected
        held, self._held = self._held, b""
        if not self._markup:
            return held
        markup, self._markup = self._markup, b""
        injected = inject(held, markup, False)
        # Content-Length already counts the markup: a page without </body>
        # gets it at the very end.
        return held + markup if injected is None else injected

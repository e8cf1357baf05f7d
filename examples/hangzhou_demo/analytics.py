"""First-party page-view counting, kept in memory."""

from __future__ import annotations

import collections
import threading

#: Distinct paths counted before the rest is pooled under ``OTHER``, so that
#: made-up paths cannot grow the counter without end.
MAX_PATHS = 500

#: Where views of paths beyond :data:`MAX_PATHS` are counted.
OTHER = "(other)"


class PageViews:
    """Count page views per path; safe to use from several threads.

    Only paths are counted: no address, no user agent, no identifier.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: collections.Counter[str] = collections.Counter()

    def add(self, path: str) -> None:
        """Count one view of ``path``."""
        with self._lock:
            if path not in self._counts and len(self._counts) >= MAX_PATHS:
                path = OTHER
            self._counts[path] += 1

    @property
    def total(self) -> int:
        """Every view counted so far."""
        with self._lock:
            return sum(self._counts.values())

    def by_path(self) -> dict[str, int]:
        """The counts so far, by path."""
        with self._lock:
            return dict(self._counts)

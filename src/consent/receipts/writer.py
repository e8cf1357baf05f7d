"""Receipts written straight to a store, with a time limit.

Used when a receipt cannot go to the spool (a missing or read-only folder, a
full disk): then the store is the only place left, and the visitor waits for
it, but not for longer than a time limit.
"""

from __future__ import annotations

import collections.abc as cabc
import queue
import threading
import typing as t

if t.TYPE_CHECKING:
    from .record import Receipt
    from .record import ShownTexts


class _Job:
    """One receipt waiting for the writer thread.

    ``done`` is a lock held until the writer is through with the receipt: a
    bare lock is the cheapest way to make one thread wait for another.
    """

    __slots__ = ("receipt", "texts", "done", "error", "abandoned")

    def __init__(self, receipt: Receipt, texts: ShownTexts | None) -> None:
        self.receipt = receipt
        self.texts = texts
        self.done = threading.Lock()
        self.done.acquire()
        self.error: Exception | None = None
        self.abandoned = False


class StoreWriter:
    """Write receipts to a store in a thread of its own, so that a store
    that hangs costs the caller ``timeout`` seconds and not more.

    One writer thread takes every receipt that queued up while its last
    write ran and writes them together (group commit). It is a daemon: a
    hung write never keeps the process from exiting.

    :param add: Writes receipts and the texts they name to the store.
    :param batch_size: Receipts per write at most.
    """

    def __init__(
        self,
        add: cabc.Callable[[list[Receipt], list[ShownTexts]], None],
        *,
        batch_size: int,
    ) -> None:
        self._add = add
        self._batch_size = batch_size
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def write(
        self, receipt: Receipt, texts: ShownTexts | None, timeout: float
    ) -> Exception | None:
        """Write one receipt; return ``None`` once it is committed, or the
        error (a ``TimeoutError`` after ``timeout`` seconds)."""
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._work, name="consent-receipt-writer", daemon=True
                    )
                    self._thread.start()
        job = _Job(receipt, texts)
        self._jobs.put(job)
        if not job.done.acquire(timeout=timeout):
            # A write still queued is dropped; one already running may land
            # later, which is harmless: receipts are kept once by id.
            job.abandoned = True
            return TimeoutError()
        return job.error

    def close(self, timeout: float) -> None:
        """Stop the thread, waiting ``timeout`` seconds at most."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(None)
            thread.join(timeout)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            batch, stop = [job], False
            while len(batch) < self._batch_size:
                try:
                    queued = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if queued is None:
                    stop = True
                    break
                batch.append(queued)
            live = [job for job in batch if not job.abandoned]
            if live:
                try:
                    self._add(
                        [job.receipt for job in live],
                        [job.texts for job in live if job.texts is not None],
                    )
                except Exception as err:
                    for job in live:
                        job.error = err
                for job in live:
                    job.done.release()
            if stop:
                return

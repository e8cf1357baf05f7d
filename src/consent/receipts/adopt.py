"""Spools of dead processes: found by their free owner lock, and replayed.

A live :class:`~consent.receipts.DurableRecorder` holds an owner lock on its
spool for its lifetime; the operating system releases it when the process
ends, however it ends (``SIGKILL`` too). So a spool whose owner lock can be
taken belongs to no live process, whatever its name says: process ids are
reused, locks are not.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import typing as t

from .spoolfile import APPEND_LOCK
from .spoolfile import OWNER
from .spoolfile import REPLAY_LOCK
from .spoolfile import REPLAYING
from .spoolfile import file_lock
from .spoolfile import file_size
from .spoolfile import open_locked
from .spoolfile import orphan_candidates
from .spoolfile import replay_file

logger = logging.getLogger(__name__)

if t.TYPE_CHECKING:
    from .record import Receipt
    from .record import ShownTexts
    from .store import ReceiptStore


def adopt_spool(
    store: ReceiptStore,
    spool_path: str | os.PathLike[str],
    *,
    batch_size: int = 500,
) -> int | None:
    """Replay the spool of a dead process into ``store``, and remove its files.

    A live :class:`~consent.receipts.DurableRecorder` holds an owner lock on
    its spool; the system releases it when the process ends, however it ends. A
    spool whose owner lock can be taken belongs to no live process: its
    receipts are replayed (once: the lock is held meanwhile, and replaying
    is idempotent anyway), then its files are removed, except lines that
    were not receipts, which stay in its ``.rejected`` file.

    :param store: Where the receipts go.
    :param spool_path: The spool file (``consent-spool-<pid>.jsonl``).
    :param batch_size: Receipts per replayed batch.
    :return: How many receipts were replayed, or ``None`` when a live
        process owns the spool.
    :raises Exception: whatever the store raised; the receipts stay in the
        spool, for the next try.

    .. versionadded:: 0.2
    """
    path = os.path.abspath(os.fspath(spool_path))
    owner = open_locked(path + OWNER, wait=False)
    if owner is None:
        return None
    try:
        replayed = _replay(store, path, batch_size)
        if not any(os.path.exists(path + s) for s in ("", REPLAYING)):
            # Lock files are removed while held: whoever waits for one finds
            # it gone and takes the new one (see open_locked).
            for suffix in (APPEND_LOCK, REPLAY_LOCK, OWNER):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path + suffix)
        return replayed
    finally:
        os.close(owner)


def _replay(store: ReceiptStore, path: str, batch_size: int) -> int:
    """Replay the spool at ``path`` as a recorder's ``flush()`` does: a
    replay cut short first, then the spool, taken aside under its locks."""

    def add(receipts: list[Receipt], texts: list[ShownTexts]) -> None:
        # The texts first: a receipt in the store always finds its texts.
        if texts:
            store.add_texts(texts)
        if receipts:
            store.add_many(receipts)

    replaying = path + REPLAYING
    seen: set[str] = set()
    replayed = 0
    rejected = path + ".rejected"
    with file_lock(threading.Lock(), path + REPLAY_LOCK):
        if os.path.exists(replaying):
            replayed += replay_file(
                replaying, add, batch_size=batch_size, seen=seen, rejected_path=rejected
            )
        with file_lock(threading.Lock(), path + APPEND_LOCK):
            is_empty = file_size(path) == 0
            if not is_empty:
                os.replace(path, replaying)
        if not is_empty:
            replayed += replay_file(
                replaying, add, batch_size=batch_size, seen=seen, rejected_path=rejected
            )
    return replayed


def adopt_orphans(
    store: ReceiptStore,
    spool_dir: str,
    *,
    own_path: str,
    batch_size: int,
    retry_interval: float,
    stop: threading.Event,
) -> None:
    """Replay every spool of a dead process in ``spool_dir`` (all but
    ``own_path``) into ``store``, until ``stop`` is set; a store that fails
    ends the look, which the caller makes again in ``retry_interval``
    seconds."""
    try:
        candidates = orphan_candidates(spool_dir)
    except OSError:
        return
    for path in candidates:
        if path == own_path or stop.is_set():
            continue
        try:
            replayed = adopt_spool(store, path, batch_size=batch_size)
        except Exception as err:
            # The store is down, most likely: the next look tries again.
            logger.warning(
                "The spool %s of a stopped process could not be replayed"
                " (%s); trying again in %g s.",
                path,
                type(err).__name__,
                retry_interval,
            )
            return
        if replayed:
            logger.info(
                "Replayed %d receipts from %s, the spool of a stopped process.",
                replayed,
                path,
            )

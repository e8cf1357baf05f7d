"""A local spool in front of a store: a receipt accepted is a receipt kept.

:class:`DurableRecorder` appends every receipt to this process's spool, a
JSON Lines file, and the append is on disk before the visitor gets an
answer: that is the commit point. A background thread, the shipper, writes
the receipts into the store behind the answers, many in one statement, and
removes the spool once the store holds it all. While the database is down,
receipts wait in the spool, and the shipper replays it when the database
answers again (GDPR Art. 7(1): the site must be able to demonstrate consent,
outage or not).

Every live recorder holds an owner lock on its spool, which a process loses
when it dies, even by ``SIGKILL``: live recorders replay the spools whose
lock is free (:func:`adopt_spool`). The lock, not the process id (which can
be reused), tells the living from the dead.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import threading
import time
import typing as t
import weakref

from ..exceptions import ReceiptNotKeptError
from .adopt import adopt_orphans
from .spoolfile import APPEND_LOCK
from .spoolfile import OWNER
from .spoolfile import REPLAY_LOCK
from .spoolfile import REPLAYING
from .spoolfile import TAKEN_POLL_SECONDS
from .spoolfile import Entry
from .spoolfile import Gen
from .spoolfile import SpoolLog
from .spoolfile import file_lock
from .spoolfile import file_size
from .spoolfile import gen_of
from .spoolfile import open_locked
from .spoolfile import replay_file
from .spoolfile import wait_for_writers
from .store import require_batch_size
from .writer import StoreWriter

if t.TYPE_CHECKING:
    from .record import Receipt
    from .record import ShownTexts
    from .store import ReceiptStore

logger = logging.getLogger(__name__)

# Hashes of texts a recorder remembers are in the store; past this, it
# forgets and writes them again (harmless: texts are kept once per hash).
_MAX_KNOWN_TEXTS = 1024

#: Seconds between two looks for spools of dead processes, by every live
#: recorder (``CONSENT_RECEIPTS_ADOPT_INTERVAL``); it also looks when it
#: starts.
ADOPT_INTERVAL = 10.0

#: Receipts waiting in memory for the shipper at most. Past this (a database
#: slower than the posts), the backlog is replayed from the spool instead,
#: so that memory stays bounded.
MAX_BEHIND = 10_000

#: A spool whose receipts are all in the store is removed, or set aside until
#: they are, once it grows past this many bytes or has had no new receipt
#: for :data:`IDLE_SECONDS`.
ROTATE_BYTES = 1 << 20
IDLE_SECONDS = 1.0

#: Seconds between two store writes of the shipper at least, unless a full
#: batch waits: receipts reach the store this much after their answer at most
#: (while it answers), in a few large writes rather than many small ones.
SHIP_PAUSE = 0.05

# A receipt waiting for the shipper: the receipt, its texts, and the spool
# file it was written to.
_Item = tuple["Receipt", "ShownTexts | None", Gen]


# Recorders of this process, so that a forked child lets go of the parent's
# owner locks (see _after_fork).
_RECORDERS: weakref.WeakSet[DurableRecorder] = weakref.WeakSet()


class DurableRecorder:
    """Record receipts durably: in a local spool first, then in a store.

    :meth:`record` appends the receipt to the spool, a JSON Lines file, and
    returns once the write is on disk; receipts recorded at the same time
    share one write (group commit). The shipper, a background thread, then
    writes them into the store in batches, and removes the spool once the
    store holds all it spooled. A visitor never waits for the database, and
    a receipt is never only in memory.

    When the store fails, the receipts stay in the spool; the shipper tries
    the store again every ``retry_interval`` seconds and replays the spool,
    oldest first, once it answers. Replaying is idempotent, because receipts
    are unique by id.

    While the database answers, a receipt is in it one store write after its
    answer, typically milliseconds; :meth:`sync` waits for that. A reader
    in another process replays the spools first to see the very latest (the
    ``consent receipts`` commands do). A spool another process takes away to
    replay (``flush``, ``erase``) is that process's to replay: the shipper
    never writes its receipts again, so an erasure stays erased.

    The recorder holds an owner lock on its spool (``<spool>.owner``) for
    its lifetime. When it starts, and every ``adopt_interval`` seconds, it
    replays the spools in its folder whose owner lock is free: those of
    processes that died (:func:`adopt_spool`).

    A receipt may come with the :class:`~consent.receipts.record.ShownTexts`
    its hash names. They are kept with the first receipt that needs them:
    in the spool on a line of their own before that receipt's, and in the
    store before the receipt.

    When the spool cannot be written (a missing or read-only folder, a full
    disk), the receipt goes straight to the store, given ``timeout``
    seconds.

    Give every process its own spool (``consent-spool-<pid>.jsonl``), or
    share one on purpose: appends and replays are safe between processes.
    The spool holds personal data and is readable by its owner only.

    :param store: Where receipts are kept. The recorder does not close it.
    :param spool_path: The spool file; its directory must exist. The
        recorder also creates files next to it, named after it.
    :param timeout: Seconds a receipt waits for the store when the spool
        cannot be written; what :meth:`sync` and :meth:`close` wait.
    :param retry_interval: Seconds between attempts while the store fails.
    :param background: Run the shipper, own the spool and adopt the spools
        of dead processes. ``False`` leaves every receipt in the spool until
        :meth:`flush`, as a command-line tool wants.
    :param batch_size: Receipts sent to the store per batch.
    :param adopt_interval: Seconds between two looks for spools of dead
        processes.

    .. versionchanged:: 0.2
        The spool is the commit point and the store is written behind it;
        the owner lock and adoption; :meth:`sync`, :meth:`knows_texts` and
        ``adopt_interval``.
    """

    def __init__(
        self,
        store: ReceiptStore,
        spool_path: str | os.PathLike[str],
        *,
        timeout: float = 2.0,
        retry_interval: float = 1.0,
        background: bool = True,
        batch_size: int = 500,
        adopt_interval: float = ADOPT_INTERVAL,
    ) -> None:
        require_batch_size(batch_size)
        #: The store receipts are kept in.
        self.store = store
        #: The spool file.
        self.spool_path = os.path.abspath(os.fspath(spool_path))
        self._dir = os.path.dirname(self.spool_path)
        self._replaying_path = self.spool_path + REPLAYING
        self._rejected_path = self.spool_path + ".rejected"
        self._owner_path = self.spool_path + OWNER
        self._append_lock_path = self.spool_path + APPEND_LOCK
        self._replay_lock_path = self.spool_path + REPLAY_LOCK
        self._timeout = timeout
        self._retry_interval = retry_interval
        self._background = background
        self._batch_size = batch_size
        self._adopt_interval = adopt_interval
        self._append_lock = threading.Lock()
        self._replay_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._skip_store_until = 0.0
        self._is_healthy = True
        self._is_closed = False
        self._stop = threading.Event()
        self._log = SpoolLog(self.spool_path, self._written)
        self._writer = StoreWriter(self._add, batch_size=batch_size)
        # Whether receipts appended from now on are handed to the shipper in
        # memory too; and whether the spool holds receipts that are not (an
        # outage, a backlog, lines of another process), to replay from disk.
        # Both change only while the log is held.
        self._is_tracked = background
        self._disk_pending = self._has_pending()
        self._disk_epoch = 0
        # The shipper's queue, and counts of receipts handed to it and done
        # with (kept, or left to a replay), in all and per spool file.
        self._ship_cond = threading.Condition(threading.Lock())
        self._ship_queue: collections.deque[_Item] = collections.deque()
        self._appended = 0
        self._settled = 0
        self._gen_counts: dict[Gen, list[int]] = {}
        self._retiring: Gen | None = None
        self._is_woken = False
        self._last_ship = 0.0
        self._stored_texts: set[str] = set()
        self._owner_fd: int | None = None
        self._shipper: threading.Thread | None = None
        _RECORDERS.add(self)
        if background:
            self._take_ownership()
            self._shipper = threading.Thread(
                target=self._ship_forever, name="consent-receipt-shipper", daemon=True
            )
            self._shipper.start()

    def __repr__(self) -> str:
        return f"<DurableRecorder {self.store!r} spool={self.spool_path!r}>"

    # Recording.

    def record(self, receipt: Receipt, texts: ShownTexts | None = None) -> None:
        """Keep a receipt: in the spool, on disk, before this returns.

        :param receipt: The receipt.
        :param texts: What its ``texts_hash`` names, kept too unless this
            recorder already kept it.
        :raises ReceiptNotKeptError: when neither the spool nor the store
            could keep it, or the recorder is closed.
        """
        if self._is_closed:
            raise ReceiptNotKeptError("The receipt recorder is closed; open a new one.")
        if texts is not None and texts.texts_hash in self._stored_texts:
            texts = None
        try:
            self._log.append(Entry(receipt, texts))
        except OSError as err:
            self._record_in_store(receipt, texts, err)

    def knows_texts(self, texts_hash: str) -> bool:
        """True when the texts of ``texts_hash`` are known to be in the
        store: :meth:`record` then needs no :class:`ShownTexts`."""
        return texts_hash in self._stored_texts

    def _written(self, entry: Entry, gen: Gen, has_foreign: bool) -> None:
        # Called by the log after each durable append, in the appending
        # thread, before the log lets anyone hold it.
        with self._ship_cond:
            if has_foreign or not self._is_tracked:
                # Lines the shipper does not have: replayed from the file.
                self._mark_disk_pending()
                if not self._is_tracked:
                    return
            if len(self._ship_queue) >= MAX_BEHIND:
                # The store cannot keep up: leave the backlog to a replay.
                self._drop_queue()
                self._is_tracked = False
                self._mark_disk_pending()
            else:
                self._ship_queue.append((entry.receipt, entry.texts, gen))
                self._appended += 1
                counts = self._gen_counts.get(gen)
                if counts is None:
                    counts = self._gen_counts[gen] = [0, 0]
                counts[0] += 1
                if len(self._ship_queue) == 1:
                    self._ship_cond.notify()

    def _mark_disk_pending(self) -> None:
        self._disk_pending = True
        self._disk_epoch += 1

    def _drop_queue(self) -> None:
        """Forget the receipts waiting in memory: they are in the spool
        (called with the shipper's condition held)."""
        for _, _, gen in self._ship_queue:
            counts = self._gen_counts.get(gen)
            if counts is not None:
                counts[1] += 1
        self._settled += len(self._ship_queue)
        self._ship_queue.clear()

    def _record_in_store(
        self, receipt: Receipt, texts: ShownTexts | None, spool_error: OSError
    ) -> None:
        if time.monotonic() >= self._skip_store_until:
            error = self._writer.write(receipt, texts, self._timeout)
            if error is None:
                self._store_worked()
                return
            self._store_failed(error)
        raise ReceiptNotKeptError(
            f"The spool {self.spool_path!r} could not be written and the receipt"
            " store failed too: check that the spool's directory exists and is"
            " writable, and that the disk is not full."
        ) from spool_error

    def _add(self, receipts: list[Receipt], texts: list[ShownTexts]) -> None:
        """Keep receipts in the store, and first the texts they name: a
        receipt in the store always finds its texts there."""
        new = {
            shown.texts_hash: shown
            for shown in texts
            if shown.texts_hash not in self._stored_texts
        }
        if new:
            self.store.add_texts(new.values())
            if len(self._stored_texts) >= _MAX_KNOWN_TEXTS:
                self._stored_texts.clear()
            self._stored_texts.update(new)
        if receipts:
            self.store.add_many(receipts)

    def _store_failed(self, err: Exception) -> None:
        with self._state_lock:
            self._skip_store_until = time.monotonic() + self._retry_interval
            was_healthy, self._is_healthy = self._is_healthy, False
        if was_healthy:
            timed_out = isinstance(err, TimeoutError)
            reason = "timed out" if timed_out else type(err).__name__
            logger.warning(
                "The receipt store failed (%s); receipts wait in the spool %s until"
                " it is back.",
                reason,
                self.spool_path,
            )

    def _store_worked(self) -> None:
        if self._is_healthy and not self._skip_store_until:
            return
        with self._state_lock:
            was_healthy, self._is_healthy = self._is_healthy, True
            self._skip_store_until = 0.0
        if not was_healthy:
            logger.info("The receipt store is back.")

    # Shipping.

    def sync(self, timeout: float | None = None) -> bool:
        """Wait until every receipt recorded so far is in the store.

        Readers in this process call it before they read (the keeper's
        :meth:`~consent.receipts.ReceiptKeeper.store` does). Without a
        shipper (``background=False``), it replays the spool itself.

        :param timeout: Seconds to wait at most; the recorder's ``timeout``
            when ``None``.
        :return: True when they are all in the store; False when some still
            wait in the spool (the store is failing, or slow).
        """
        if not self._background:
            self.flush()
            return True
        deadline = time.monotonic() + (self._timeout if timeout is None else timeout)
        with self._ship_cond:
            target = self._appended
            self._is_woken = True
            self._ship_cond.notify_all()
            while self._settled < target or self._disk_pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stop.is_set():
                    return False
                self._ship_cond.wait(remaining)
            return True

    def _ship_forever(self) -> None:
        next_adoption = 0.0
        while not self._stop.is_set():
            # Another process may have taken the spool aside to replay it:
            # it waits for this process to let the file go.
            self._let_go_if_taken()
            now = time.monotonic()
            if now >= next_adoption:
                next_adoption = now + self._adopt_interval
                if self._owner_fd is None:
                    self._take_ownership()
                self._adopt_orphans()
            if self._disk_pending and now >= self._skip_store_until:
                try:
                    self.flush()
                except Exception as err:
                    self._store_failed(err)
            batch = self._next_batch(next_adoption)
            if batch:
                self._ship(batch)
            if not self._stop.is_set():
                self._tidy(is_idle=not batch)

    def _next_batch(self, next_adoption: float) -> list[_Item]:
        with self._ship_cond:
            now = time.monotonic()
            backoff = self._skip_store_until - now
            if backoff > 0:
                # The store failed a moment ago: let it be until then.
                wait = min(next_adoption - now, backoff)
            elif self._ship_queue or self._disk_pending:
                wait = 0.0
            else:
                wait = next_adoption - now
                if self._log.size and self._retiring is None:
                    wait = min(wait, IDLE_SECONDS)
            if self._log.gen is not None:
                wait = min(wait, TAKEN_POLL_SECONDS)
            if wait > 0 and not self._is_woken:
                self._ship_cond.wait(wait)
            # Let receipts gather: one store write for many, rather than a
            # commit (and a flush to disk) for each post.
            pause = self._last_ship + SHIP_PAUSE - time.monotonic()
            if 0 < pause and len(self._ship_queue) < self._batch_size:
                if not self._is_woken:
                    self._ship_cond.wait(pause)
            self._is_woken = False
            self._last_ship = time.monotonic()
            if time.monotonic() < self._skip_store_until:
                return []
            count = min(len(self._ship_queue), self._batch_size)
            return [self._ship_queue.popleft() for _ in range(count)]

    def _ship(self, batch: list[_Item]) -> None:
        kept = 0
        try:
            with self._replay_locked():
                # Receipts of a spool another process took away to replay
                # are that process's to keep, never again from memory.
                ours = {gen_of(self.spool_path)}
                if self._retiring is not None:
                    if gen_of(self._replaying_path) == self._retiring:
                        ours.add(self._retiring)
                    else:
                        self._retiring = None
                live = [item for item in batch if item[2] in ours]
                self._add(
                    [item[0] for item in live],
                    [item[1] for item in live if item[1] is not None],
                )
                kept = len(live)
        except Exception as err:
            # Everything waiting is in the spool: replay it from there once
            # the store is back.
            with self._log.holding(), self._ship_cond:
                self._drop_queue()
                self._is_tracked = False
                self._mark_disk_pending()
            self._store_failed(err)
        else:
            if kept:
                self._store_worked()
        with self._ship_cond:
            self._settled += len(batch)
            for _, _, gen in batch:
                counts = self._gen_counts.get(gen)
                if counts is not None:
                    counts[1] += 1
            self._ship_cond.notify_all()

    def _is_kept(self, gen: Gen | None) -> bool:
        with self._ship_cond:
            counts = self._gen_counts.get(gen) if gen is not None else None
            return counts is None or counts[1] >= counts[0]

    def _tidy(self, *, is_idle: bool) -> None:
        """Remove a spool set aside once the store holds all of it; set aside
        (or remove) the spool once it grew large, or idle."""
        if self._retiring is not None:
            if self._is_kept(self._retiring):
                with self._replay_locked():
                    if self._retiring == gen_of(self._replaying_path):
                        os.unlink(self._replaying_path)
                    with self._ship_cond:
                        self._gen_counts.pop(self._retiring, None)
                    self._retiring = None
            return
        log = self._log
        if not log.size or self._disk_pending or not self._is_tracked:
            return
        if self._owner_fd is None:
            return  # another recorder may write to it: leave it to flush()
        is_quiet = time.monotonic() - log.last_write >= IDLE_SECONDS
        if log.size < ROTATE_BYTES and not (is_idle and is_quiet):
            return
        with self._replay_locked():
            if os.path.exists(self._replaying_path):
                return
            with log.holding():
                gen = log.gen
                if gen is None or self._disk_pending:
                    return
                is_kept = self._is_kept(gen)
                try:
                    found = os.stat(self.spool_path)
                except FileNotFoundError:
                    return
                if (found.st_dev, found.st_ino) == gen and found.st_size != log.size:
                    # Lines of another process: replayed from the file.
                    with self._ship_cond:
                        self._mark_disk_pending()
                    return
                if (found.st_dev, found.st_ino) == gen:
                    if is_kept:
                        # The store holds all of it: a crash from here on
                        # loses nothing.
                        os.unlink(self.spool_path)
                    else:
                        os.replace(self.spool_path, self._replaying_path)
                        self._retiring = gen
                log.close_file()
                if is_kept:
                    with self._ship_cond:
                        self._gen_counts.pop(gen, None)

    # Replaying.

    def _replay_locked(self) -> t.ContextManager[None]:
        # Another process holding the replay lock may be waiting for this
        # one to let go of the spool file it took aside (wait_for_writers):
        # this process does so between its tries.
        return file_lock(
            self._replay_lock,
            self._replay_lock_path,
            while_waiting=self._let_go_if_taken,
        )

    def _let_go_if_taken(self) -> None:
        if self._log.let_go_if_taken():
            # The process that took the file replays it; should it give up
            # waiting for this one, it leaves the file for the next replay,
            # which this process then makes itself.
            with self._ship_cond:
                self._mark_disk_pending()

    def _has_pending(self) -> bool:
        paths = (self._replaying_path, self.spool_path)
        return any(file_size(path) > 0 for path in paths)

    def flush(self) -> int:
        """Replay the spool into the store now, oldest receipt first.

        A replay cut short by a crash left a ``.replaying`` file behind; it
        is replayed first. What waits in memory for the shipper is in the
        spool, and replayed with it.

        :return: How many spooled receipts were sent to the store.
        :raises Exception: whatever the store raised; the receipts not yet
            replayed stay in the spool.
        """
        with self._replay_locked():
            replayed = 0
            # A receipt written while another process took the spool away is
            # in both files (see SpoolLog): replayed and counted once.
            seen: set[str] = set()
            if os.path.exists(self._replaying_path):
                replayed += self._replay_file(seen)
                self._retiring = None
                if os.path.exists(self._replaying_path):
                    # Its owner still writes to it: the rest, next time.
                    return replayed
            with self._log.holding(), self._ship_cond:
                epoch = self._disk_epoch
                # Until the replay is through, sync() must not take the
                # receipts dropped from memory below for kept.
                self._disk_pending = True
                with file_lock(self._append_lock, self._append_lock_path):
                    is_empty = file_size(self.spool_path) == 0
                    if not is_empty:
                        # New receipts go to a fresh spool meanwhile.
                        os.replace(self.spool_path, self._replaying_path)
                self._log.close_file()
                self._is_tracked = self._background
                self._drop_queue()
                self._gen_counts.clear()
            if not is_empty:
                replayed += self._replay_file(seen)
            with self._ship_cond:
                if epoch == self._disk_epoch:
                    self._disk_pending = False
                self._ship_cond.notify_all()
        if replayed:
            logger.info("Replayed %d spooled receipts.", replayed)
            self._store_worked()
        return replayed

    def _replay_file(self, seen: set[str]) -> int:
        path = self._replaying_path
        is_let_go = wait_for_writers(path, self._timeout)
        if not is_let_go:
            logger.warning(
                "The process that owns the spool %s did not let it go within"
                " %g s; what it holds is replayed now and the file is kept for"
                " the next replay.",
                path,
                self._timeout,
            )
        return replay_file(
            path,
            self._add,
            batch_size=self._batch_size,
            seen=seen,
            rejected_path=self._rejected_path,
            remove=is_let_go,
        )

    # Owning and adopting.

    def _take_ownership(self) -> None:
        # Held until close() or the end of the process: meanwhile no other
        # process adopts this spool. Not having it yet (another process is
        # adopting a spool of this name, left by a dead process of the same
        # id) is harmless: the shipper tries again.
        try:
            self._owner_fd = open_locked(self._owner_path, wait=False)
        except OSError:
            self._owner_fd = None
        if self._owner_fd is not None:
            self._log.own()

    def _adopt_orphans(self) -> None:
        adopt_orphans(
            self.store,
            self._dir,
            own_path=self.spool_path,
            batch_size=self._batch_size,
            retry_interval=self._adopt_interval,
            stop=self._stop,
        )

    def close(self) -> None:
        """Stop the background threads; spooled receipts stay in the spool.

        Gives the shipper up to ``timeout`` seconds to write what waits in
        memory. A spool left with receipts in it is replayed later: by a
        recorder on the same path, by any live recorder in its folder (it
        is no longer owned), or by ``consent receipts flush``. A recorder
        whose receipts are all in the store removes its files.
        """
        with self._state_lock:
            if self._is_closed:
                return
            self._is_closed = True
        shipper = self._shipper
        if shipper is not None and shipper.is_alive():
            if self._is_healthy and not self._disk_pending:
                self.sync(self._timeout)
        self._stop.set()
        with self._ship_cond:
            self._ship_cond.notify_all()
        self._writer.close(self._timeout + 1.0)
        if shipper is not None:
            shipper.join(self._timeout + 1.0)
        if self._owner_fd is not None:
            with contextlib.suppress(OSError):
                self._remove_if_kept()
        with self._log.holding():
            self._log.close_file()
        if self._owner_fd is not None:
            os.close(self._owner_fd)
            self._owner_fd = None

    def _remove_if_kept(self) -> None:
        """Remove the spool and its lock files when the store holds all that
        was spooled (a process that stops cleanly leaves nothing behind)."""
        with self._ship_cond:
            is_done = self._settled >= self._appended
        if not is_done or self._disk_pending or self._retiring is not None:
            return
        with self._replay_locked():
            if os.path.exists(self._replaying_path):
                return
            log = self._log
            with log.holding():
                if self._disk_pending:
                    return
                if log.gen is not None:
                    found = os.stat(self.spool_path)
                    if (found.st_dev, found.st_ino) != log.gen or (
                        found.st_size != log.size
                    ):
                        return
                    os.unlink(self.spool_path)
                elif os.path.exists(self.spool_path):
                    return  # not a file this recorder wrote
                log.close_file()
            for path in (self._append_lock_path, self._replay_lock_path):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        os.unlink(self._owner_path)


def _after_fork() -> None:
    # A child process must not hold its parent's owner locks (the parent may
    # die first: its spool must then be adoptable), nor use its recorders,
    # whose threads did not survive the fork.
    for recorder in list(_RECORDERS):
        recorder._is_closed = True
        recorder._log.close_file()
        if recorder._owner_fd is not None:
            with contextlib.suppress(OSError):
                os.close(recorder._owner_fd)
            recorder._owner_fd = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)

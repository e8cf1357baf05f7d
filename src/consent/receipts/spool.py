"""A local spool in front of a store: a receipt accepted is a receipt kept.

:class:`DurableRecorder` gives the store a few seconds; when the database is
down or too slow, the receipt goes to a JSON Lines file, fsynced before the
visitor gets an answer, and a background thread replays the file into the
store once it answers again (GDPR Art. 7(1): the site must be able to
demonstrate consent, outage or not).
"""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import glob
import logging
import os
import queue
import sys
import threading
import time
import typing as t

from ..exceptions import ReceiptNotKeptError
from .record import Receipt
from .record import ShownTexts
from .record import is_texts_line
from .store import require_batch_size

if t.TYPE_CHECKING:
    from .store import ReceiptStore

logger = logging.getLogger(__name__)

# Not inherited by child processes; bytes as written on every platform.
_OPEN_FLAGS = getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
# Hashes of texts a recorder remembers having kept; past this, it forgets
# and writes them again (harmless: texts are kept once per hash).
_MAX_KNOWN_TEXTS = 1024


#: How spool files are named in a spool directory: one per process.
SPOOL_PATTERN = "consent-spool-*.jsonl"


def spool_name(pid: int) -> str:
    """The name of the spool file of process ``pid``."""
    return SPOOL_PATTERN.replace("*", str(pid))


def spool_paths(spool_dir: str) -> list[str]:
    """Every spool in ``spool_dir``, of any process, alive or not; a spool
    whose replay was cut short is found by its ``.replaying`` file."""
    pattern = os.path.join(glob.escape(spool_dir), SPOOL_PATTERN)
    found = set(glob.glob(pattern))
    for leftover in glob.glob(pattern + ".replaying"):
        found.add(leftover[: -len(".replaying")])
    return sorted(found)


def rejected_paths(spool_dir: str) -> list[str]:
    """The files in ``spool_dir`` where replays set aside spooled lines that
    were not receipts, for a person to look at."""
    pattern = os.path.join(glob.escape(spool_dir), SPOOL_PATTERN + ".rejected")
    return sorted(glob.glob(pattern))


def _fsync_dir(path: str) -> None:
    # A created, renamed or removed file only survives a crash once its
    # directory entry is on disk too. Windows has no such step (and cannot
    # open a directory as a file).
    if sys.platform == "win32":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:  # missing, or its folder is
        return 0


def _lock_file(fd: int) -> None:
    # Imported here, where it is used: fcntl exists only on Unix, and the
    # package must import everywhere.
    if sys.platform == "win32":
        import msvcrt

        # Blocks (retrying for up to 10 s) until the first byte is free;
        # closing the file releases it.
        msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX)


@contextlib.contextmanager
def _file_lock(lock: threading.Lock, path: str) -> cabc.Iterator[None]:
    # The thread lock orders this process's threads; the file lock orders
    # processes that share the spool, such as a web worker and `flush` from
    # the command line.
    with lock:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | _OPEN_FLAGS, 0o600)
        try:
            _lock_file(fd)
            yield
        finally:
            os.close(fd)


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


class DurableRecorder:
    """Record receipts in a store, or in a local spool when the store fails.

    :meth:`record` gives the store ``timeout`` seconds. When the store fails
    or is too slow, the receipt is appended to the spool, a JSON Lines file
    that is fsynced before :meth:`record` returns, and a background thread
    replays the spool into the store, oldest first, once the store answers
    again. Replaying is idempotent because receipts are unique by id, so a
    receipt that reached the store late and was spooled too is kept once.
    After a failure the store is left alone for ``retry_interval`` seconds,
    so that visitors do not each wait for the timeout during an outage.

    A receipt may come with the :class:`~consent.receipts.record.ShownTexts`
    its hash names. The recorder keeps them with the first receipt that
    needs them, in the store or, during an outage, in the spool on a line of
    their own before that receipt's, so that a replay keeps them too.

    Give every process its own spool, such as
    ``f"{instance_path}/consent-spool-{os.getpid()}.jsonl"``, or one path
    shared on purpose: appends and replays are locked between processes.
    The spool holds personal data and is created readable by its owner only.

    :param store: Where receipts are kept. The recorder does not close it.
    :param spool_path: The spool file; its directory must exist. The
        recorder also creates files next to it, named after it.
    :param timeout: Seconds :meth:`record` waits for the store.
    :param retry_interval: Seconds between replay attempts while the store
        is failing.
    :param background: Replay in a background thread. ``False`` leaves
        replaying to :meth:`flush`, as a command-line tool wants.
    :param batch_size: Receipts sent to the store per replayed batch.
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
    ) -> None:
        require_batch_size(batch_size)
        #: The store receipts are kept in.
        self.store = store
        #: The spool file.
        self.spool_path = os.path.abspath(os.fspath(spool_path))
        self._dir = os.path.dirname(self.spool_path)
        self._replaying_path = self.spool_path + ".replaying"
        self._rejected_path = self.spool_path + ".rejected"
        self._append_lock_path = self.spool_path + ".lock"
        self._replay_lock_path = self.spool_path + ".replay-lock"
        self._timeout = timeout
        self._retry_interval = retry_interval
        self._background = background
        self._batch_size = batch_size
        self._append_lock = threading.Lock()
        self._replay_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._workers: list[threading.Thread] = []
        self._replayer: threading.Thread | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._skip_store_until = 0.0
        self._is_healthy = True
        self._is_closed = False
        # Hashes of texts known to be in the store, and those written to the
        # spool file (known by its device and inode: a replay renames it).
        self._stored_texts: set[str] = set()
        self._spooled_texts: set[str] = set()
        self._spool_file: tuple[int, int] | None = None
        if background and self._has_pending():
            self._start_replayer()

    def __repr__(self) -> str:
        return f"<DurableRecorder {self.store!r} spool={self.spool_path!r}>"

    def record(self, receipt: Receipt, texts: ShownTexts | None = None) -> None:
        """Keep a receipt in the store, or else in the spool.

        Returns once the receipt is committed to the store or fsynced to the
        spool.

        :param receipt: The receipt.
        :param texts: What its ``texts_hash`` names, kept too unless this
            recorder already kept it.
        :raises ReceiptNotKeptError: when neither could keep it, or the
            recorder is closed.
        """
        if self._is_closed:
            raise ReceiptNotKeptError("The receipt recorder is closed; open a new one.")
        if texts is not None and texts.texts_hash in self._stored_texts:
            texts = None
        if time.monotonic() >= self._skip_store_until:
            job = self._submit(receipt, texts)
            if not job.done.acquire(timeout=self._timeout):
                # A write still queued is dropped; one already running may
                # land later, which the spool's idempotent replay tolerates.
                job.abandoned = True
                self._store_failed(TimeoutError())
            elif job.error is not None:
                self._store_failed(job.error)
            else:
                self._store_worked()
                return
        try:
            self._append(receipt, texts)
        except OSError as err:
            raise ReceiptNotKeptError(
                f"The receipt store failed and the spool {self.spool_path!r} could"
                " not be written either: check that its directory exists and is"
                " writable, and that the disk is not full."
            ) from err
        if self._background:
            self._start_replayer()
            self._wake.set()

    def _submit(self, receipt: Receipt, texts: ShownTexts | None) -> _Job:
        # The write runs in a worker thread, so that a store that hangs costs
        # the visitor `timeout` seconds and not more. Workers are daemons: a
        # hung write never keeps the process from exiting.
        if not self._workers:
            with self._state_lock:
                if not self._workers:
                    # One writer: it commits everything that queued up while
                    # its last commit ran (group commit), and never competes
                    # with a sibling for the database's write lock.
                    worker = threading.Thread(
                        target=self._work, name="consent-receipt-writer", daemon=True
                    )
                    worker.start()
                    self._workers.append(worker)
        job = _Job(receipt, texts)
        self._jobs.put(job)
        return job

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            # Group commit: receipts that arrived while the previous write
            # ran go to the store together, in one transaction and so one
            # fsync, and every waiting request is answered when it is durable.
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
        self.store.add_many(receipts)

    def _store_failed(self, err: Exception) -> None:
        with self._state_lock:
            self._skip_store_until = time.monotonic() + self._retry_interval
            was_healthy, self._is_healthy = self._is_healthy, False
        if was_healthy:
            timed_out = isinstance(err, TimeoutError)
            reason = "timed out" if timed_out else type(err).__name__
            logger.warning(
                "The receipt store failed (%s); receipts go to the spool %s until"
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
            # Whatever waits in the spool can go now.
            self._wake.set()

    def _append(self, receipt: Receipt, texts: ShownTexts | None) -> None:
        data = (receipt.to_json() + "\n").encode()
        with _file_lock(self._append_lock, self._append_lock_path):
            fd = os.open(
                self.spool_path,
                os.O_RDWR | os.O_APPEND | os.O_CREAT | _OPEN_FLAGS,
                0o600,
            )
            try:
                stat = os.fstat(fd)
                size = stat.st_size
                spool_file = (stat.st_dev, stat.st_ino)
                if spool_file != self._spool_file:
                    self._spool_file = spool_file
                    self._spooled_texts.clear()
                if texts is not None and texts.texts_hash not in self._spooled_texts:
                    # Written together with its receipt, in one write: the
                    # texts come before the first receipt that names them.
                    data = (texts.to_json() + "\n").encode() + data
                if size and not self._ends_a_line(fd, size):
                    # A crash cut the last line short: end it, so that only
                    # that line is lost and not this one too.
                    data = b"\n" + data
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            if texts is not None:
                if len(self._spooled_texts) >= _MAX_KNOWN_TEXTS:
                    self._spooled_texts.clear()
                self._spooled_texts.add(texts.texts_hash)
            if size == 0:
                _fsync_dir(self._dir)

    @staticmethod
    def _ends_a_line(fd: int, size: int) -> bool:
        # Reading moves the offset, not where an O_APPEND write goes.
        os.lseek(fd, size - 1, os.SEEK_SET)
        return os.read(fd, 1) == b"\n"

    def _has_pending(self) -> bool:
        return any(_size(path) > 0 for path in (self._replaying_path, self.spool_path))

    def flush(self) -> int:
        """Replay the spool into the store now, oldest receipt first.

        A replay cut short by a crash left a ``.replaying`` file behind; it
        is replayed first.

        :return: How many spooled receipts were sent to the store.
        :raises Exception: whatever the store raised; the receipts not yet
            replayed stay in the spool.
        """
        with _file_lock(self._replay_lock, self._replay_lock_path):
            replayed = 0
            if os.path.exists(self._replaying_path):
                replayed += self._replay_file()
            with _file_lock(self._append_lock, self._append_lock_path):
                is_empty = _size(self.spool_path) == 0
                if not is_empty:
                    # New receipts go to a fresh spool while this one replays.
                    os.replace(self.spool_path, self._replaying_path)
                    _fsync_dir(self._dir)
            if not is_empty:
                replayed += self._replay_file()
        if replayed:
            logger.info("Replayed %d spooled receipts.", replayed)
            self._store_worked()
        return replayed

    def _replay_file(self) -> int:
        replayed = 0
        rejected: list[bytes] = []
        batch: list[Receipt] = []
        texts: list[ShownTexts] = []
        with open(self._replaying_path, "rb") as lines:
            for line in lines:
                if not line.strip():
                    continue
                try:
                    if is_texts_line(line):
                        texts.append(ShownTexts.from_json(line))
                        continue
                    batch.append(Receipt.from_json(line))
                except ValueError:
                    rejected.append(line.rstrip(b"\n") + b"\n")
                    continue
                if len(batch) >= self._batch_size:
                    self._add(batch, texts)
                    replayed += len(batch)
                    batch, texts = [], []
        if batch or texts:
            self._add(batch, texts)
            replayed += len(batch)
        if rejected:
            # Unreadable lines are set aside for a person to look at, rather
            # than blocking the spool or vanishing.
            fd = os.open(
                self._rejected_path,
                os.O_WRONLY | os.O_APPEND | os.O_CREAT | _OPEN_FLAGS,
                0o600,
            )
            with os.fdopen(fd, "ab") as out:
                out.writelines(rejected)
                out.flush()
                os.fsync(out.fileno())
            logger.warning(
                "%d spooled lines were not receipts; they were moved to %s.",
                len(rejected),
                self._rejected_path,
            )
        os.unlink(self._replaying_path)
        _fsync_dir(self._dir)
        return replayed

    def _start_replayer(self) -> None:
        with self._state_lock:
            if self._replayer is not None or self._is_closed:
                return
            self._replayer = threading.Thread(
                target=self._replay_forever, name="consent-receipt-replay", daemon=True
            )
            self._replayer.start()

    def _replay_forever(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            if self._has_pending():
                try:
                    self.flush()
                except Exception as err:
                    self._store_failed(err)
                    self._stop.wait(self._retry_interval)
                continue
            # Sleep until a receipt is spooled; the bound also picks up a
            # spool left by a crashed flush from another process.
            self._wake.wait(60.0)

    def close(self) -> None:
        """Stop the background threads; spooled receipts stay in the spool.

        Waits a bounded time for a replay in progress to finish.
        """
        with self._state_lock:
            self._is_closed = True
            workers, self._workers = self._workers, []
            replayer, self._replayer = self._replayer, None
        self._stop.set()
        self._wake.set()
        for _ in workers:
            self._jobs.put(None)
        for thread in [*workers, *([replayer] if replayer else [])]:
            thread.join(self._timeout + 1.0)

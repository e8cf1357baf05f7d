"""Spool files: their names, their locks, durable appends and replays.

A spool is a JSON Lines file of receipts (and of the texts they name), one
per process. :class:`SpoolLog` appends to it: receipts that arrive together
share one write, which is on disk when it returns (group commit). The files
next to a spool are named after it: ``.replaying`` (a spool taken aside to
be replayed), ``.rejected`` (lines that were not receipts), ``.owner`` (the
lock a live recorder holds), ``.lock`` and ``.replay-lock``.
"""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import glob
import logging
import os
import sys
import threading
import time
import typing as t

from .record import Receipt
from .record import ShownTexts
from .record import is_texts_line

logger = logging.getLogger(__name__)

# Not inherited by child processes; bytes as written on every platform.
OPEN_FLAGS = getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
# Each write to the spool reaches the disk before it returns: one system
# call per group of receipts instead of a write and an fsync. Where the flag
# does not exist (Windows), an fsync follows the write.
_DSYNC = getattr(os, "O_DSYNC", 0)
# Hashes of texts a log remembers having written to its file; past this, it
# forgets and writes them again (harmless: texts are kept once per hash).
_MAX_KNOWN_TEXTS = 1024
# Receipt ids a replay remembers, to send a receipt written twice once.
_MAX_SEEN = 100_000

#: Seconds at most before a live owner sees that another process took its
#: spool aside, and lets the file go (see :func:`wait_for_writers`).
TAKEN_POLL_SECONDS = 0.1

#: How spool files are named in a spool directory: one per process.
SPOOL_PATTERN = "consent-spool-*.jsonl"

REPLAYING = ".replaying"
OWNER = ".owner"
APPEND_LOCK = ".lock"
REPLAY_LOCK = ".replay-lock"

#: A spool file as (device, inode): which file a receipt went to, whatever
#: its name is now.
Gen = tuple[int, int]


def spool_name(pid: int) -> str:
    """The name of the spool file of process ``pid``."""
    return SPOOL_PATTERN.replace("*", str(pid))


def spool_paths(spool_dir: str) -> list[str]:
    """Every spool in ``spool_dir``, of any process, alive or not; a spool
    whose replay was cut short is found by its ``.replaying`` file."""
    pattern = os.path.join(glob.escape(spool_dir), SPOOL_PATTERN)
    found = set(glob.glob(pattern))
    for leftover in glob.glob(pattern + REPLAYING):
        found.add(leftover[: -len(REPLAYING)])
    return sorted(found)


def rejected_paths(spool_dir: str) -> list[str]:
    """The files in ``spool_dir`` where replays set aside spooled lines that
    were not receipts, for a person to look at."""
    pattern = os.path.join(glob.escape(spool_dir), SPOOL_PATTERN + ".rejected")
    return sorted(glob.glob(pattern))


def orphan_candidates(spool_dir: str) -> list[str]:
    """Spools in ``spool_dir``, and the paths of spools gone whose owner
    file is left (a process that stopped with nothing spooled)."""
    found = set(spool_paths(spool_dir))
    pattern = os.path.join(glob.escape(spool_dir), SPOOL_PATTERN + OWNER)
    for owner in glob.glob(pattern):
        found.add(owner[: -len(OWNER)])
    return sorted(found)


def fsync_dir(path: str) -> None:
    """Make the entries of directory ``path`` durable.

    A created, renamed or removed file only survives a crash once its
    directory entry is on disk too. Windows has no such step (and cannot
    open a directory as a file).
    """
    if sys.platform == "win32":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_size(path: str) -> int:
    """The size of ``path``; 0 when it or its folder is missing."""
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def gen_of(path: str) -> Gen | None:
    """The (device, inode) of the file at ``path``, or ``None``."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return (found.st_dev, found.st_ino)


def wait_for_writers(path: str, timeout: float) -> bool:
    """Wait until no live owner writes to the spool file at ``path`` any
    more, ``timeout`` seconds at most.

    A live owner appends without checking, write by write, that its file is
    still at its path: it holds a shared lock on the file instead, and lets
    it go once it sees the file taken aside (within
    :data:`TAKEN_POLL_SECONDS`). A process that took a spool aside calls
    this before it reads the file, so that nothing is written to it after
    the read.

    :return: False when a writer still held it at the end of ``timeout``.
    """
    if sys.platform == "win32":
        return True  # owners there check each write instead (no shared lock)
    try:
        fd = os.open(path, os.O_RDONLY | OPEN_FLAGS)
    except FileNotFoundError:
        return True
    try:
        deadline = time.monotonic() + timeout
        while not _lock_file(fd, wait=False):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True
    finally:
        os.close(fd)


def _lock_file(fd: int, *, wait: bool, shared: bool = False) -> bool:
    # Imported here, where it is used: fcntl exists only on Unix, and the
    # package must import everywhere. Windows has no shared lock; nothing
    # asks for one there (see SpoolLog.own).
    if sys.platform == "win32":
        import msvcrt

        try:
            # LK_LOCK retries for up to 10 s; closing the file releases it.
            msvcrt.locking(fd, msvcrt.LK_LOCK if wait else msvcrt.LK_NBLCK, 1)
        except OSError:
            if wait:
                raise
            return False
        return True
    import fcntl

    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    try:
        fcntl.flock(fd, mode if wait else mode | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def open_locked(path: str, *, wait: bool) -> int | None:
    """Open ``path`` (created if missing) and lock it; ``None`` when it is
    locked and ``wait`` is false. Closing the descriptor releases the lock,
    and so does the end of the process, however it ends.

    A lock file may be removed by whoever holds it (the files of an adopted
    spool are); a lock taken on a file that is no longer at ``path`` locks
    nothing anyone else looks at, so it is taken again.
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | OPEN_FLAGS, 0o600)
        try:
            if not _lock_file(fd, wait=wait):
                os.close(fd)
                return None
            held = os.fstat(fd)
            if gen_of(path) == (held.st_dev, held.st_ino) or sys.platform == "win32":
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


@contextlib.contextmanager
def file_lock(
    lock: threading.Lock,
    path: str,
    *,
    while_waiting: cabc.Callable[[], object] | None = None,
) -> cabc.Iterator[None]:
    """Hold ``lock`` and the file lock at ``path``: the thread lock orders
    this process's threads; the file lock orders processes that share the
    spool, such as a web worker and ``flush`` from the command line.

    :param while_waiting: Called between tries while another process holds
        the file lock, instead of waiting without a word for it.
    """
    with lock:
        fd = open_locked(path, wait=while_waiting is None)
        while fd is None:
            assert while_waiting is not None
            while_waiting()
            time.sleep(0.01)
            fd = open_locked(path, wait=False)
        try:
            yield
        finally:
            os.close(fd)


def _last_byte(fd: int, size: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(fd, 1, size - 1)
    # Windows: reading moves the offset, not where an append goes.
    os.lseek(fd, size - 1, os.SEEK_SET)
    return os.read(fd, 1)


def replay_file(
    path: str,
    add: cabc.Callable[[list[Receipt], list[ShownTexts]], None],
    *,
    batch_size: int,
    seen: set[str],
    rejected_path: str,
    remove: bool = True,
) -> int:
    """Send the receipts of the spool file ``path`` to ``add``, oldest
    first, ``batch_size`` at a time, then remove the file (unless
    ``remove`` is false).

    Receipts whose id is in ``seen`` are skipped, and the others added to
    it. Lines that are not receipts are moved to ``rejected_path``.

    :return: How many receipts were sent.
    """
    replayed = 0
    rejected: list[bytes] = []
    batch: list[Receipt] = []
    texts: list[ShownTexts] = []
    with open(path, "rb") as lines:
        for line in lines:
            if not line.strip():
                continue
            try:
                if is_texts_line(line):
                    texts.append(ShownTexts.from_json(line))
                    continue
                receipt = Receipt.from_json(line)
            except ValueError:
                rejected.append(line.rstrip(b"\n") + b"\n")
                continue
            if receipt.receipt_id in seen:
                continue
            if len(seen) < _MAX_SEEN:
                seen.add(receipt.receipt_id)
            batch.append(receipt)
            if len(batch) >= batch_size:
                add(batch, texts)
                replayed += len(batch)
                batch, texts = [], []
    if batch or texts:
        add(batch, texts)
        replayed += len(batch)
    if rejected and remove:
        # Unreadable lines are set aside for a person to look at, rather
        # than blocking the spool or vanishing.
        fd = os.open(
            rejected_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | OPEN_FLAGS, 0o600
        )
        with os.fdopen(fd, "ab") as out:
            out.writelines(rejected)
            out.flush()
            os.fsync(out.fileno())
        logger.warning(
            "%d spooled lines were not receipts; they were moved to %s.",
            len(rejected),
            rejected_path,
        )
    if remove:
        os.unlink(path)
        fsync_dir(os.path.dirname(path))
    return replayed


class Entry:
    """One receipt to append to a spool."""

    __slots__ = ("receipt", "texts", "line")

    def __init__(self, receipt: Receipt, texts: ShownTexts | None) -> None:
        self.receipt = receipt
        self.texts = texts
        self.line = receipt.to_json().encode() + b"\n"


#: Called by :class:`SpoolLog` after each durable append, in the appending
#: thread: the entry, the file it went to, and whether that file holds
#: lines the log did not write.
OnWritten = t.Callable[[Entry, Gen, bool], None]


class _File:
    """An open spool file and the threads writing to it."""

    __slots__ = ("fd", "gen", "users", "size", "texts", "is_new", "has_foreign")

    def __init__(self, fd: int, gen: Gen, size: int, is_new: bool) -> None:
        self.fd = fd
        self.gen = gen
        self.users = 0
        #: Its size when opened, plus every byte this log wrote to it.
        self.size = size
        self.texts: set[str] = set()
        self.is_new = is_new
        # A spool left by an earlier process of this id, or shared.
        self.has_foreign = size > 0


class SpoolLog:
    """Durable appends to one spool file.

    Each thread appends its receipt in one ``write`` on a descriptor opened
    with ``O_DSYNC``: on disk when it returns. Threads write side by side,
    and the file system commits writes that overlap together (group commit
    in the kernel), so no thread waits for another in Python: under load,
    every wait hands the interpreter lock to another thread and waits to
    get it back.

    The file may be taken away (renamed, to be replayed) by another process
    at any time. A log that :meth:`own` made the spool's owner holds a
    shared lock on its file: whoever takes it aside waits until the owner
    lets it go (:func:`wait_for_writers`) before reading it, and the owner
    looks for that every :data:`TAKEN_POLL_SECONDS` (:meth:`let_go_if_taken`),
    so an append costs one system call. Any other log checks after each
    append that the file is still at its path, and writes again into the
    file now there when it is not. A receipt written twice is kept once.

    :param path: The spool file.
    :param on_written: Called after each append, by the appending thread.
    """

    def __init__(self, path: str, on_written: OnWritten) -> None:
        self.path = path
        self._dir = os.path.dirname(path)
        self._on_written = on_written
        self._lock = threading.Lock()
        self._free = threading.Condition(self._lock)
        self._file: _File | None = None
        self._is_held = False
        self._is_torn = False
        self._is_owner = False
        #: ``time.monotonic()`` of the last append.
        self.last_write = 0.0

    @property
    def gen(self) -> Gen | None:
        """The file appended to now, while it is open."""
        file = self._file
        return file.gen if file is not None else None

    @property
    def size(self) -> int:
        """How big the open file is, as far as this log knows; 0 when none
        is open."""
        file = self._file
        return file.size if file is not None else 0

    def append(self, entry: Entry) -> None:
        """Write ``entry`` to the spool; return once it is on disk.

        :raises OSError: when it could not be written.
        """
        for _ in range(3):
            file = self._enter()
            written = 0
            try:
                texts = entry.texts
                data = entry.line
                if texts is not None and texts.texts_hash not in file.texts:
                    # The texts come before the receipt that names them, in
                    # the same write.
                    data = texts.to_json().encode() + b"\n" + data
                if self._is_torn:
                    data = b"\n" + data
                self._write_all(file, data)
                written = len(data)
                # An owner's file is under its shared lock: whoever takes it
                # aside waits for the owner to let it go, so no check.
                if self._is_owner or self._is_at_path(file):
                    if file.is_new:
                        # Its directory entry too, before any answer that
                        # relies on it (once, by each thread that saw it new).
                        fsync_dir(self._dir)
                        file.is_new = False
                    if texts is not None:
                        file.texts.add(texts.texts_hash)
                    self.last_write = time.monotonic()
                    self._on_written(entry, file.gen, file.has_foreign)
                    return
            finally:
                self._leave(file, written)
            # Taken away, before or after this write: write it again.
            self._retire(file)
        raise OSError(f"The spool {self.path!r} keeps being moved away.")

    def _is_at_path(self, file: _File) -> bool:
        return gen_of(self.path) == file.gen

    def own(self) -> None:
        """Append as the spool's owner from now on: under a shared lock, with
        no check after each append (on Unix; elsewhere, as before). Only one
        live log may own a spool, and it must call :meth:`let_go_if_taken`
        every :data:`TAKEN_POLL_SECONDS`."""
        if sys.platform == "win32":
            return
        with self.holding():
            self._is_owner = True
            self.close_file()

    def let_go_if_taken(self) -> bool:
        """Close the file when another process took it aside, so that the
        process may read it whole (see :func:`wait_for_writers`).

        :return: True when it did.
        """
        file = self._file
        if file is None or not self._is_owner or self._is_at_path(file):
            return False
        with self.holding():
            if self._file is not file:
                return False
            self.close_file()
            return True

    @contextlib.contextmanager
    def holding(self) -> cabc.Iterator[None]:
        """Keep every appending thread of this process out meanwhile, once
        those writing now are through."""
        with self._lock:
            while self._is_held:
                self._free.wait()
            self._is_held = True
            while self._file is not None and self._file.users:
                self._free.wait()
        try:
            yield
        finally:
            with self._lock:
                self._is_held = False
                self._free.notify_all()

    def close_file(self) -> None:
        """Close the file; the next append opens the file at the path, or
        creates it (call while :meth:`holding`, or from a forked child)."""
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(OSError):
                os.close(file.fd)

    def _enter(self) -> _File:
        with self._lock:
            while self._is_held:
                self._free.wait()
            file = self._file
            if file is None:
                file = self._file = self._open()
            file.users += 1
            return file

    def _leave(self, file: _File, written: int) -> None:
        with self._lock:
            file.users -= 1
            file.size += written
            if not file.users:
                if file is not self._file:
                    # Retired while in use: closed by its last user, so that
                    # no thread ever writes to a descriptor reused meanwhile.
                    with contextlib.suppress(OSError):
                        os.close(file.fd)
                if self._is_held:
                    self._free.notify_all()

    def _retire(self, file: _File) -> None:
        with self._lock:
            if self._file is file:
                self._file = None
                if not file.users:
                    with contextlib.suppress(OSError):
                        os.close(file.fd)

    def _write_all(self, file: _File, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(file.fd, view) :]
            if not _DSYNC:
                os.fsync(file.fd)
        except OSError:
            # A line may have been cut short: the next write starts a new one.
            self._is_torn = True
            raise
        self._is_torn = False

    def _open(self) -> _File:
        for _ in range(3):
            file = self._open_at_path()
            if file is not None:
                return file
        raise OSError(f"The spool {self.path!r} keeps being moved away.")

    def _open_at_path(self) -> _File | None:
        """The file at the path, opened (created if missing); ``None`` when
        it was taken aside before this owner held its lock on it."""
        flags = os.O_RDWR | os.O_APPEND | OPEN_FLAGS | _DSYNC
        try:
            fd = os.open(self.path, flags | os.O_CREAT | os.O_EXCL, 0o600)
            created = True
        except FileExistsError:
            fd = os.open(self.path, flags)
            created = False
        try:
            if self._is_owner:
                # Waits while a process that took the file aside makes sure
                # that no owner writes to it any more.
                _lock_file(fd, wait=True, shared=True)
            found = os.fstat(fd)
            gen = (found.st_dev, found.st_ino)
            if self._is_owner and gen_of(self.path) != gen:
                os.close(fd)
                return None
            if found.st_size and not self._is_torn:
                # A crash may have cut its last line short: end it, so that
                # only that line is lost and not the next one too.
                self._is_torn = _last_byte(fd, found.st_size) != b"\n"
        except BaseException:
            os.close(fd)
            raise
        return _File(fd, gen, found.st_size, created)

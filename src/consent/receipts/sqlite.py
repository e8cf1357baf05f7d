"""Receipts in a SQLite file, with the standard library only."""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import functools
import os
import threading
import time
import typing as t
from datetime import datetime

from .record import ShownTexts
from .stats import daily_rates
from .store import COLUMNS
from .store import PURGE_BATCH
from .store import RECEIPTS_TABLE
from .store import ROWS_PER_INSERT
from .store import SCHEMA_VERSION
from .store import TEXTS_TABLE
from .store import VERSION_TABLE
from .store import Stats
from .store import check_version
from .store import choices_json
from .store import format_db_time
from .store import parse_db_time
from .store import receipt_from_row
from .store import require_batch_size
from .store import require_page
from .times import require_aware

if t.TYPE_CHECKING:
    import sqlite3

    from .record import Receipt

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS {RECEIPTS_TABLE} (
    receipt_id VARCHAR(64) NOT NULL PRIMARY KEY,
    consent_id VARCHAR(64) NOT NULL,
    created_at DATETIME NOT NULL,
    revision TEXT NOT NULL,
    texts_hash TEXT NOT NULL,
    choices TEXT NOT NULL,
    method VARCHAR(16) NOT NULL,
    language TEXT NOT NULL,
    path TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    ip TEXT
);
CREATE INDEX IF NOT EXISTS ix_{RECEIPTS_TABLE}_consent_id
    ON {RECEIPTS_TABLE} (consent_id);
CREATE INDEX IF NOT EXISTS ix_{RECEIPTS_TABLE}_created_at
    ON {RECEIPTS_TABLE} (created_at, receipt_id);
CREATE TABLE IF NOT EXISTS {TEXTS_TABLE} (
    texts_hash VARCHAR(64) NOT NULL PRIMARY KEY,
    canonical TEXT NOT NULL,
    first_seen DATETIME NOT NULL
);
"""


@functools.lru_cache(maxsize=ROWS_PER_INSERT)
def _insert_sql(rows: int) -> str:
    marks = "(" + ", ".join("?" * len(COLUMNS)) + ")"
    return (
        f"INSERT OR IGNORE INTO {RECEIPTS_TABLE} ({', '.join(COLUMNS)})"
        f" VALUES {', '.join([marks] * rows)}"
    )


def _insert(params: cabc.Sequence[tuple[t.Any, ...]]) -> tuple[str, list[t.Any]]:
    # One statement, so one step of the database engine and one commit for
    # the whole batch: fewer round trips through the interpreter lock than
    # executemany's statement per row.
    return _insert_sql(len(params)), [v for row in params for v in row]


def create_private(path: str) -> None:
    """Create the database file readable and writable by its owner only,
    unless it exists.

    Receipts are personal data. SQLite creates a new file readable by
    everyone (0644 less the umask) and gives its ``-wal`` and ``-shm`` files
    the mode of the database file, so creating the file first, 0600, keeps
    all three private.

    :param path: The database file; its directory must exist.
    :raises OSError: when the file cannot be created.
    """
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def use_wal(conn: t.Any, timeout: float) -> None:
    """Put the SQLite database of DB-API connection ``conn`` in WAL mode,
    which the file keeps.

    Changing the mode fails at once, without SQLite's busy wait, while
    another connection holds a lock (as when several threads open a new
    database together): it is tried again for up to ``timeout`` seconds.
    """
    import sqlite3

    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


class SQLiteReceiptStore:
    """Keep receipts in a SQLite file, with the standard library only.

    Enough for a site served by one machine. The file uses write-ahead
    logging, so exports do not block new receipts, and full synchronous
    commits, so a committed receipt survives a power cut. Each thread gets
    its own connection, which makes the store safe under a threaded WSGI
    server. Tables are created on first use, in a file readable by its
    owner only (and so its ``-wal`` and ``-shm`` files).

    :param path: The database file. Its directory must exist.
    :param timeout: Seconds to wait for a lock held by another writer.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 5.0) -> None:
        #: The database file.
        self.path = os.fspath(path)
        self._timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: dict[threading.Thread, sqlite3.Connection] = {}
        self._is_ready = False
        self._pid = os.getpid()

    def __repr__(self) -> str:
        return f"<SQLiteReceiptStore {self.path!r}>"

    def _connect(self) -> sqlite3.Connection:
        if self._pid != os.getpid():
            # A connection must not cross a fork (preloading servers): the
            # child starts afresh and leaves the parent's alone.
            with self._lock:
                self._pid = os.getpid()
                self._local = threading.local()
                self._connections = {}
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        # Loaded on first use: an app that keeps no receipts, or keeps them
        # elsewhere, does not pay for it.
        import sqlite3

        if not self._is_ready:
            # A file that cannot be created here cannot be by SQLite either,
            # which then says so as every other database error.
            with contextlib.suppress(OSError):
                create_private(self.path)
        conn = sqlite3.connect(
            self.path,
            timeout=self._timeout,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            conn.execute("PRAGMA synchronous=FULL")
            if not self._is_ready:
                self._create_schema(conn)
        except BaseException:
            conn.close()
            raise
        with self._lock:
            # Servers that start a thread per request would otherwise leave
            # one open connection behind per request.
            gone = [th for th in self._connections if not th.is_alive()]
            stale = [self._connections.pop(th) for th in gone]
            self._connections[threading.current_thread()] = conn
        for old in stale:
            old.close()
        self._local.conn = conn
        return conn

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            if self._is_ready:
                return
            use_wal(conn, self._timeout)
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Tables a layout lacks are created here: that is the whole
                # migration from version 1, which had no texts table.
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                row = conn.execute(
                    f"SELECT MAX(version) FROM {VERSION_TABLE}"
                ).fetchone()
                if check_version(row[0]):
                    conn.execute(
                        f"INSERT INTO {VERSION_TABLE} (version) VALUES (?)",
                        (SCHEMA_VERSION,),
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._is_ready = True

    @contextlib.contextmanager
    def _transaction(self) -> cabc.Iterator[sqlite3.Connection]:
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @staticmethod
    def _params(receipt: Receipt) -> tuple[t.Any, ...]:
        return (
            receipt.receipt_id,
            receipt.consent_id,
            format_db_time(receipt.created_at),
            receipt.revision,
            receipt.texts_hash,
            choices_json(receipt.choices),
            receipt.method,
            receipt.language,
            receipt.path,
            receipt.user_agent,
            receipt.ip,
        )

    def add(self, receipt: Receipt) -> None:
        """Keep a receipt; one already kept (same id) is left as it is."""
        self.add_many((receipt,))

    def add_many(self, receipts: cabc.Iterable[Receipt]) -> None:
        """Keep several receipts at once, all or none, idempotently.

        Up to 50 receipts go in one multi-row ``INSERT`` that commits by
        itself; more go in one transaction, 50 rows a statement.
        """
        params = [self._params(r) for r in receipts]
        if not params:
            return
        if len(params) <= ROWS_PER_INSERT:
            self._connect().execute(*_insert(params))
            return
        with self._transaction() as conn:
            for start in range(0, len(params), ROWS_PER_INSERT):
                conn.execute(*_insert(params[start : start + ROWS_PER_INSERT]))

    def add_texts(self, texts: cabc.Iterable[ShownTexts]) -> None:
        """Keep versions of what was shown, once per hash."""
        rows = [
            (shown.texts_hash, shown.canonical, format_db_time(shown.first_seen))
            for shown in texts
        ]
        if not rows:
            return
        with self._transaction() as conn:
            conn.executemany(
                f"INSERT OR IGNORE INTO {TEXTS_TABLE}"
                " (texts_hash, canonical, first_seen) VALUES (?, ?, ?)",
                rows,
            )

    def get_texts(self, texts_hash: str) -> ShownTexts | None:
        """Return the texts a receipt's ``texts_hash`` names, or ``None``."""
        row = (
            self._connect()
            .execute(
                f"SELECT texts_hash, canonical, first_seen FROM {TEXTS_TABLE}"
                " WHERE texts_hash = ?",
                (texts_hash,),
            )
            .fetchone()
        )
        if row is None:
            return None
        return ShownTexts(
            texts_hash=row[0], canonical=row[1], first_seen=parse_db_time(row[2])
        )

    def _select(
        self,
        where: str,
        params: cabc.Sequence[t.Any],
        limit: int = -1,
        *,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[Receipt]:
        order = (
            "created_at DESC, receipt_id DESC"
            if newest_first
            else ("created_at, receipt_id")
        )
        rows = self._connect().execute(
            f"SELECT {', '.join(COLUMNS)} FROM {RECEIPTS_TABLE} WHERE {where}"
            f" ORDER BY {order} LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return [receipt_from_row(row, parse_db_time(row[2])) for row in rows]

    def get(self, receipt_id: str) -> Receipt | None:
        """Return the receipt with this id, or ``None``."""
        found = self._select("receipt_id = ?", (receipt_id,))
        return found[0] if found else None

    def for_consent_id(self, consent_id: str) -> list[Receipt]:
        """Return a visitor's receipts, oldest first (access requests)."""
        return self._select("consent_id = ?", (consent_id,))

    def latest(self, limit: int, offset: int = 0) -> list[Receipt]:
        """Return up to ``limit`` receipts, newest first, after skipping the
        ``offset`` newest."""
        require_page(limit, offset)
        return self._select("1 = 1", (), limit, offset=offset, newest_first=True)

    @staticmethod
    def _range(
        since: datetime | None, until: datetime | None
    ) -> tuple[list[str], list[t.Any]]:
        where = ["1 = 1"]
        params: list[t.Any] = []
        if since is not None:
            where.append("created_at >= ?")
            params.append(format_db_time(require_aware("since", since)))
        if until is not None:
            where.append("created_at < ?")
            params.append(format_db_time(require_aware("until", until)))
        return where, params

    def iter_receipts(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        batch_size: int = 1000,
    ) -> cabc.Iterator[Receipt]:
        """Yield receipts oldest first, ``batch_size`` rows at a time.

        Pages are read by key (the last time and id seen), not with a cursor
        held open, so a slow consumer holds no lock and no snapshot.
        """
        require_batch_size(batch_size)
        where, params = self._range(since, until)
        after: tuple[str, str] | None = None
        while True:
            page_where = list(where)
            page_params = list(params)
            if after is not None:
                page_where.append("(created_at, receipt_id) > (?, ?)")
                page_params.extend(after)
            page = self._select(" AND ".join(page_where), page_params, batch_size)
            yield from page
            if len(page) < batch_size:
                return
            last = page[-1]
            after = (format_db_time(last.created_at), last.receipt_id)

    def count(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> int:
        """Return the number of receipts in the range."""
        where, params = self._range(since, until)
        row = (
            self._connect()
            .execute(
                f"SELECT COUNT(*) FROM {RECEIPTS_TABLE} WHERE {' AND '.join(where)}",
                params,
            )
            .fetchone()
        )
        return int(row[0])

    def erase(self, consent_id: str) -> int:
        """Delete a visitor's receipts (erasure requests); return how many."""
        with self._transaction() as conn:
            cursor = conn.execute(
                f"DELETE FROM {RECEIPTS_TABLE} WHERE consent_id = ?", (consent_id,)
            )
        return cursor.rowcount

    def purge(self, before: datetime) -> int:
        """Delete receipts made before ``before``; return how many.

        Rows go in batches, so new receipts never wait long for the lock.
        """
        cutoff = format_db_time(require_aware("before", before))
        deleted = 0
        while True:
            with self._transaction() as conn:
                cursor = conn.execute(
                    f"DELETE FROM {RECEIPTS_TABLE} WHERE receipt_id IN"
                    f" (SELECT receipt_id FROM {RECEIPTS_TABLE}"
                    " WHERE created_at < ? LIMIT ?)",
                    (cutoff, PURGE_BATCH),
                )
            deleted += cursor.rowcount
            if cursor.rowcount < PURGE_BATCH:
                return deleted

    def stats(self, since: datetime | None = None) -> Stats:
        """Count receipts by method, and opt-ins per day and key."""
        where, params = self._range(since, None)
        clause = " AND ".join(where)
        conn = self._connect()
        by_method = {
            method: int(n)
            for method, n in conn.execute(
                f"SELECT method, COUNT(*) FROM {RECEIPTS_TABLE} WHERE {clause}"
                " GROUP BY method",
                params,
            )
        }
        rows = conn.execute(
            f"SELECT substr(created_at, 1, 10) AS day, choices, COUNT(*)"
            f" FROM {RECEIPTS_TABLE} WHERE {clause} GROUP BY day, choices",
            params,
        )
        return Stats(by_method=by_method, daily=daily_rates(rows))

    def ping(self) -> None:
        """Raise when the database file cannot be opened or read."""
        self._connect().execute(f"SELECT 1 FROM {VERSION_TABLE} LIMIT 1").fetchall()

    def close(self) -> None:
        """Close every thread's connection; the store reconnects if used again."""
        with self._lock:
            connections, self._connections = self._connections, {}
            self._local = threading.local()
        for conn in connections.values():
            conn.close()

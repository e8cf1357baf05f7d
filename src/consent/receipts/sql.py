"""Receipts in any database SQLAlchemy speaks: PostgreSQL above all.

SQLAlchemy (and psycopg for PostgreSQL) come with the ``sql`` extra and are
imported when a store is built, never when this module is.
"""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import dataclasses
import functools
import math
import os
import threading
import typing as t
from datetime import datetime
from datetime import timezone

from ..exceptions import ConfigurationError
from .libpq import OneCallInsert
from .libpq import is_disconnect
from .libpq import is_psycopg
from .record import MAX_ID
from .record import ShownTexts
from .sqlite import create_private
from .sqlite import use_wal
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
from .store import receipt_from_row
from .store import require_batch_size
from .store import require_page
from .times import require_aware

if t.TYPE_CHECKING:
    import sqlalchemy as sa

    from .record import Receipt

#: Why an in-memory SQLite database is refused.
SQLITE_MEMORY = (
    "{url!r} is an in-memory database, which loses receipts: give a file, such"
    " as 'sqlite:///consent-receipts.db' in the instance folder or"
    " 'sqlite:////var/lib/site/receipts.db'."
)
_SQL_MISSING = (
    'Storing receipts in {what} needs SQLAlchemy: pip install "cookie-consent[sql]".'
)
# Drivers built on libpq, which take its connect_timeout and options.
_LIBPQ_DRIVERS = ("psycopg", "psycopg2", "psycopg2cffi")


@dataclasses.dataclass(frozen=True)
class _Tables:
    metadata: sa.MetaData
    receipts: sa.Table
    texts: sa.Table
    versions: sa.Table


def _define_tables(schema: str | None) -> _Tables:
    import sqlalchemy as sa

    metadata = sa.MetaData(schema=schema)
    receipts = sa.Table(
        RECEIPTS_TABLE,
        metadata,
        sa.Column("receipt_id", sa.String(MAX_ID), primary_key=True),
        sa.Column("consent_id", sa.String(MAX_ID), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revision", sa.Text, nullable=False),
        sa.Column("texts_hash", sa.Text, nullable=False),
        # JSON text rather than a JSON type: the same on every database, and
        # what the spool and the SQLite store hold.
        sa.Column("choices", sa.Text, nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("language", sa.Text, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("user_agent", sa.Text, nullable=False),
        sa.Column("ip", sa.Text, nullable=True),
        sa.Index(f"ix_{RECEIPTS_TABLE}_consent_id", "consent_id"),
        sa.Index(f"ix_{RECEIPTS_TABLE}_created_at", "created_at", "receipt_id"),
    )
    texts = sa.Table(
        TEXTS_TABLE,
        metadata,
        sa.Column("texts_hash", sa.String(MAX_ID), primary_key=True),
        sa.Column("canonical", sa.Text, nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
    )
    versions = sa.Table(
        VERSION_TABLE,
        metadata,
        sa.Column("version", sa.Integer, nullable=False),
    )
    return _Tables(metadata=metadata, receipts=receipts, texts=texts, versions=versions)


def parse_url(url: str) -> sa.URL:
    """Read a database URL, and check that its driver is installed.

    Nothing connects: this is what finds a missing extra when the app
    starts, rather than on the first visitor's post.

    :raises ConfigurationError: when SQLAlchemy or the driver is not
        installed, the URL is not valid, or it names an in-memory SQLite
        database.
    """
    try:
        import sqlalchemy as sa
    except ImportError as err:
        raise ConfigurationError(
            _SQL_MISSING.format(what=url.split(":", 1)[0])
        ) from err
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as err:
        raise ConfigurationError(
            f"{url!r} is not a database URL; write it like"
            " 'postgresql+psycopg://user@host/dbname'."
        ) from err
    try:
        parsed.get_dialect().import_dbapi()
    except sa.exc.NoSuchModuleError as err:
        raise ConfigurationError(
            f"{parsed.drivername!r} is not a database SQLAlchemy knows: write"
            " the URL like 'postgresql+psycopg://user@host/dbname'."
        ) from err
    except ImportError as err:
        raise ConfigurationError(
            f"The database driver for {parsed.drivername!r} is not installed:"
            ' pip install "cookie-consent[sql]" for PostgreSQL with psycopg.'
        ) from err
    if parsed.get_backend_name() == "sqlite" and parsed.database in (
        None,
        "",
        ":memory:",
    ):
        raise ConfigurationError(SQLITE_MEMORY.format(url=url))
    return parsed


def _postgresql_options(parsed: sa.URL, timeout: float) -> dict[str, t.Any]:
    # A database that does not answer must not hold a visitor's request:
    # fail fast, and let the spool keep the receipt. The URL's own options
    # (a search_path, say) are kept, after the timeout so that an explicit
    # statement_timeout of the user's wins.
    args: dict[str, t.Any] = {}
    if "connect_timeout" not in parsed.query:
        args["connect_timeout"] = max(2, math.ceil(timeout))
    given = parsed.query.get("options", ())
    if isinstance(given, str):
        given = (given,)
    timeout_option = f"-c statement_timeout={max(1, int(timeout * 1000))}"
    args["options"] = " ".join((timeout_option, *given))
    return args


def _create_engine(url: str, timeout: float) -> sa.Engine:
    import sqlalchemy as sa

    parsed = parse_url(url)
    options: dict[str, t.Any] = {"pool_pre_ping": True, "pool_timeout": timeout}
    backend = parsed.get_backend_name()
    if backend == "postgresql" and parsed.get_driver_name() in _LIBPQ_DRIVERS:
        options["connect_args"] = _postgresql_options(parsed, timeout)
    elif backend == "sqlite":
        options["connect_args"] = {"timeout": timeout}
    engine = sa.create_engine(parsed, **options)
    if backend == "sqlite":
        database = parsed.database or ""
        if not database.startswith("file:"):
            sa.event.listen(engine, "do_connect", lambda *_: _create_private(database))
        sa.event.listen(engine, "connect", functools.partial(_sqlite_pragmas, timeout))
    return engine


def _create_private(path: str) -> None:
    # As the standard library's store does: a file that cannot be created
    # here cannot be by SQLite either, which then raises its own error.
    with contextlib.suppress(OSError):
        create_private(path)


def _sqlite_pragmas(
    timeout: float, dbapi_connection: t.Any, connection_record: t.Any
) -> None:
    use_wal(dbapi_connection, timeout)
    dbapi_connection.execute("PRAGMA synchronous=FULL")


class SQLReceiptStore:
    """Keep receipts in a database through SQLAlchemy Core.

    Meant for PostgreSQL (``postgresql+psycopg://...``) and any database
    shared by several servers; SQLite URLs work too. Tables are created on
    first use. Engines built from a URL time out quickly (connecting and
    each statement), check pooled connections before use, and so recover by
    themselves after a database restart. On PostgreSQL, ``options`` given in
    the URL (such as ``?options=-c%20search_path%3Dconsent``) are kept, and
    the statement timeout is added to them.

    :param url_or_engine: A database URL, or an engine you configured and
        keep ownership of: the store never disposes of it.
    :param timeout: Seconds allowed to connect, to wait for a pooled
        connection and, on PostgreSQL, for each statement. Only used when a
        URL is given.
    :param schema: The database schema that holds the tables (PostgreSQL),
        which must already exist. The connection's default schema when
        ``None``.
    :raises ConfigurationError: when SQLAlchemy or the database driver is not
        installed, or the URL is not valid.
    """

    def __init__(
        self,
        url_or_engine: str | sa.Engine,
        *,
        timeout: float = 2.0,
        schema: str | None = None,
    ) -> None:
        if isinstance(url_or_engine, str):
            self._engine = _create_engine(url_or_engine, timeout)
            self._owns_engine = True
        else:
            self._engine = url_or_engine
            self._owns_engine = False
        self._tables = _define_tables(schema)
        self._lock = threading.Lock()
        self._is_ready = False
        self._pid = os.getpid()
        self._timeout = timeout
        # Writes go through one connection kept open between them (see
        # _writer): checking one out of the pool for every receipt would
        # cost a ping and a BEGIN and COMMIT round trip each time.
        self._write_lock = threading.Lock()
        self._write_conn: sa.Connection | None = None
        self._inherited: list[sa.Connection] = []
        self._insert_in_one_call = OneCallInsert(self._tables.receipts)

    def __repr__(self) -> str:
        url = self._engine.url.render_as_string(hide_password=True)
        return f"<SQLReceiptStore {url!r}>"

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine in use."""
        return self._engine

    def _ready(self) -> sa.Engine:
        if self._pid != os.getpid():
            # Pooled connections must not cross a fork; the parent keeps its own.
            self._engine.dispose(close=False)
            if self._write_conn is not None:
                # Closing it here would close the parent's connection; it is
                # kept, unused, so that garbage collection does not either.
                self._inherited.append(self._write_conn)
                self._write_conn = None
            self._pid = os.getpid()
        if not self._is_ready:
            with self._lock:
                if not self._is_ready:
                    self._create_schema()
                    self._is_ready = True
        return self._engine

    def _create_schema(self) -> None:
        import sqlalchemy as sa

        tables = self._tables
        # Tables a layout lacks are created here: that is the whole migration
        # from version 1, which had no texts table.
        try:
            tables.metadata.create_all(self._engine)
        except sa.exc.DBAPIError:
            # Two processes starting together can both try to create the
            # tables; the loser finds them there on a second look.
            tables.metadata.create_all(self._engine)
        with self._engine.begin() as conn:
            found = conn.execute(
                sa.select(sa.func.max(tables.versions.c.version))
            ).scalar()
            if check_version(found):
                conn.execute(tables.versions.insert().values(version=SCHEMA_VERSION))

    def _to_db(self, value: datetime, name: str) -> datetime:
        value = require_aware(name, value)
        if self._engine.dialect.name == "postgresql":
            return value
        return value.replace(tzinfo=None)

    @staticmethod
    def _from_db(value: datetime) -> datetime:
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)

    def _row(self, receipt: Receipt) -> dict[str, t.Any]:
        return {
            "receipt_id": receipt.receipt_id,
            "consent_id": receipt.consent_id,
            "created_at": self._to_db(receipt.created_at, "created_at"),
            "revision": receipt.revision,
            "texts_hash": receipt.texts_hash,
            "choices": choices_json(receipt.choices),
            "method": receipt.method,
            "language": receipt.language,
            "path": receipt.path,
            "user_agent": receipt.user_agent,
            "ip": receipt.ip,
        }

    def add(self, receipt: Receipt) -> None:
        """Keep a receipt; one already kept (same id) is left as it is."""
        self.add_many((receipt,))

    def add_many(self, receipts: cabc.Iterable[Receipt]) -> None:
        """Keep several receipts at once, all or none, idempotently.

        On PostgreSQL with psycopg 3, up to 50 receipts go in one ``INSERT
        ... ON CONFLICT DO NOTHING`` statement that commits by itself, in a
        single libpq call on a connection kept open for writes
        (:mod:`consent.receipts.libpq`): one round trip and one durable
        commit. More, and other databases, go in one transaction: ``INSERT
        ... ON CONFLICT DO NOTHING`` on PostgreSQL and SQLite; elsewhere, ids
        already present are skipped, a concurrent insert of the same id then
        fails the transaction, and a retry succeeds.
        """
        rows = list({r.receipt_id: self._row(r) for r in receipts}.values())
        if not rows:
            return
        engine = self._ready()
        if len(rows) <= ROWS_PER_INSERT and is_psycopg(engine):
            self._write_in_one_call(rows)
            return
        with engine.begin() as conn:
            self._insert_ignoring(conn, self._tables.receipts, "receipt_id", rows)

    def _write_in_one_call(self, rows: list[dict[str, t.Any]]) -> None:
        import sqlalchemy as sa

        is_reused = self._write_conn is not None
        try:
            with self._writer() as conn:
                self._insert_in_one_call(conn, rows)
        except sa.exc.DBAPIError as err:
            if not (is_reused and is_disconnect(err.orig)):
                raise
            # A connection kept open across a database restart is found dead
            # only when used: one more try, on a fresh connection (checked
            # before use), rather than sending the receipt to the spool. The
            # insert is idempotent, so a first try that did land is harmless.
            with self._writer() as conn:
                self._insert_in_one_call(conn, rows)

    @staticmethod
    def _insert_ignoring(
        conn: sa.Connection, table: sa.Table, key: str, rows: list[dict[str, t.Any]]
    ) -> None:
        """Insert ``rows``, leaving alone those whose ``key`` is present."""
        import sqlalchemy as sa

        dialect = conn.dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects import postgresql

            conn.execute(
                postgresql.insert(table).on_conflict_do_nothing(index_elements=[key]),
                rows,
            )
        elif dialect == "sqlite":
            from sqlalchemy.dialects import sqlite

            conn.execute(sqlite.insert(table).on_conflict_do_nothing(), rows)
        else:
            column = table.c[key]
            present = set(
                conn.scalars(
                    sa.select(column).where(column.in_([row[key] for row in rows]))
                )
            )
            rows = [row for row in rows if row[key] not in present]
            if rows:
                conn.execute(table.insert(), rows)

    def add_texts(self, texts: cabc.Iterable[ShownTexts]) -> None:
        """Keep versions of what was shown, once per hash."""
        rows = list(
            {
                shown.texts_hash: {
                    "texts_hash": shown.texts_hash,
                    "canonical": shown.canonical,
                    "first_seen": self._to_db(shown.first_seen, "first_seen"),
                }
                for shown in texts
            }.values()
        )
        if not rows:
            return
        with self._ready().begin() as conn:
            self._insert_ignoring(conn, self._tables.texts, "texts_hash", rows)

    def get_texts(self, texts_hash: str) -> ShownTexts | None:
        """Return the texts a receipt's ``texts_hash`` names, or ``None``."""
        import sqlalchemy as sa

        table = self._tables.texts
        query = sa.select(table.c.texts_hash, table.c.canonical, table.c.first_seen)
        with self._ready().connect() as conn:
            row = conn.execute(query.where(table.c.texts_hash == texts_hash)).first()
        if row is None:
            return None
        return ShownTexts(
            texts_hash=row[0], canonical=row[1], first_seen=self._from_db(row[2])
        )

    @contextlib.contextmanager
    def _writer(self) -> cabc.Iterator[sa.Connection]:
        # One autocommit connection, kept open and used by one thread at a
        # time. A connection that failed is dropped, and the next write
        # checks out a fresh one, pinged first: that is how writes recover
        # after a database restart.
        if not self._write_lock.acquire(timeout=self._timeout):
            raise TimeoutError("Another thread is still writing receipts.")
        try:
            conn = self._write_conn
            if conn is None or conn.closed or conn.invalidated:
                conn = self._engine.connect().execution_options(
                    isolation_level="AUTOCOMMIT"
                )
                self._write_conn = conn
            try:
                yield conn
            except BaseException:
                self._write_conn = None
                with contextlib.suppress(Exception):
                    conn.invalidate()
                    conn.close()
                raise
        finally:
            self._write_lock.release()

    def _select(
        self,
        *where: sa.ColumnElement[bool],
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[Receipt]:
        import sqlalchemy as sa

        table = self._tables.receipts
        order = (
            (table.c.created_at.desc(), table.c.receipt_id.desc())
            if newest_first
            else (table.c.created_at, table.c.receipt_id)
        )
        query = (
            sa.select(*(table.c[name] for name in COLUMNS))
            .where(*where)
            .order_by(*order)
            .limit(limit)
            .offset(offset or None)
        )
        with self._ready().connect() as conn:
            rows = conn.execute(query).all()
        return [receipt_from_row(row, self._from_db(row[2])) for row in rows]

    def get(self, receipt_id: str) -> Receipt | None:
        """Return the receipt with this id, or ``None``."""
        found = self._select(self._tables.receipts.c.receipt_id == receipt_id)
        return found[0] if found else None

    def for_consent_id(self, consent_id: str) -> list[Receipt]:
        """Return a visitor's receipts, oldest first (access requests)."""
        return self._select(self._tables.receipts.c.consent_id == consent_id)

    def latest(self, limit: int, offset: int = 0) -> list[Receipt]:
        """Return up to ``limit`` receipts, newest first, after skipping the
        ``offset`` newest."""
        require_page(limit, offset)
        return self._select(limit=limit, offset=offset, newest_first=True)

    def _range(
        self, since: datetime | None, until: datetime | None
    ) -> list[sa.ColumnElement[bool]]:
        created_at = self._tables.receipts.c.created_at
        where = []
        if since is not None:
            where.append(created_at >= self._to_db(since, "since"))
        if until is not None:
            where.append(created_at < self._to_db(until, "until"))
        return where

    def iter_receipts(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        batch_size: int = 1000,
    ) -> cabc.Iterator[Receipt]:
        """Yield receipts oldest first, ``batch_size`` rows at a time.

        Pages are read by key (the last time and id seen) rather than through
        one long-running cursor: a slow consumer holds no connection and no
        transaction between pages, and every page stays well within the
        statement timeout.
        """
        import sqlalchemy as sa

        require_batch_size(batch_size)
        table = self._tables.receipts
        where = self._range(since, until)
        after: list[sa.ColumnElement[bool]] = []
        while True:
            page = self._select(*where, *after, limit=batch_size)
            yield from page
            if len(page) < batch_size:
                return
            last = page[-1]
            after = [
                sa.tuple_(table.c.created_at, table.c.receipt_id)
                > sa.tuple_(
                    sa.literal(
                        self._to_db(last.created_at, "created_at"),
                        table.c.created_at.type,
                    ),
                    sa.literal(last.receipt_id, table.c.receipt_id.type),
                )
            ]

    def count(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> int:
        """Return the number of receipts in the range."""
        import sqlalchemy as sa

        query = (
            sa.select(sa.func.count())
            .select_from(self._tables.receipts)
            .where(*self._range(since, until))
        )
        with self._ready().connect() as conn:
            return int(conn.execute(query).scalar_one())

    def erase(self, consent_id: str) -> int:
        """Delete a visitor's receipts (erasure requests); return how many."""
        table = self._tables.receipts
        with self._ready().begin() as conn:
            result = conn.execute(
                table.delete().where(table.c.consent_id == consent_id)
            )
        return int(result.rowcount)

    def purge(self, before: datetime) -> int:
        """Delete receipts made before ``before``; return how many.

        Rows go in batches, so that each statement stays short, well within
        the statement timeout, and holds few locks.
        """
        import sqlalchemy as sa

        table = self._tables.receipts
        cutoff = self._to_db(before, "before")
        batch = (
            sa.select(table.c.receipt_id)
            .where(table.c.created_at < cutoff)
            .limit(PURGE_BATCH)
            .scalar_subquery()
        )
        deleted = 0
        while True:
            with self._ready().begin() as conn:
                result = conn.execute(
                    table.delete().where(table.c.receipt_id.in_(batch))
                )
            deleted += result.rowcount
            if result.rowcount < PURGE_BATCH:
                return deleted

    def _day(self) -> sa.ColumnElement[t.Any]:
        import sqlalchemy as sa

        created_at = self._tables.receipts.c.created_at
        dialect = self._engine.dialect.name
        if dialect == "postgresql":
            return sa.func.to_char(sa.func.timezone("UTC", created_at), "YYYY-MM-DD")
        if dialect == "sqlite":
            return sa.func.substr(created_at, 1, 10)
        # Elsewhere times are stored as naive UTC.
        return sa.func.date(created_at)

    def stats(self, since: datetime | None = None) -> Stats:
        """Count receipts by method, and opt-ins per day and key."""
        import sqlalchemy as sa

        table = self._tables.receipts
        where = self._range(since, None)
        day = self._day().label("day")
        with self._ready().connect() as conn:
            by_method = {
                method: int(n)
                for method, n in conn.execute(
                    sa.select(table.c.method, sa.func.count())
                    .where(*where)
                    .group_by(table.c.method)
                )
            }
            rows = conn.execute(
                sa.select(day, table.c.choices, sa.func.count())
                .where(*where)
                .group_by(day, table.c.choices)
            ).all()
        return Stats(
            by_method=by_method,
            daily=daily_rates((row[0], row[1], int(row[2])) for row in rows),
        )

    def ping(self) -> None:
        """Raise when the database cannot be reached."""
        import sqlalchemy as sa

        with self._ready().connect() as conn:
            conn.execute(sa.select(1))

    def close(self) -> None:
        """Close the write connection, and the pooled connections of an
        engine built from a URL (an engine given is left as it is)."""
        with self._write_lock:
            if self._write_conn is not None and self._pid == os.getpid():
                self._write_conn.close()
            self._write_conn = None
        if self._owns_engine:
            self._engine.dispose()

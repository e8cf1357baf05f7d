"""The :class:`ReceiptStore` protocol, what it answers, and the table layout
that every store shares.

:class:`~consent.receipts.sqlite.SQLiteReceiptStore` and
:class:`~consent.receipts.sql.SQLReceiptStore` implement the protocol on the
same tables, so both can read the same SQLite file.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import functools
import json
import typing as t
from datetime import date
from datetime import datetime
from datetime import timezone

from ..exceptions import ConfigurationError
from .record import Receipt

if t.TYPE_CHECKING:
    from .record import ShownTexts

#: The version of the table layout written in the ``consent_schema_version``
#: table, so that a later release can migrate existing databases. Version 2
#: added the ``consent_texts`` table.
SCHEMA_VERSION = 2

# A bare "schema_version" table would clash with other tools that share the
# database (Flyway uses that name), hence the prefix.
RECEIPTS_TABLE = "consent_receipts"
TEXTS_TABLE = "consent_texts"
VERSION_TABLE = "consent_schema_version"

#: The columns of the receipts table, in the order rows are read.
COLUMNS = (
    "receipt_id",
    "consent_id",
    "created_at",
    "revision",
    "texts_hash",
    "choices",
    "method",
    "language",
    "path",
    "user_agent",
    "ip",
)

#: Rows deleted per statement by ``purge``, so that new receipts never wait
#: long for a lock.
PURGE_BATCH = 5000
#: Rows per INSERT statement: 50 rows of 11 values stay under the 999
#: variables that SQLite before 3.32 allows in one statement.
ROWS_PER_INSERT = 50


@dataclasses.dataclass(frozen=True)
class DailyRate:
    """How many receipts of one UTC day granted one key.

    :param day: The UTC day.
    :param key: A category or service key.
    :param granted: Receipts that granted ``key`` that day.
    :param total: Receipts that listed ``key`` that day.
    """

    day: date
    key: str
    granted: int
    total: int

    @property
    def rate(self) -> float:
        """The opt-in rate, from 0.0 to 1.0."""
        return self.granted / self.total if self.total else 0.0


@dataclasses.dataclass(frozen=True)
class Stats:
    """Counts over a range of receipts, for the site's own reporting.

    :param by_method: Number of receipts per method.
    :param daily: Opt-in counts per UTC day and key, sorted by day then key.
    """

    by_method: dict[str, int]
    daily: tuple[DailyRate, ...]

    @property
    def total(self) -> int:
        """The number of receipts counted."""
        return sum(self.by_method.values())


@t.runtime_checkable
class ReceiptStore(t.Protocol):
    """Where receipts are kept.

    Implementations are safe to share between threads. Every time argument
    is an aware datetime; ranges include ``since`` and exclude ``until``.
    Writes are idempotent on :attr:`Receipt.receipt_id` (and texts on their
    hash), which is what makes replaying a spool safe.

    .. versionchanged:: 0.1
        Added :meth:`latest`, :meth:`add_texts` and :meth:`get_texts`.
    """

    def add(self, receipt: Receipt) -> None:
        """Keep a receipt; one already kept (same id) is left as it is."""

    def add_many(self, receipts: cabc.Iterable[Receipt]) -> None:
        """Keep several receipts in one transaction, idempotently."""

    def add_texts(self, texts: cabc.Iterable[ShownTexts]) -> None:
        """Keep versions of what was shown; a version already kept (same
        hash) is left as it is, with its first time seen."""

    def get_texts(self, texts_hash: str) -> ShownTexts | None:
        """Return the texts a receipt's ``texts_hash`` names, or ``None``."""

    def get(self, receipt_id: str) -> Receipt | None:
        """Return the receipt with this id, or ``None``."""

    def for_consent_id(self, consent_id: str) -> list[Receipt]:
        """Return a visitor's receipts, oldest first (access requests)."""

    def latest(self, limit: int, offset: int = 0) -> list[Receipt]:
        """Return up to ``limit`` receipts, newest first, after skipping the
        ``offset`` newest: a page of the newest receipts."""

    def iter_receipts(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        batch_size: int = 1000,
    ) -> cabc.Iterator[Receipt]:
        """Yield receipts oldest first, ``batch_size`` rows at a time.

        Memory use does not grow with the number of receipts, so a full
        export of a large table is safe.
        """

    def count(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> int:
        """Return the number of receipts in the range."""

    def erase(self, consent_id: str) -> int:
        """Delete a visitor's receipts (erasure requests); return how many."""

    def purge(self, before: datetime) -> int:
        """Delete receipts made before ``before``; return how many."""

    def stats(self, since: datetime | None = None) -> Stats:
        """Count receipts by method, and opt-ins per day and key."""

    def ping(self) -> None:
        """Raise when the store cannot be reached."""

    def close(self) -> None:
        """Release connections; the store reconnects if used again."""


def is_store_error(err: BaseException) -> bool:
    """True when ``err`` comes from the database rather than from the code:
    a file that cannot be opened, or an error of sqlite3, SQLAlchemy or a
    database driver."""
    if isinstance(err, OSError):
        return True
    return type(err).__module__.split(".")[0] in (
        "sqlite3",
        "sqlalchemy",
        "psycopg",
        "psycopg2",
    )


def check_version(found: int | None) -> bool:
    """Tell whether the layout needs its version row written: missing, or
    older (the tables it lacked were just created); refuse a newer layout.

    :param found: The highest version in the version table, if any.
    :raises ConfigurationError: when a newer release made the tables.
    """
    if found is not None and found > SCHEMA_VERSION:
        raise ConfigurationError(
            f"The receipt tables were created by a newer release of consent"
            f" (schema version {found}, this release knows {SCHEMA_VERSION}):"
            " upgrade cookie-consent."
        )
    return found is None or found < SCHEMA_VERSION


def require_batch_size(batch_size: int) -> None:
    """Refuse a page or batch size below 1."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1; got {batch_size}.")


def require_page(limit: int, offset: int) -> None:
    """Refuse a negative page size or offset."""
    if limit < 0 or offset < 0:
        raise ValueError(
            f"limit and offset must not be negative; got {limit} and {offset}."
        )


def format_db_time(value: datetime) -> str:
    """A time as the stores keep it in SQLite: naive UTC with a space, fixed
    width, so that it sorts as text; the format SQLAlchemy uses on SQLite, so
    both stores read the same file."""
    naive = value.astimezone(timezone.utc).replace(tzinfo=None)
    return naive.isoformat(sep=" ", timespec="microseconds")


def parse_db_time(value: str) -> datetime:
    """Read a time written by :func:`format_db_time`."""
    return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)


@functools.lru_cache(maxsize=256)
def choices_json(choices: tuple[tuple[str, bool], ...]) -> str:
    """The ``choices`` column: JSON text, the same on every database."""
    # Most visitors make one of a few choices (all, none, a category or
    # two): their JSON is made once, not for every receipt.
    return json.dumps(dict(choices), separators=(",", ":"))


def receipt_from_row(row: cabc.Sequence[t.Any], created_at: datetime) -> Receipt:
    """A receipt from a row in :data:`COLUMNS` order, with its time read."""
    return Receipt(
        receipt_id=row[0],
        consent_id=row[1],
        created_at=created_at,
        revision=row[3],
        texts_hash=row[4],
        choices=tuple(json.loads(row[5]).items()),
        method=row[6],
        language=row[7],
        path=row[8],
        user_agent=row[9],
        ip=row[10],
    )

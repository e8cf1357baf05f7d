"""Proof of consent: receipts, the stores that keep them, and a spool for outages.

A site must be able to show that a visitor agreed, to what and when (GDPR
Art. 7(1)), so every decision is written down as a :class:`Receipt`. Receipts
are kept by a :class:`ReceiptStore`: :class:`SQLiteReceiptStore` for a single
server, :class:`SQLReceiptStore` for PostgreSQL or any other database
SQLAlchemy speaks. :class:`DurableRecorder` sits in front of a store and keeps
each receipt in a local, fsynced spool file while the database is down, then
replays the spool once it is back: a receipt accepted is a receipt kept.

Receipts are personal data too, so they hold as little as they can: a random
consent id, a reduced user agent, a path without its query string, and an IP
address that was truncated or keyed-hashed by :func:`anonymize_ip` before it
got here (GDPR Art. 5(1)(c) and Art. 25).
"""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import dataclasses
import fcntl
import functools
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import os
import queue
import re
import socket
import sqlite3
import threading
import time
import typing as t
import uuid
from datetime import date
from datetime import datetime
from datetime import timezone

from .exceptions import ConfigurationError
from .exceptions import ReceiptNotKeptError as ReceiptNotKeptError
from .model import DEFAULT_RETENTION as DEFAULT_RETENTION
from .state import METHODS

if t.TYPE_CHECKING:
    import sqlalchemy as sa

    from .model import Policy
    from .state import ConsentState
    from .state import Method

logger = logging.getLogger(__name__)


#: How an IP address is reduced before it is stored: truncated to its network
#: (IPv4 /24, IPv6 /48), replaced by a keyed hash, or not stored at all.
IPMode = t.Literal["truncate", "hash", "none"]

#: The version of the table layout written in the ``consent_schema_version``
#: table, so that a later release can migrate existing databases.
SCHEMA_VERSION = 1

_MAX_USER_AGENT = 200
_MAX_PATH = 2048
_MAX_LANGUAGE = 64
_MAX_ID = 64
_JSON_FORMAT = 1
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# A bare "schema_version" table would clash with other tools that share the
# database (Flyway uses that name), hence the prefix.
_RECEIPTS_TABLE = "consent_receipts"
_VERSION_TABLE = "consent_schema_version"


def _clean(value: str, limit: int) -> str:
    # Visitor-supplied text: drop control characters (NUL cannot be stored in
    # PostgreSQL) and lone surrogates (they cannot be encoded), so that a
    # receipt can always be written and a spooled one never blocks replay.
    if value.isascii() and value.isprintable():
        return value[:limit]
    value = value.encode("utf-8", "replace").decode("utf-8")
    return _CONTROL.sub("", value)[:limit]


def reduce_user_agent(user_agent: str | None) -> str:
    """Reduce a User-Agent header to what a receipt needs.

    The header is kept to show which browser made the choice, but a full
    header helps fingerprinting, so it is cut to 200 characters and control
    characters are removed.

    :param user_agent: The raw header, or ``None`` when the request had none.
    """
    if not user_agent:
        return ""
    return _clean(user_agent, _MAX_USER_AGENT).strip()


def anonymize_ip(
    ip: str | None, mode: IPMode, *, pepper: bytes | None = None
) -> str | None:
    """Reduce an IP address before it is stored in a receipt.

    A receipt needs network data only to tell visitors apart when a choice is
    disputed, so the full address is never kept. ``"truncate"`` keeps the
    network (``"203.0.113.0/24"``, ``"2001:db8:1::/48"``). ``"hash"`` keeps
    ``HMAC-SHA256(pepper, ip)``: a plain hash of an IPv4 address is reversed
    by trying all 2**32 addresses, a keyed one is not while the pepper stays
    secret, and rotating the pepper unlinks old receipts from new ones.
    ``"none"`` keeps nothing.

    :param ip: The client address, as text. Anything that is not an IP
        address gives ``None``.
    :param mode: ``"truncate"``, ``"hash"`` or ``"none"``.
    :param pepper: The secret key for ``"hash"``, at least 32 random bytes,
        kept out of the database.
    :raises ConfigurationError: for ``"hash"`` without a pepper, or an
        unknown mode.
    """
    if mode not in ("truncate", "hash", "none"):
        raise ConfigurationError(
            f"Unknown IP mode {mode!r}: use 'truncate', 'hash' or 'none'."
        )
    if mode == "hash" and not pepper:
        raise ConfigurationError(
            "Hashing IP addresses needs a pepper: pass pepper= with at least 32"
            " secret random bytes, or use mode 'truncate'."
        )
    if mode == "none" or not ip:
        return None
    if mode == "truncate":
        try:
            # The common case, a plain IPv4 address, without building an
            # ipaddress object: four bytes, the last one dropped.
            a, b, c, _ = socket.inet_pton(socket.AF_INET, ip.strip())
        except (OSError, ValueError):  # not IPv4, or a NUL in the text
            pass
        else:
            return f"{a}.{b}.{c}.0/24"
    address = _parse_ip(ip)
    if address is None:
        return None
    if mode == "hash":
        assert pepper is not None
        digest = hmac.new(pepper, str(address).encode(), hashlib.sha256)
        return digest.hexdigest()
    prefix = 24 if address.version == 4 else 48
    host_bits = address.max_prefixlen - prefix
    network = type(address)(int(address) >> host_bits << host_bits)
    return f"{network}/{prefix}"


def _parse_ip(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(ip.strip().split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        # An IPv4 client seen through a dual-stack socket is still an IPv4
        # client; its /48 would keep nothing useful and its /24 is the rule.
        return address.ipv4_mapped
    return address


def _require_id(name: str, value: object) -> None:
    if not (
        isinstance(value, str)
        and 0 < len(value) <= _MAX_ID
        and value.isascii()
        and value.isprintable()
    ):
        raise ValueError(
            f"{name} must be 1 to {_MAX_ID} printable ASCII characters; got {value!r}."
        )


def _require_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1; got {batch_size}.")


def _require_aware(name: str, value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{name} must be a timezone-aware datetime, such as"
            " datetime.now(timezone.utc)."
        )
    return value.astimezone(timezone.utc)


#: The fields of a receipt that are plain text, in the order exports show
#: them (``ip``, which may be empty, and ``choices`` come after them).
TEXT_FIELDS = (
    "receipt_id",
    "consent_id",
    "created_at",
    "revision",
    "texts_hash",
    "method",
    "language",
    "path",
    "user_agent",
)


@dataclasses.dataclass(frozen=True)
class Receipt:
    """The record of one decision, kept as proof of consent.

    Build it with :meth:`from_state`. Text that comes from the visitor is
    cleaned when the receipt is built (control characters removed, the query
    string cut from the path, the user agent reduced), so that whatever a
    receipt holds can be stored.

    :param receipt_id: A random UUID4 in hex; the same id is put in the
        consent cookie, so that a cookie leads to its receipt.
    :param consent_id: The visitor's random consent id, which links the
        receipts of one browser.
    :param created_at: When the decision was made (aware, UTC).
    :param revision: The policy revision the visitor decided on.
    :param texts_hash: SHA-256 (hex) of the exact banner texts and
        declarations shown, which proves what the visitor was told.
    :param choices: Each optional category and service key with whether it
        was granted, in policy order.
    :param method: How the choice was made (banner, preferences, api, gpc,
        embed).
    :param language: The language the texts were shown in.
    :param path: The page the choice was made on, without its query string.
    :param user_agent: The reduced user agent (:func:`reduce_user_agent`).
    :param ip: The IP address as reduced by :func:`anonymize_ip`, or
        ``None``.
    """

    receipt_id: str
    consent_id: str
    created_at: datetime
    revision: str
    texts_hash: str
    choices: tuple[tuple[str, bool], ...]
    method: Method
    language: str
    path: str
    user_agent: str
    ip: str | None

    def __post_init__(self) -> None:
        _require_id("receipt_id", self.receipt_id)
        _require_id("consent_id", self.consent_id)
        if self.method not in METHODS:
            raise ValueError(
                f"method must be one of {', '.join(METHODS)}; got {self.method!r}."
            )
        set_ = object.__setattr__
        set_(self, "created_at", _require_aware("created_at", self.created_at))
        pairs: cabc.Iterable[tuple[str, bool]] = (
            self.choices.items()
            if isinstance(self.choices, cabc.Mapping)
            else self.choices
        )
        set_(self, "choices", tuple((str(k), bool(v)) for k, v in pairs))
        set_(self, "revision", _clean(self.revision, _MAX_ID))
        set_(self, "texts_hash", _clean(self.texts_hash, _MAX_ID))
        set_(self, "language", _clean(self.language, _MAX_LANGUAGE))
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        set_(self, "path", _clean(path, _MAX_PATH))
        set_(self, "user_agent", reduce_user_agent(self.user_agent))
        if self.ip is not None:
            set_(self, "ip", _clean(self.ip, _MAX_ID) or None)

    @classmethod
    def from_state(
        cls,
        state: ConsentState,
        policy: Policy,
        *,
        texts_hash: str,
        language: str,
        path: str,
        user_agent: str | None,
        ip: str | None,
        now: datetime | None = None,
    ) -> Receipt:
        """Build the receipt of a decision.

        :param state: The state the decision produced.
        :param policy: The policy it was made under; its optional keys are
            listed in :attr:`choices`, refused ones as ``False``.
        :param texts_hash: SHA-256 (hex) of the texts and declarations shown.
        :param language: The language of those texts.
        :param path: The request path; a query string is removed.
        :param user_agent: The raw User-Agent header; it is reduced here.
        :param ip: The IP address, already reduced by :func:`anonymize_ip`.
        :param now: When the receipt is made; ``state.given_at`` by default.
        """
        return cls(
            receipt_id=uuid.uuid4().hex,
            consent_id=state.consent_id,
            created_at=state.given_at if now is None else now,
            revision=state.revision,
            texts_hash=texts_hash,
            choices=tuple(state.choices(policy).items()),
            method=state.method,
            language=language,
            path=path,
            user_agent=user_agent or "",
            ip=ip,
        )

    def choices_dict(self) -> dict[str, bool]:
        """The choices as a new dict, key to granted."""
        return dict(self.choices)

    def to_json(self) -> str:
        """Serialize to one line of JSON, as written to the spool."""
        return json.dumps(
            {
                "v": _JSON_FORMAT,
                "receipt_id": self.receipt_id,
                "consent_id": self.consent_id,
                "created_at": self.created_at.isoformat(),
                "revision": self.revision,
                "texts_hash": self.texts_hash,
                "choices": dict(self.choices),
                "method": self.method,
                "language": self.language,
                "path": self.path,
                "user_agent": self.user_agent,
                "ip": self.ip,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Receipt:
        """Read a receipt written by :meth:`to_json`.

        :raises ValueError: when ``text`` is not such a receipt.
        """
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("v") != _JSON_FORMAT:
            raise ValueError("Not a receipt in JSON format 1.")
        strings = {name: data.get(name) for name in TEXT_FIELDS}
        for name, value in strings.items():
            if not isinstance(value, str):
                raise ValueError(f"Receipt field {name!r} must be a string.")
        choices = data.get("choices")
        if not isinstance(choices, dict) or not all(
            isinstance(v, bool) for v in choices.values()
        ):
            raise ValueError("Receipt field 'choices' must map keys to booleans.")
        ip = data.get("ip")
        if ip is not None and not isinstance(ip, str):
            raise ValueError("Receipt field 'ip' must be a string or null.")
        return cls(
            receipt_id=t.cast(str, strings["receipt_id"]),
            consent_id=t.cast(str, strings["consent_id"]),
            created_at=datetime.fromisoformat(t.cast(str, strings["created_at"])),
            revision=t.cast(str, strings["revision"]),
            texts_hash=t.cast(str, strings["texts_hash"]),
            choices=tuple(choices.items()),
            method=t.cast("Method", strings["method"]),
            language=t.cast(str, strings["language"]),
            path=t.cast(str, strings["path"]),
            user_agent=t.cast(str, strings["user_agent"]),
            ip=ip,
        )


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


def _daily_rates(
    rows: cabc.Iterable[tuple[str | date, str, int]],
) -> tuple[DailyRate, ...]:
    # Rows are grouped by (day, choices text): few distinct combinations, so
    # the database does the counting and only the choices are decoded here.
    cells: dict[tuple[date, str], list[int]] = {}
    for day, choices, count in rows:
        if isinstance(day, str):
            day = date.fromisoformat(day[:10])
        elif isinstance(day, datetime):
            day = day.date()
        for key, granted in json.loads(choices).items():
            cell = cells.setdefault((day, key), [0, 0])
            cell[1] += count
            if granted:
                cell[0] += count
    return tuple(
        DailyRate(day=day, key=key, granted=granted, total=total)
        for (day, key), (granted, total) in sorted(cells.items())
    )


@t.runtime_checkable
class ReceiptStore(t.Protocol):
    """Where receipts are kept.

    Implementations are safe to share between threads. Every time argument
    is an aware datetime; ranges include ``since`` and exclude ``until``.
    Writes are idempotent on :attr:`Receipt.receipt_id`, which is what makes
    replaying a spool safe.
    """

    def add(self, receipt: Receipt) -> None:
        """Keep a receipt; one already kept (same id) is left as it is."""

    def add_many(self, receipts: cabc.Iterable[Receipt]) -> None:
        """Keep several receipts in one transaction, idempotently."""

    def get(self, receipt_id: str) -> Receipt | None:
        """Return the receipt with this id, or ``None``."""

    def for_consent_id(self, consent_id: str) -> list[Receipt]:
        """Return a visitor's receipts, oldest first (access requests)."""

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


def _format_time(value: datetime) -> str:
    # Naive UTC with a space, fixed width: sorts as text, and is the format
    # SQLAlchemy uses on SQLite, so both stores can read the same file.
    naive = value.astimezone(timezone.utc).replace(tzinfo=None)
    return naive.isoformat(sep=" ", timespec="microseconds")


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)


@functools.lru_cache(maxsize=256)
def _choices_json(choices: tuple[tuple[str, bool], ...]) -> str:
    # Most visitors make one of a few choices (all, none, a category or
    # two): their JSON is made once, not for every receipt.
    return json.dumps(dict(choices), separators=(",", ":"))


def _from_row(row: cabc.Sequence[t.Any], created_at: datetime) -> Receipt:
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


_COLUMNS = (
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

_SQLITE_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {_VERSION_TABLE} (
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS {_RECEIPTS_TABLE} (
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
CREATE INDEX IF NOT EXISTS ix_{_RECEIPTS_TABLE}_consent_id
    ON {_RECEIPTS_TABLE} (consent_id);
CREATE INDEX IF NOT EXISTS ix_{_RECEIPTS_TABLE}_created_at
    ON {_RECEIPTS_TABLE} (created_at, receipt_id);
"""

_PURGE_BATCH = 5000
# Rows per INSERT statement: 50 rows of 11 values stay under the 999
# variables that SQLite before 3.32 allows in one statement.
_ROWS_PER_INSERT = 50


@functools.lru_cache(maxsize=_ROWS_PER_INSERT)
def _sqlite_insert_sql(rows: int) -> str:
    marks = "(" + ", ".join("?" * len(_COLUMNS)) + ")"
    return (
        f"INSERT OR IGNORE INTO {_RECEIPTS_TABLE} ({', '.join(_COLUMNS)})"
        f" VALUES {', '.join([marks] * rows)}"
    )


def _sqlite_insert(
    params: cabc.Sequence[tuple[t.Any, ...]],
) -> tuple[str, list[t.Any]]:
    # One statement, so one step of the database engine and one commit for
    # the whole batch: fewer round trips through the interpreter lock than
    # executemany's statement per row.
    return _sqlite_insert_sql(len(params)), [v for row in params for v in row]


def _check_version(found: int | None) -> bool:
    """Tell whether the version row is missing; refuse a newer layout."""
    if found is not None and found > SCHEMA_VERSION:
        raise ConfigurationError(
            f"The receipt tables were created by a newer release of consent"
            f" (schema version {found}, this release knows {SCHEMA_VERSION}):"
            " upgrade cookie-consent."
        )
    return found is None


class SQLiteReceiptStore:
    """Keep receipts in a SQLite file, with the standard library only.

    Enough for a site served by one machine. The file uses write-ahead
    logging, so exports do not block new receipts, and full synchronous
    commits, so a committed receipt survives a power cut. Each thread gets
    its own connection, which makes the store safe under a threaded WSGI
    server. Tables are created on first use.

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
        conn = sqlite3.connect(
            self.path,
            timeout=self._timeout,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            conn.execute("PRAGMA journal_mode=WAL")
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
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _SQLITE_SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                row = conn.execute(
                    f"SELECT MAX(version) FROM {_VERSION_TABLE}"
                ).fetchone()
                if _check_version(row[0]):
                    conn.execute(
                        f"INSERT INTO {_VERSION_TABLE} (version) VALUES (?)",
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
            _format_time(receipt.created_at),
            receipt.revision,
            receipt.texts_hash,
            _choices_json(receipt.choices),
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
        if len(params) <= _ROWS_PER_INSERT:
            self._connect().execute(*_sqlite_insert(params))
            return
        with self._transaction() as conn:
            for start in range(0, len(params), _ROWS_PER_INSERT):
                conn.execute(*_sqlite_insert(params[start : start + _ROWS_PER_INSERT]))

    def _select(
        self, where: str, params: cabc.Sequence[t.Any], limit: int = -1
    ) -> list[Receipt]:
        rows = self._connect().execute(
            f"SELECT {', '.join(_COLUMNS)} FROM {_RECEIPTS_TABLE} WHERE {where}"
            " ORDER BY created_at, receipt_id LIMIT ?",
            (*params, limit),
        )
        return [_from_row(row, _parse_time(row[2])) for row in rows]

    def get(self, receipt_id: str) -> Receipt | None:
        """Return the receipt with this id, or ``None``."""
        found = self._select("receipt_id = ?", (receipt_id,))
        return found[0] if found else None

    def for_consent_id(self, consent_id: str) -> list[Receipt]:
        """Return a visitor's receipts, oldest first (access requests)."""
        return self._select("consent_id = ?", (consent_id,))

    @staticmethod
    def _range(
        since: datetime | None, until: datetime | None
    ) -> tuple[list[str], list[t.Any]]:
        where = ["1 = 1"]
        params: list[t.Any] = []
        if since is not None:
            where.append("created_at >= ?")
            params.append(_format_time(_require_aware("since", since)))
        if until is not None:
            where.append("created_at < ?")
            params.append(_format_time(_require_aware("until", until)))
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
        _require_batch_size(batch_size)
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
            after = (_format_time(last.created_at), last.receipt_id)

    def count(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> int:
        """Return the number of receipts in the range."""
        where, params = self._range(since, until)
        row = (
            self._connect()
            .execute(
                f"SELECT COUNT(*) FROM {_RECEIPTS_TABLE} WHERE {' AND '.join(where)}",
                params,
            )
            .fetchone()
        )
        return int(row[0])

    def erase(self, consent_id: str) -> int:
        """Delete a visitor's receipts (erasure requests); return how many."""
        with self._transaction() as conn:
            cursor = conn.execute(
                f"DELETE FROM {_RECEIPTS_TABLE} WHERE consent_id = ?", (consent_id,)
            )
        return cursor.rowcount

    def purge(self, before: datetime) -> int:
        """Delete receipts made before ``before``; return how many.

        Rows go in batches, so new receipts never wait long for the lock.
        """
        cutoff = _format_time(_require_aware("before", before))
        deleted = 0
        while True:
            with self._transaction() as conn:
                cursor = conn.execute(
                    f"DELETE FROM {_RECEIPTS_TABLE} WHERE receipt_id IN"
                    f" (SELECT receipt_id FROM {_RECEIPTS_TABLE}"
                    " WHERE created_at < ? LIMIT ?)",
                    (cutoff, _PURGE_BATCH),
                )
            deleted += cursor.rowcount
            if cursor.rowcount < _PURGE_BATCH:
                return deleted

    def stats(self, since: datetime | None = None) -> Stats:
        """Count receipts by method, and opt-ins per day and key."""
        where, params = self._range(since, None)
        clause = " AND ".join(where)
        conn = self._connect()
        by_method = {
            method: int(n)
            for method, n in conn.execute(
                f"SELECT method, COUNT(*) FROM {_RECEIPTS_TABLE} WHERE {clause}"
                " GROUP BY method",
                params,
            )
        }
        rows = conn.execute(
            f"SELECT substr(created_at, 1, 10) AS day, choices, COUNT(*)"
            f" FROM {_RECEIPTS_TABLE} WHERE {clause} GROUP BY day, choices",
            params,
        )
        return Stats(by_method=by_method, daily=_daily_rates(rows))

    def ping(self) -> None:
        """Raise when the database file cannot be opened or read."""
        self._connect().execute(f"SELECT 1 FROM {_VERSION_TABLE} LIMIT 1").fetchall()

    def close(self) -> None:
        """Close every thread's connection; the store reconnects if used again."""
        with self._lock:
            connections, self._connections = self._connections, {}
            self._local = threading.local()
        for conn in connections.values():
            conn.close()


_SQLITE_MEMORY = (
    "{url!r} is an in-memory database, which loses receipts: give a file, such"
    " as 'sqlite:///consent-receipts.db' in the instance folder or"
    " 'sqlite:////var/lib/site/receipts.db'."
)
_SQL_MISSING = (
    'Storing receipts in {what} needs SQLAlchemy: pip install "cookie-consent[sql]".'
)


@dataclasses.dataclass(frozen=True)
class _SQLTables:
    metadata: sa.MetaData
    receipts: sa.Table
    versions: sa.Table


def _define_tables(schema: str | None) -> _SQLTables:
    import sqlalchemy as sa

    metadata = sa.MetaData(schema=schema)
    receipts = sa.Table(
        _RECEIPTS_TABLE,
        metadata,
        sa.Column("receipt_id", sa.String(_MAX_ID), primary_key=True),
        sa.Column("consent_id", sa.String(_MAX_ID), nullable=False),
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
        sa.Index(f"ix_{_RECEIPTS_TABLE}_consent_id", "consent_id"),
        sa.Index(f"ix_{_RECEIPTS_TABLE}_created_at", "created_at", "receipt_id"),
    )
    versions = sa.Table(
        _VERSION_TABLE,
        metadata,
        sa.Column("version", sa.Integer, nullable=False),
    )
    return _SQLTables(metadata=metadata, receipts=receipts, versions=versions)


def _create_engine(url: str, timeout: float) -> sa.Engine:
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
    options: dict[str, t.Any] = {"pool_pre_ping": True, "pool_timeout": timeout}
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        # A database that does not answer must not hold a visitor's request:
        # fail fast, and let the spool keep the receipt.
        options["connect_args"] = {
            "connect_timeout": max(2, math.ceil(timeout)),
            "options": f"-c statement_timeout={max(1, int(timeout * 1000))}",
        }
    elif backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise ConfigurationError(_SQLITE_MEMORY.format(url=url))
        options["connect_args"] = {"timeout": timeout}
    try:
        engine = sa.create_engine(parsed, **options)
    except ImportError as err:
        raise ConfigurationError(
            f"The database driver for {parsed.drivername!r} is not installed:"
            ' pip install "cookie-consent[sql]" for PostgreSQL with psycopg.'
        ) from err
    if backend == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: t.Any, connection_record: t.Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def _check_pg(result: t.Any, statement: str) -> None:
    """Unless a libpq result is a success, raise what SQLAlchemy raises for
    the same failure: psycopg's error class for its SQLSTATE, wrapped in
    SQLAlchemy's, so that a store fails alike on every path."""
    import psycopg
    import sqlalchemy as sa
    from psycopg import pq

    if result.status in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
        return
    message = (result.error_message or b"").decode("utf-8", "replace").strip()
    sqlstate = result.error_field(pq.DiagnosticField.SQLSTATE)
    try:
        error = psycopg.errors.lookup(sqlstate.decode()) if sqlstate else None
    except KeyError:
        error = None
    orig = (error or psycopg.OperationalError)(
        message or f"PostgreSQL answered {result.status.name}."
    )
    raise sa.exc.DBAPIError.instance(statement, None, orig, psycopg.Error)


class SQLReceiptStore:
    """Keep receipts in a database through SQLAlchemy Core.

    Meant for PostgreSQL (``postgresql+psycopg://...``) and any database
    shared by several servers; SQLite URLs work too. Tables are created on
    first use. Engines built from a URL time out quickly (connecting and
    each statement), check pooled connections before use, and so recover by
    themselves after a database restart.

    :param url_or_engine: A database URL, or an engine you configured and
        keep ownership of.
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
        self._insert_sqls: dict[int, tuple[str, list[str]]] = {}

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
            if _check_version(found):
                conn.execute(tables.versions.insert().values(version=SCHEMA_VERSION))

    def _to_db(self, value: datetime, name: str) -> datetime:
        value = _require_aware(name, value)
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
            "choices": _choices_json(receipt.choices),
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

        On PostgreSQL, up to 50 receipts go in one ``INSERT ... ON CONFLICT
        DO NOTHING`` statement that commits by itself, on a connection kept
        open for writes: one round trip and one durable commit. More, and
        other databases, go in one transaction: ``INSERT ... ON CONFLICT DO
        NOTHING`` on PostgreSQL and SQLite; elsewhere, ids already present
        are skipped, a concurrent insert of the same id then fails the
        transaction, and a retry succeeds.
        """
        import sqlalchemy as sa

        rows = list({r.receipt_id: self._row(r) for r in receipts}.values())
        if not rows:
            return
        engine = self._ready()
        if len(rows) <= _ROWS_PER_INSERT and self._is_psycopg(engine):
            self._insert_in_one_call(engine, rows)
            return
        table = self._tables.receipts
        dialect = engine.dialect.name
        with engine.begin() as conn:
            if dialect == "postgresql":
                from sqlalchemy.dialects import postgresql

                conn.execute(
                    postgresql.insert(table).on_conflict_do_nothing(
                        index_elements=["receipt_id"]
                    ),
                    rows,
                )
            elif dialect == "sqlite":
                from sqlalchemy.dialects import sqlite

                conn.execute(sqlite.insert(table).on_conflict_do_nothing(), rows)
            else:
                ids = [row["receipt_id"] for row in rows]
                present = set(
                    conn.scalars(
                        sa.select(table.c.receipt_id).where(table.c.receipt_id.in_(ids))
                    )
                )
                rows = [row for row in rows if row["receipt_id"] not in present]
                if rows:
                    conn.execute(table.insert(), rows)

    @staticmethod
    def _is_psycopg(engine: sa.Engine) -> bool:
        dialect = engine.dialect
        return dialect.name == "postgresql" and dialect.driver == "psycopg"

    def _insert_statement(self, engine: sa.Engine, rows: int) -> tuple[str, list[str]]:
        """The ``INSERT ... ON CONFLICT DO NOTHING`` of ``rows`` rows as
        SQLAlchemy compiles it for this engine with ``$n`` placeholders, and
        the names of its parameters in order."""
        compiled = self._insert_sqls.get(rows)
        if compiled is None:
            import sqlalchemy as sa
            from sqlalchemy.dialects import postgresql

            table = self._tables.receipts
            statement = postgresql.insert(table).values(
                [
                    {
                        c.name: sa.bindparam(f"{c.name}_{i}", type_=c.type)
                        for c in table.c
                    }
                    for i in range(rows)
                ]
            )
            statement = statement.on_conflict_do_nothing(index_elements=["receipt_id"])
            # psycopg's dialect casts every parameter to its column's type,
            # so that values sent as text need no type of their own.
            dialect_class: t.Any = type(engine.dialect)
            sql = statement.compile(dialect=dialect_class(paramstyle="numeric_dollar"))
            assert sql.positiontup is not None
            compiled = self._insert_sqls[rows] = (str(sql), list(sql.positiontup))
        return compiled

    def _insert_in_one_call(
        self, engine: sa.Engine, rows: list[dict[str, t.Any]]
    ) -> None:
        """Insert up to 50 rows on the kept-open write connection in one
        libpq call, which commits by itself (autocommit).

        A receipt is on every consent post. Going through SQLAlchemy's
        ``execute`` and psycopg's costs more Python than the round trip, and
        under load every extra step that waits hands the interpreter lock to
        another thread and waits to get it back. So the statement is
        SQLAlchemy's, the values are dumped as text by the connection's own
        psycopg adapters, and one libpq call sends them: prepared once per
        connection and row count, unless the connection prepares nothing
        (``prepare_threshold=None``, as PgBouncer in transaction mode needs).
        """
        from psycopg.adapt import PyFormat

        sql, names = self._insert_statement(engine, len(rows))
        params = {f"{k}_{i}": v for i, row in enumerate(rows) for k, v in row.items()}
        with self._writer() as conn:
            entry = conn.connection
            driver = entry.driver_connection
            assert driver is not None
            dumpers: dict[type, t.Any] = entry.info.setdefault("consent_dumpers", {})
            values: list[t.Any] = []
            for param in names:
                value = params[param]
                if value is None:
                    values.append(None)
                    continue
                dumper = dumpers.get(type(value))
                if dumper is None:
                    found = driver.adapters.get_dumper(type(value), PyFormat.TEXT)
                    dumper = dumpers[type(value)] = found(type(value), driver)
                values.append(dumper.dump(value))
            pgconn = driver.pgconn
            query = sql.encode(driver.info.encoding)
            if driver.prepare_threshold is None:
                _check_pg(pgconn.exec_params(query, values), sql)
                return
            prepared: set[int] = entry.info.setdefault("consent_prepared", set())
            statement = f"consent_insert_{len(rows)}".encode()
            if len(rows) not in prepared:
                _check_pg(pgconn.prepare(statement, query), sql)
                prepared.add(len(rows))
            _check_pg(pgconn.exec_prepared(statement, values), sql)

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
        self, *where: sa.ColumnElement[bool], limit: int | None = None
    ) -> list[Receipt]:
        import sqlalchemy as sa

        table = self._tables.receipts
        query = (
            sa.select(*(table.c[name] for name in _COLUMNS))
            .where(*where)
            .order_by(table.c.created_at, table.c.receipt_id)
            .limit(limit)
        )
        with self._ready().connect() as conn:
            rows = conn.execute(query).all()
        return [_from_row(row, self._from_db(row[2])) for row in rows]

    def get(self, receipt_id: str) -> Receipt | None:
        """Return the receipt with this id, or ``None``."""
        found = self._select(self._tables.receipts.c.receipt_id == receipt_id)
        return found[0] if found else None

    def for_consent_id(self, consent_id: str) -> list[Receipt]:
        """Return a visitor's receipts, oldest first (access requests)."""
        return self._select(self._tables.receipts.c.consent_id == consent_id)

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

        _require_batch_size(batch_size)
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
            .limit(_PURGE_BATCH)
            .scalar_subquery()
        )
        deleted = 0
        while True:
            with self._ready().begin() as conn:
                result = conn.execute(
                    table.delete().where(table.c.receipt_id.in_(batch))
                )
            deleted += result.rowcount
            if result.rowcount < _PURGE_BATCH:
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
            daily=_daily_rates((row[0], row[1], int(row[2])) for row in rows),
        )

    def ping(self) -> None:
        """Raise when the database cannot be reached."""
        import sqlalchemy as sa

        with self._ready().connect() as conn:
            conn.execute(sa.select(1))

    def close(self) -> None:
        """Close the write connection, and the pooled connections of an
        engine built from a URL."""
        with self._write_lock:
            if self._write_conn is not None and self._pid == os.getpid():
                self._write_conn.close()
            self._write_conn = None
        if self._owns_engine:
            self._engine.dispose()


def open_store(url: str | None, *, instance_path: str) -> ReceiptStore | None:
    """Open the receipt store a configuration value names.

    :param url: ``None`` for no store; ``"sqlite"`` for
        ``consent-receipts.db`` in the instance folder;
        ``"sqlite:///name.db"`` (relative to the instance folder) or
        ``"sqlite:////absolute/path.db"`` for a SQLite file; any other
        SQLAlchemy URL, such as ``"postgresql+psycopg://user@host/db"``, for
        :class:`SQLReceiptStore`.
    :param instance_path: The app's instance folder; created when a SQLite
        file goes there.
    :raises ConfigurationError: for an in-memory SQLite database (each
        thread would see its own), or when SQLAlchemy is needed and missing.
    """
    if url is None:
        return None
    if url == "sqlite":
        os.makedirs(instance_path, exist_ok=True)
        return SQLiteReceiptStore(os.path.join(instance_path, "consent-receipts.db"))
    if url.startswith("sqlite:"):
        if not url.startswith("sqlite:///") or url.endswith(":memory:"):
            raise ConfigurationError(_SQLITE_MEMORY.format(url=url))
        path = url[len("sqlite:///") :].split("?", 1)[0]
        if not os.path.isabs(path):
            os.makedirs(instance_path, exist_ok=True)
            path = os.path.join(instance_path, path)
        return SQLiteReceiptStore(path)
    return SQLReceiptStore(url)


def _fsync_dir(path: str) -> None:
    # A created, renamed or removed file only survives a crash once its
    # directory entry is on disk too.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return 0


@contextlib.contextmanager
def _file_lock(lock: threading.Lock, path: str) -> cabc.Iterator[None]:
    # The thread lock orders this process's threads; flock orders processes
    # that share the spool, such as a web worker and `flush` from the CLI.
    with lock:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


class _Job:
    """One receipt waiting for the writer thread.

    ``done`` is a lock held until the writer is through with the receipt: a
    bare lock is the cheapest way to make one thread wait for another.
    """

    __slots__ = ("receipt", "done", "error", "abandoned")

    def __init__(self, receipt: Receipt) -> None:
        self.receipt = receipt
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
        _require_batch_size(batch_size)
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
        if background and self._has_pending():
            self._start_replayer()

    def __repr__(self) -> str:
        return f"<DurableRecorder {self.store!r} spool={self.spool_path!r}>"

    def record(self, receipt: Receipt) -> None:
        """Keep a receipt in the store, or else in the spool.

        Returns once the receipt is committed to the store or fsynced to the
        spool.

        :raises ReceiptNotKeptError: when neither could keep it, or the recorder
            is closed.
        """
        if self._is_closed:
            raise ReceiptNotKeptError("The receipt recorder is closed; open a new one.")
        if time.monotonic() >= self._skip_store_until:
            job = self._submit(receipt)
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
            self._append(receipt)
        except OSError as err:
            raise ReceiptNotKeptError(
                f"The receipt store failed and the spool {self.spool_path!r} could"
                " not be written either: check that its directory exists and is"
                " writable, and that the disk is not full."
            ) from err
        if self._background:
            self._start_replayer()
            self._wake.set()

    def _submit(self, receipt: Receipt) -> _Job:
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
        job = _Job(receipt)
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
                    self.store.add_many([job.receipt for job in live])
                except Exception as err:
                    for job in live:
                        job.error = err
                for job in live:
                    job.done.release()
            if stop:
                return

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

    def _append(self, receipt: Receipt) -> None:
        data = (receipt.to_json() + "\n").encode()
        with _file_lock(self._append_lock, self._append_lock_path):
            fd = os.open(
                self.spool_path,
                os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                0o600,
            )
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    # A crash cut the last line short: end it, so that only
                    # that line is lost and not this one too.
                    data = b"\n" + data
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            if size == 0:
                _fsync_dir(self._dir)

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
        with open(self._replaying_path, "rb") as lines:
            for line in lines:
                if not line.strip():
                    continue
                try:
                    batch.append(Receipt.from_json(line))
                except ValueError:
                    rejected.append(line.rstrip(b"\n") + b"\n")
                    continue
                if len(batch) >= self._batch_size:
                    self.store.add_many(batch)
                    replayed += len(batch)
                    batch = []
        if batch:
            self.store.add_many(batch)
            replayed += len(batch)
        if rejected:
            # Unreadable lines are set aside for a person to look at, rather
            # than blocking the spool or vanishing.
            with open(self._rejected_path, "ab") as out:
                out.writelines(rejected)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(self._rejected_path, 0o600)
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


class ReceiptKeeper:
    """Receipts of one site: the store, this process's recorder, the hash of
    what was shown.

    The store and recorder open on first use, in the process that uses them:
    a server that forks workers after loading the app gives each worker its
    own connection and its own spool.
    """

    def __init__(
        self,
        policy: Policy,
        *,
        url: t.Any = "sqlite",
        folder: str,
        spool_dir: str | None = None,
        ip_mode: IPMode = "truncate",
        pepper: bytes | None = None,
        retention: t.Any = DEFAULT_RETENTION,
        timeout: float = 2.0,
        texts: cabc.Mapping[str, cabc.Mapping[str, str]] | None = None,
        schema: str | None = None,
    ) -> None:
        self.policy = policy
        self.url = url
        self.folder = folder
        self.spool_dir = spool_dir or folder
        self.ip_mode = ip_mode
        self.pepper = pepper
        self.retention = retention
        self.timeout = timeout
        self.texts = texts or {}
        self._lock = threading.Lock()
        self._store: ReceiptStore | None = None
        self._recorder: DurableRecorder | None = None
        self._pid = 0

    def store(self) -> ReceiptStore:
        """The receipt store of this process (opened on first use)."""
        self._open()
        assert self._store is not None
        return self._store

    def recorder(self) -> DurableRecorder:
        """The durable recorder of this process (opened on first use)."""
        self._open()
        assert self._recorder is not None
        return self._recorder

    def _open(self) -> None:
        import atexit

        pid = os.getpid()
        if self._pid == pid and self._recorder is not None:
            return
        with self._lock:
            if self._pid == pid and self._recorder is not None:
                return
            os.makedirs(self.folder, exist_ok=True)
            os.makedirs(self.spool_dir, exist_ok=True)
            store = open_store(self.url, instance_path=self.folder)
            assert store is not None
            spool = os.path.join(self.spool_dir, f"consent-spool-{pid}.jsonl")
            recorder = DurableRecorder(store, spool, timeout=self.timeout)
            self._store, self._recorder, self._pid = store, recorder, pid
            atexit.register(recorder.close)

    def close(self) -> None:
        """Stop the recorder and close the store (tests, shutdown)."""
        with self._lock:
            if self._recorder is not None:
                self._recorder.close()
            if self._store is not None:
                self._store.close()
            self._store = self._recorder = None
            self._pid = 0

    @functools.lru_cache(maxsize=64)  # noqa: B019 - one keeper per site
    def texts_hash(self, language: str) -> str:
        """SHA-256 of what a visitor was shown."""
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version

        from .i18n import Translator
        from .i18n import load_catalog

        try:
            library = version("cookie-consent")
        except PackageNotFoundError:  # pragma: no cover
            library = "0"
        tr = Translator(language, self.texts)
        keys = sorted(set(load_catalog("en")) | set(self.texts.get(language, {})))
        shown = {
            "texts": {key: tr.get(key) for key in keys},
            "declarations": [dataclasses.asdict(c) for c in self.policy.categories],
            "revision": self.policy.revision,
            "library": library,
        }
        canonical = json.dumps(shown, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def keep(
        self,
        state: ConsentState,
        *,
        language: str,
        path: str,
        user_agent: str | None,
        remote_addr: str | None,
    ) -> Receipt:
        """Build and durably record the receipt of ``state``.

        :raises ReceiptNotKeptError: when neither the store nor the spool
            kept it.
        """
        receipt = Receipt.from_state(
            state,
            self.policy,
            texts_hash=self.texts_hash(language),
            language=language,
            path=path,
            user_agent=user_agent,
            ip=anonymize_ip(remote_addr, self.ip_mode, pepper=self.pepper),
        )
        try:
            self.recorder().record(receipt)
        except OSError as err:
            raise ReceiptNotKeptError(str(err)) from err
        return receipt

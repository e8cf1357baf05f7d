from __future__ import annotations

import os
import random
import sqlite3
import stat
import threading
import typing as t
import uuid
from datetime import date
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import pytest
import sqlalchemy as sa

from consent.exceptions import ConfigurationError
from consent.receipts import DEFAULT_RETENTION
from consent.receipts import SCHEMA_VERSION
from consent.receipts import DailyRate
from consent.receipts import ReceiptStore
from consent.receipts import ShownTexts
from consent.receipts import SQLiteReceiptStore
from consent.receipts import SQLReceiptStore
from tests.factories import T0
from tests.factories import receipt_n

# The layout of schema version 1, as the first release created it.
VERSION_1 = """
CREATE TABLE consent_schema_version (version INTEGER NOT NULL);
INSERT INTO consent_schema_version VALUES (1);
CREATE TABLE consent_receipts (
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
CREATE INDEX ix_consent_receipts_consent_id ON consent_receipts (consent_id);
CREATE INDEX ix_consent_receipts_created_at
    ON consent_receipts (created_at, receipt_id);
INSERT INTO consent_receipts VALUES (
    'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'visitor-1', '2025-03-01 12:00:00.000000',
    'r1', 'abab', '{"analytics":true}', 'banner', 'en', '/', 'Mozilla/5.0', NULL
);
"""


def shown(n: int = 0, at: datetime = T0) -> ShownTexts:
    return ShownTexts.from_content(
        {"texts": {"banner.title": f"Cookies, version {n}", "zh": "我们使用"}},
        first_seen=at,
    )


def sqlite_stores(path):
    """Both stores that can open a SQLite file."""
    return [SQLiteReceiptStore(path), SQLReceiptStore(f"sqlite:///{path}")]


def test_stores_implement_the_protocol(store):
    assert isinstance(store, ReceiptStore)


def test_store_round_trip(store):
    receipt = receipt_n(ip=None)
    store.add(receipt)
    assert store.get(receipt.receipt_id) == receipt
    assert store.get(uuid.uuid4().hex) is None


def test_store_keeps_aware_utc_times(store):
    receipt = receipt_n(
        at=datetime(2025, 3, 2, 1, 30, 0, 123456, tzinfo=timezone(timedelta(hours=8)))
    )
    store.add(receipt)
    kept = store.get(receipt.receipt_id)
    assert kept.created_at == datetime(2025, 3, 1, 17, 30, 0, 123456, timezone.utc)
    assert kept.created_at.utcoffset() == timedelta(0)


def test_adding_the_same_receipt_twice_keeps_one(store):
    receipt = receipt_n()
    store.add(receipt)
    store.add(receipt)
    store.add_many([receipt, receipt])
    assert store.count() == 1


def test_add_many_is_idempotent(store):
    receipts = [receipt_n(n) for n in range(5)]
    store.add_many(receipts[:3])
    store.add_many(receipts)
    store.add_many(receipts + receipts)
    store.add_many([])
    assert store.count() == 5
    assert list(store.iter_receipts()) == receipts


def test_for_consent_id_is_in_time_order(store):
    mine = [receipt_n(n, consent_id="visitor-1") for n in (5, 1, 3)]
    theirs = [receipt_n(n, consent_id="visitor-2") for n in (2, 4)]
    for receipt in mine + theirs:
        store.add(receipt)
    found = store.for_consent_id("visitor-1")
    assert found == sorted(mine, key=lambda r: r.created_at)
    assert store.for_consent_id("nobody") == []


@pytest.mark.parametrize("batch_size", [1, 2, 3, 1000])
def test_iter_receipts_pages_through_everything_in_order(store, batch_size):
    receipts = [receipt_n(n) for n in (7, 0, 3, 9, 1, 5)]
    # Two receipts in the same microsecond: the id breaks the tie.
    receipts += [receipt_n(at=T0 + timedelta(minutes=3)) for _ in range(2)]
    store.add_many(receipts)
    expected = sorted(receipts, key=lambda r: (r.created_at, r.receipt_id))
    assert list(store.iter_receipts(batch_size=batch_size)) == expected


def test_iter_receipts_filters_by_time(store):
    receipts = [receipt_n(n) for n in range(10)]
    store.add_many(receipts)
    since = T0 + timedelta(minutes=2)
    until = T0 + timedelta(minutes=6)
    window = store.iter_receipts(since=since, until=until, batch_size=2)
    assert list(window) == receipts[2:6]
    assert list(store.iter_receipts(since=since, batch_size=3)) == receipts[2:]
    assert list(store.iter_receipts(until=until)) == receipts[:6]
    assert store.count(since=since, until=until) == 4
    assert store.count(since=since) == 8
    assert store.count(until=until) == 6
    assert store.count() == 10


def test_iter_receipts_reads_page_by_page(store):
    receipts = [receipt_n(n) for n in range(6)]
    store.add_many(receipts)
    stream = store.iter_receipts(batch_size=2)
    assert [next(stream), next(stream)] == receipts[:2]
    # Rows not read yet are fetched only when needed: a stream that had
    # loaded everything up front would still yield the erased receipts.
    store.erase("visitor-1")
    assert list(stream) == []


@pytest.mark.parametrize("batch_size", [0, -1])
def test_iter_receipts_refuses_an_empty_page(store, batch_size):
    with pytest.raises(ValueError):
        next(store.iter_receipts(batch_size=batch_size))


def test_naive_times_are_refused(store):
    with pytest.raises(ValueError, match="timezone-aware"):
        store.count(since=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        store.purge(datetime(2025, 1, 1))


def test_erase_removes_one_visitor(store):
    store.add_many([receipt_n(n, consent_id="visitor-1") for n in range(3)])
    store.add_many([receipt_n(n, consent_id="visitor-2") for n in range(2)])
    assert store.erase("visitor-1") == 3
    assert store.erase("visitor-1") == 0
    assert store.for_consent_id("visitor-1") == []
    assert len(store.for_consent_id("visitor-2")) == 2


def test_purge_removes_exactly_the_older_receipts(store):
    receipts = [receipt_n(n) for n in range(10)]
    store.add_many(receipts)
    cutoff = T0 + timedelta(minutes=4)
    assert store.purge(cutoff) == 4
    assert list(store.iter_receipts()) == receipts[4:]
    assert store.purge(cutoff) == 0
    assert store.purge(T0 - DEFAULT_RETENTION) == 0
    assert store.count() == 6


def test_stats_counts_methods_and_daily_opt_ins(store):
    day1 = datetime(2025, 3, 1, 23, 59, 59, tzinfo=timezone.utc)
    day2 = datetime(2025, 3, 2, 0, 0, 0, tzinfo=timezone.utc)
    store.add_many(
        [
            receipt_n(at=day1, choices={"analytics": True, "maps": True}),
            receipt_n(at=day1, choices={"analytics": False, "maps": True}),
            receipt_n(at=day1, choices={"analytics": True, "maps": True}),
            receipt_n(
                at=day2, choices={"analytics": False, "maps": False}, method="gpc"
            ),
            receipt_n(at=day2, choices={"analytics": True}, method="preferences"),
        ]
    )
    stats = store.stats()
    assert stats.by_method == {"banner": 3, "gpc": 1, "preferences": 1}
    assert stats.total == 5
    assert stats.daily == (
        DailyRate(date(2025, 3, 1), "analytics", granted=2, total=3),
        DailyRate(date(2025, 3, 1), "maps", granted=3, total=3),
        DailyRate(date(2025, 3, 2), "analytics", granted=1, total=2),
        DailyRate(date(2025, 3, 2), "maps", granted=0, total=1),
    )
    assert stats.daily[0].rate == pytest.approx(2 / 3)
    later = store.stats(since=day2)
    assert later.by_method == {"gpc": 1, "preferences": 1}
    assert [rate.day for rate in later.daily] == [date(2025, 3, 2)] * 2


def test_stats_of_an_empty_store(store):
    stats = store.stats()
    assert stats.by_method == {}
    assert stats.daily == ()
    assert stats.total == 0


def test_store_is_usable_after_close(store):
    store.add(receipt_n(0))
    store.ping()
    store.close()
    store.add(receipt_n(1))
    assert store.count() == 2


def test_store_is_safe_across_threads(store):
    receipts = [receipt_n(n) for n in range(80)]
    errors = []

    def write(chunk):
        try:
            for receipt in chunk:
                store.add(receipt)
                store.count()
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=write, args=(receipts[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert store.count() == 80


# SQLite specifics


def test_sqlite_store_layout(tmp_path):
    path = tmp_path / "receipts.db"
    store = SQLiteReceiptStore(path)
    try:
        store.ping()
    finally:
        store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        versions = conn.execute("SELECT version FROM consent_schema_version").fetchall()
        indexes = {
            row[1] for row in conn.execute("PRAGMA index_list(consent_receipts)")
        }
    conn.close()
    assert versions == [(SCHEMA_VERSION,)]
    assert {
        "ix_consent_receipts_consent_id",
        "ix_consent_receipts_created_at",
    } <= indexes


def test_sqlite_store_refuses_a_newer_layout(tmp_path):
    path = tmp_path / "receipts.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE consent_schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO consent_schema_version VALUES (99)")
    conn.commit()
    conn.close()
    store = SQLiteReceiptStore(path)
    with pytest.raises(ConfigurationError, match="newer release"):
        store.add(receipt_n())
    store.close()


def test_sqlalchemy_store_refuses_a_newer_layout(tmp_path):
    path = tmp_path / "receipts.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE consent_schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO consent_schema_version VALUES (99)")
    conn.commit()
    conn.close()
    store = SQLReceiptStore(f"sqlite:///{path}")
    with pytest.raises(ConfigurationError, match="upgrade"):
        store.ping()
    store.close()


def test_both_stores_read_the_same_sqlite_file(tmp_path):
    path = tmp_path / "receipts.db"
    receipts = [receipt_n(n) for n in range(5)]
    plain = SQLiteReceiptStore(path)
    plain.add_many(receipts[:3])
    plain.close()
    through_sqlalchemy = SQLReceiptStore(f"sqlite:///{path}")
    through_sqlalchemy.add_many(receipts[2:])
    assert list(through_sqlalchemy.iter_receipts(batch_size=2)) == receipts
    through_sqlalchemy.close()
    plain = SQLiteReceiptStore(path)
    assert list(plain.iter_receipts()) == receipts
    plain.close()


def test_sqlite_store_closes_connections_of_finished_threads(tmp_path):
    store = SQLiteReceiptStore(tmp_path / "receipts.db")
    store.ping()

    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    before = open_fds()
    for n in range(30):
        # One short-lived thread per request, as a threaded server does.
        thread = threading.Thread(target=store.add, args=(receipt_n(n),))
        thread.start()
        thread.join(10)
    assert open_fds() - before < 10
    assert store.count() == 30
    store.close()


@pytest.mark.parametrize("count", [1, 50, 51, 1001])
def test_add_many_keeps_batches_of_every_size(store, count):
    # One multi-row statement up to 50 receipts, several in one transaction
    # beyond; receipts repeated within the batch are kept once.
    receipts = [receipt_n(n) for n in range(count)]
    store.add_many(receipts + receipts[: count // 2])
    assert store.count() == count
    assert store.get(receipts[-1].receipt_id) == receipts[-1]


@pytest.mark.parametrize(
    "spread",
    [
        "seconds",  # all within minutes of each other
        "years",  # years apart
        "bursts",  # many at the very same microsecond
    ],
)
def test_latest_pages_newest_first(store, spread):
    rng = random.Random(spread)
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    if spread == "seconds":
        times = [now - timedelta(seconds=rng.uniform(0, 600)) for _ in range(230)]
    elif spread == "years":
        times = [now - timedelta(days=rng.uniform(0, 30 * 365)) for _ in range(230)]
    else:
        bursts = [now - timedelta(hours=rng.uniform(0, 48)) for _ in range(7)]
        times = [rng.choice(bursts) for _ in range(230)]
    store.add_many(receipt_n(at=at) for at in times)
    expected = list(store.iter_receipts())[::-1]
    per_page = 20
    pages = [store.latest(per_page, offset=n * per_page) for n in range(13)]
    assert [r for page in pages for r in page] == expected
    assert [len(p) for p in pages] == [20] * 11 + [10, 0]
    assert store.latest(0) == []
    assert store.latest(1000) == expected


@pytest.mark.parametrize("limit, offset", [(-1, 0), (10, -1)])
def test_latest_refuses_a_negative_page(store, limit, offset):
    with pytest.raises(ValueError, match="negative"):
        store.latest(limit, offset)


def test_texts_are_kept_once_per_version(store):
    first, second = shown(1), shown(2, at=T0 + timedelta(days=1))
    assert store.get_texts(first.texts_hash) is None
    store.add_texts([first])
    store.add_texts([first, second, second])
    # Seen again later: the first time it was seen is kept.
    store.add_texts([shown(1, at=T0 + timedelta(days=9))])
    store.add_texts([])
    assert store.get_texts(first.texts_hash) == first
    assert store.get_texts(second.texts_hash) == second
    assert store.get_texts(first.texts_hash).is_intact


def test_a_receipt_leads_to_what_it_was_shown(store):
    texts = shown(3)
    receipt = receipt_n(texts_hash=texts.texts_hash)
    store.add_texts([texts])
    store.add(receipt)
    kept = store.get(receipt.receipt_id)
    assert store.get_texts(kept.texts_hash).content()["texts"]["zh"] == "我们使用"


@pytest.mark.parametrize("make", [SQLiteReceiptStore, SQLReceiptStore])
def test_a_version_1_database_is_migrated(tmp_path, make):
    path = tmp_path / "receipts.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(VERSION_1)
    conn.close()
    store = make(path) if make is SQLiteReceiptStore else make(f"sqlite:///{path}")
    try:
        (old,) = store.for_consent_id("visitor-1")
        assert old.created_at == T0
        texts = shown()
        store.add_texts([texts])
        assert store.get_texts(texts.texts_hash) == texts
    finally:
        store.close()
    with sqlite3.connect(path) as conn:
        versions = conn.execute("SELECT version FROM consent_schema_version").fetchall()
        columns = [row[1] for row in conn.execute("PRAGMA table_info(consent_texts)")]
    conn.close()
    assert versions == [(1,), (SCHEMA_VERSION,)]
    assert SCHEMA_VERSION == 2
    assert columns == ["texts_hash", "canonical", "first_seen"]
    # Opened again, nothing more is migrated.
    again = SQLiteReceiptStore(path)
    again.ping()
    again.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute(
            "SELECT COUNT(*) FROM consent_schema_version"
        ).fetchone() == (2,)
    conn.close()


@pytest.mark.parametrize("kind", ["sqlite3", "sqlalchemy"])
def test_sqlite_files_are_readable_by_their_owner_only(tmp_path, kind):
    path = tmp_path / "receipts.db"
    old_umask = os.umask(0o022)
    try:
        store = (
            SQLiteReceiptStore(path)
            if kind == "sqlite3"
            else SQLReceiptStore(f"sqlite:///{path}")
        )
        store.add(receipt_n())
        # While a connection is open, the write-ahead log and its index exist.
        files = [path, tmp_path / "receipts.db-wal", tmp_path / "receipts.db-shm"]
        modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in files}
        store.close()
    finally:
        os.umask(old_umask)
    assert modes == dict.fromkeys(modes, 0o600)


def test_an_existing_file_keeps_its_mode(tmp_path):
    # A file the operator made is theirs: the store does not change it.
    path = tmp_path / "receipts.db"
    path.touch(mode=0o640)
    os.chmod(path, 0o640)
    store = SQLiteReceiptStore(path)
    store.ping()
    store.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_an_engine_given_is_not_disposed(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'r.db'}")
    pool = engine.pool
    store = SQLReceiptStore(engine)
    store.add(receipt_n())
    store.close()
    assert engine.pool is pool
    with engine.connect() as conn:
        count = conn.execute(sa.text("SELECT COUNT(*) FROM consent_receipts"))
        assert count.scalar_one() == 1
    engine.dispose()


def _open_together(store: ReceiptStore, threads: int) -> list[Exception]:
    """Write one receipt from each of ``threads`` threads started together;
    the errors they met."""
    errors: list[Exception] = []
    start = threading.Barrier(threads)

    def write(n: int) -> None:
        try:
            start.wait(10)
            store.add(receipt_n(n))
            store.count()
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    started = [threading.Thread(target=write, args=(n,)) for n in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join(30)
    return errors


@pytest.mark.parametrize("kind", ["sqlite3", "sqlalchemy"])
def test_a_new_database_opened_by_many_threads_at_once(tmp_path, kind):
    # A threaded server's first requests: every thread opens its connection
    # to a database that does not exist yet. Changing the file to WAL mode
    # fails at once, without waiting, while another connection holds a
    # lock: it is done once per store, and tried again.
    for attempt in range(40):
        path = tmp_path / f"receipts-{attempt}.db"
        store: t.Any = (
            SQLiteReceiptStore(path)
            if kind == "sqlite3"
            else SQLReceiptStore(f"sqlite:///{path}")
        )
        try:
            assert _open_together(store, 8) == []
            assert store.count() == 8
        finally:
            store.close()

from __future__ import annotations

import ipaddress
import logging
import os
import sqlite3
import stat
import subprocess
import sys
import threading
import time
import uuid
from datetime import date
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consent.exceptions import ConfigurationError
from consent.exceptions import ConsentError
from consent.model import Category
from consent.model import Policy
from consent.model import Service
from consent.receipts import DEFAULT_RETENTION
from consent.receipts import SCHEMA_VERSION
from consent.receipts import DailyRate
from consent.receipts import DurableRecorder
from consent.receipts import Receipt
from consent.receipts import ReceiptNotKeptError
from consent.receipts import ReceiptStore
from consent.receipts import SQLiteReceiptStore
from consent.receipts import SQLReceiptStore
from consent.receipts import anonymize_ip
from consent.receipts import open_store
from consent.receipts import reduce_user_agent
from consent.state import METHODS
from consent.state import ConsentState

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


def make_receipt(
    n: int = 0,
    *,
    consent_id: str = "visitor-1",
    at: datetime | None = None,
    choices: dict[str, bool] | None = None,
    method: str = "banner",
    ip: str | None = "203.0.113.0/24",
) -> Receipt:
    return Receipt(
        receipt_id=uuid.uuid4().hex,
        consent_id=consent_id,
        created_at=T0 + timedelta(minutes=n) if at is None else at,
        revision="r1",
        texts_hash="ab" * 32,
        choices=tuple((choices or {"analytics": n % 2 == 0, "maps": True}).items()),
        method=method,
        language="en",
        path="/visit",
        user_agent="Mozilla/5.0",
        ip=ip,
    )


@pytest.fixture
def policy():
    return Policy(
        categories=(
            Category("necessary", "Strictly necessary", required=True),
            Category(
                "analytics",
                "Analytics",
                services=(Service("matomo", "Matomo"),),
            ),
            Category("marketing", "Marketing"),
        )
    )


@pytest.fixture(
    params=[
        "sqlite3",
        "sqlalchemy",
        pytest.param("postgresql", marks=pytest.mark.postgres),
    ]
)
def store(request, tmp_path):
    if request.param == "sqlite3":
        store = SQLiteReceiptStore(tmp_path / "receipts.db")
    elif request.param == "sqlalchemy":
        store = SQLReceiptStore(f"sqlite:///{tmp_path / 'receipts.db'}")
    else:
        # A role of its own, whose search path is its own schema.
        role = request.getfixturevalue("pg_role")
        store = SQLReceiptStore(f"postgresql+psycopg://{role}@127.0.0.1:5432/test")
    yield store
    store.close()


# Receipts


def test_from_state_records_the_decision(policy):
    state = ConsentState(
        granted=frozenset({"analytics", "matomo"}),
        given_at=T0,
        revision=policy.revision,
        consent_id="k3v-a9QTq1bZcPe0WJmZ2t",
        method="preferences",
    )
    receipt = Receipt.from_state(
        state,
        policy,
        texts_hash="cd" * 32,
        language="zh-Hans",
        path="/consent/preferences?next=/map&token=secret",
        user_agent="Mozilla/5.0 " + "x" * 500,
        ip="203.0.113.0/24",
    )
    assert uuid.UUID(hex=receipt.receipt_id).version == 4
    assert receipt.receipt_id == uuid.UUID(receipt.receipt_id).hex
    assert receipt.consent_id == state.consent_id
    assert receipt.created_at == T0
    assert receipt.revision == policy.revision
    assert receipt.choices_dict() == {
        "analytics": True,
        "matomo": True,
        "marketing": False,
    }
    assert [key for key, _ in receipt.choices] == list(policy.choice_keys)
    assert receipt.method == "preferences"
    assert receipt.language == "zh-Hans"
    assert receipt.path == "/consent/preferences"
    assert len(receipt.user_agent) == 200
    assert receipt.ip == "203.0.113.0/24"


def test_from_state_takes_an_explicit_time_and_makes_new_ids(policy):
    state = ConsentState(
        granted=frozenset(), given_at=T0, revision="r1", consent_id="visitor-1"
    )
    later = T0 + timedelta(seconds=3)
    kwargs = dict(texts_hash="h", language="en", path="/", user_agent=None, ip=None)
    first = Receipt.from_state(state, policy, now=later, **kwargs)
    second = Receipt.from_state(state, policy, **kwargs)
    assert first.created_at == later
    assert second.created_at == T0
    assert first.receipt_id != second.receipt_id
    assert first.user_agent == ""
    assert not any(first.choices_dict().values())


def test_receipt_cleans_visitor_text():
    receipt = Receipt(
        receipt_id="a" * 32,
        consent_id="visitor-1",
        created_at=datetime(2025, 3, 1, 20, 0, tzinfo=timezone(timedelta(hours=8))),
        revision="r1",
        texts_hash="h",
        choices={"analytics": 1},
        method="api",
        language="en\r\nX-Injected: 1",
        path="/a\x00b?q=1#frag",
        user_agent="Agent\x00\x1b[31m\ud800",
        ip="203.0.113.0/24",
    )
    assert receipt.created_at == datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
    assert receipt.created_at.utcoffset() == timedelta(0)
    assert receipt.choices == (("analytics", True),)
    assert receipt.language == "enX-Injected: 1"
    assert receipt.path == "/ab"
    assert receipt.user_agent == "Agent[31m?"


@pytest.mark.parametrize(
    "field, value",
    [
        ("created_at", datetime(2025, 3, 1)),
        ("method", "cookie-wall"),
        ("receipt_id", ""),
        ("receipt_id", "x" * 65),
        ("consent_id", "bad\nid"),
    ],
)
def test_receipt_refuses_invalid_fields(field, value):
    fields = {
        "receipt_id": "a" * 32,
        "consent_id": "visitor-1",
        "created_at": T0,
        "revision": "r1",
        "texts_hash": "h",
        "choices": (),
        "method": "banner",
        "language": "en",
        "path": "/",
        "user_agent": "",
        "ip": None,
    }
    fields[field] = value
    with pytest.raises(ValueError):
        Receipt(**fields)


_text = st.text(max_size=60)


@given(
    consent_id=st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=126),
        min_size=1,
        max_size=64,
    ),
    created_at=st.datetimes(
        min_value=datetime(1970, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.just(timezone.utc),
    ),
    revision=_text,
    choices=st.dictionaries(st.text(min_size=1, max_size=20), st.booleans()),
    method=st.sampled_from(METHODS),
    language=_text,
    path=st.text(max_size=300),
    user_agent=st.text(max_size=300),
    ip=st.none() | _text,
)
def test_json_round_trip(
    consent_id, created_at, revision, choices, method, language, path, user_agent, ip
):
    receipt = Receipt(
        receipt_id=uuid.uuid4().hex,
        consent_id=consent_id,
        created_at=created_at,
        revision=revision,
        texts_hash="ab" * 32,
        choices=tuple(choices.items()),
        method=method,
        language=language,
        path=path,
        user_agent=user_agent,
        ip=ip,
    )
    line = receipt.to_json()
    assert "\n" not in line
    assert Receipt.from_json(line) == receipt
    assert Receipt.from_json(line.encode()) == receipt


@pytest.mark.parametrize(
    "text",
    [
        "{",
        "[]",
        '{"v": 2}',
        make_receipt().to_json().replace('"v":1', '"v":2'),
        make_receipt().to_json().replace('"maps":true', '"maps":"yes"'),
        make_receipt().to_json().replace('"language":"en"', '"language":3'),
        make_receipt().to_json().replace('"ip":"203.0.113.0/24"', '"ip":4'),
        make_receipt().to_json().replace("+00:00", ""),
    ],
)
def test_from_json_refuses_what_is_not_a_receipt(text):
    with pytest.raises(ValueError):
        Receipt.from_json(text)


# Privacy of what is stored


@pytest.mark.parametrize(
    "ip, expected",
    [
        ("203.0.113.77", "203.0.113.0/24"),
        (" 198.51.100.255 ", "198.51.100.0/24"),
        ("2001:db8:1234:5678:9abc::1", "2001:db8:1234::/48"),
        ("2001:DB8:ABCD:0012:0000:0000:0000:0001", "2001:db8:abcd::/48"),
        ("fe80::1%eth0", "fe80::/48"),
        ("::ffff:203.0.113.77", "203.0.113.0/24"),
        ("203.0.113.77%eth0", "203.0.113.0/24"),
    ],
)
def test_anonymize_ip_truncates(ip, expected):
    assert anonymize_ip(ip, "truncate") == expected


@pytest.mark.parametrize("ip", ["203.0.113.77", "2001:db8:1234:5678::1"])
def test_anonymize_ip_hashes_with_the_pepper(ip):
    first = anonymize_ip(ip, "hash", pepper=b"p" * 32)
    assert first is not None
    assert len(first) == 64
    assert ip not in first
    assert first != ip
    assert anonymize_ip(ip, "hash", pepper=b"p" * 32) == first
    assert anonymize_ip(ip, "hash", pepper=b"q" * 32) != first


def test_anonymize_ip_hash_does_not_depend_on_spelling():
    pepper = b"k" * 32
    assert anonymize_ip("2001:DB8::1", "hash", pepper=pepper) == anonymize_ip(
        "2001:db8:0:0::1", "hash", pepper=pepper
    )


@pytest.mark.parametrize(
    "ip",
    [
        None,
        "",
        "unknown",
        "999.1.1.1",
        "203.0.113.77, x",
        "203.0.113.077",
        "203.0.113",
        "203.0.113.77\x00",
    ],
)
@pytest.mark.parametrize("mode", ["truncate", "hash", "none"])
def test_anonymize_ip_gives_none_for_what_is_not_an_address(ip, mode):
    assert anonymize_ip(ip, mode, pepper=b"p" * 32) is None


def test_anonymize_ip_none_mode_stores_nothing():
    assert anonymize_ip("203.0.113.77", "none") is None


@pytest.mark.parametrize("pepper", [None, b""])
def test_anonymize_ip_hash_needs_a_pepper(pepper):
    with pytest.raises(ConfigurationError, match="pepper"):
        anonymize_ip("203.0.113.77", "hash", pepper=pepper)


def test_anonymize_ip_refuses_an_unknown_mode():
    with pytest.raises(ConfigurationError, match="truncate"):
        anonymize_ip("203.0.113.77", "sha256")


@pytest.mark.parametrize(
    "user_agent, expected",
    [
        (None, ""),
        ("", ""),
        ("Mozilla/5.0 (X11; Linux x86_64)", "Mozilla/5.0 (X11; Linux x86_64)"),
        ("A\x00B\nC\x7fD\x85E", "ABCDE"),
        ("x" * 1000, "x" * 200),
    ],
)
def test_reduce_user_agent(user_agent, expected):
    assert reduce_user_agent(user_agent) == expected


def test_default_retention_outlives_the_longest_choice():
    assert DEFAULT_RETENTION >= timedelta(days=395)


# Stores


def test_stores_implement_the_protocol(store):
    assert isinstance(store, ReceiptStore)


def test_store_round_trip(store):
    receipt = make_receipt(ip=None)
    store.add(receipt)
    assert store.get(receipt.receipt_id) == receipt
    assert store.get(uuid.uuid4().hex) is None


def test_store_keeps_aware_utc_times(store):
    receipt = make_receipt(
        at=datetime(2025, 3, 2, 1, 30, 0, 123456, tzinfo=timezone(timedelta(hours=8)))
    )
    store.add(receipt)
    kept = store.get(receipt.receipt_id)
    assert kept.created_at == datetime(2025, 3, 1, 17, 30, 0, 123456, timezone.utc)
    assert kept.created_at.utcoffset() == timedelta(0)


def test_adding_the_same_receipt_twice_keeps_one(store):
    receipt = make_receipt()
    store.add(receipt)
    store.add(receipt)
    store.add_many([receipt, receipt])
    assert store.count() == 1


def test_add_many_is_idempotent(store):
    receipts = [make_receipt(n) for n in range(5)]
    store.add_many(receipts[:3])
    store.add_many(receipts)
    store.add_many(receipts + receipts)
    store.add_many([])
    assert store.count() == 5
    assert list(store.iter_receipts()) == receipts


def test_for_consent_id_is_in_time_order(store):
    mine = [make_receipt(n, consent_id="visitor-1") for n in (5, 1, 3)]
    theirs = [make_receipt(n, consent_id="visitor-2") for n in (2, 4)]
    for receipt in mine + theirs:
        store.add(receipt)
    found = store.for_consent_id("visitor-1")
    assert found == sorted(mine, key=lambda r: r.created_at)
    assert store.for_consent_id("nobody") == []


@pytest.mark.parametrize("batch_size", [1, 2, 3, 1000])
def test_iter_receipts_pages_through_everything_in_order(store, batch_size):
    receipts = [make_receipt(n) for n in (7, 0, 3, 9, 1, 5)]
    # Two receipts in the same microsecond: the id breaks the tie.
    receipts += [make_receipt(at=T0 + timedelta(minutes=3)) for _ in range(2)]
    store.add_many(receipts)
    expected = sorted(receipts, key=lambda r: (r.created_at, r.receipt_id))
    assert list(store.iter_receipts(batch_size=batch_size)) == expected


def test_iter_receipts_filters_by_time(store):
    receipts = [make_receipt(n) for n in range(10)]
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
    receipts = [make_receipt(n) for n in range(6)]
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
    store.add_many([make_receipt(n, consent_id="visitor-1") for n in range(3)])
    store.add_many([make_receipt(n, consent_id="visitor-2") for n in range(2)])
    assert store.erase("visitor-1") == 3
    assert store.erase("visitor-1") == 0
    assert store.for_consent_id("visitor-1") == []
    assert len(store.for_consent_id("visitor-2")) == 2


def test_purge_removes_exactly_the_older_receipts(store):
    receipts = [make_receipt(n) for n in range(10)]
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
            make_receipt(at=day1, choices={"analytics": True, "maps": True}),
            make_receipt(at=day1, choices={"analytics": False, "maps": True}),
            make_receipt(at=day1, choices={"analytics": True, "maps": True}),
            make_receipt(
                at=day2, choices={"analytics": False, "maps": False}, method="gpc"
            ),
            make_receipt(at=day2, choices={"analytics": True}, method="preferences"),
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
    store.add(make_receipt(0))
    store.ping()
    store.close()
    store.add(make_receipt(1))
    assert store.count() == 2


def test_store_is_safe_across_threads(store):
    receipts = [make_receipt(n) for n in range(80)]
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
        store.add(make_receipt())
    store.close()


def test_sqlalchemy_store_refuses_a_newer_layout(tmp_path):
    path = tmp_path / "receipts.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE consent_schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO consent_schema_version VALUES (2)")
    conn.commit()
    conn.close()
    store = SQLReceiptStore(f"sqlite:///{path}")
    with pytest.raises(ConfigurationError, match="upgrade"):
        store.ping()
    store.close()


def test_both_stores_read_the_same_sqlite_file(tmp_path):
    path = tmp_path / "receipts.db"
    receipts = [make_receipt(n) for n in range(5)]
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


# open_store


def test_open_store_none():
    assert open_store(None, instance_path="/nonexistent") is None


def test_open_store_sqlite_default(tmp_path):
    instance = tmp_path / "instance"
    store = open_store("sqlite", instance_path=str(instance))
    assert isinstance(store, SQLiteReceiptStore)
    assert store.path == str(instance / "consent-receipts.db")
    store.add(make_receipt())
    store.close()
    assert (instance / "consent-receipts.db").is_file()


def test_open_store_relative_sqlite_is_in_the_instance_folder(tmp_path):
    store = open_store("sqlite:///proof.db", instance_path=str(tmp_path / "inst"))
    assert isinstance(store, SQLiteReceiptStore)
    assert store.path == str(tmp_path / "inst" / "proof.db")
    store.close()


def test_open_store_absolute_sqlite(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/abs.db", instance_path="/nonexistent")
    assert isinstance(store, SQLiteReceiptStore)
    assert store.path == f"{tmp_path}/abs.db"
    store.close()


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///:memory:", "sqlite+pysqlite://"]
)
def test_open_store_refuses_memory_databases(url, tmp_path):
    with pytest.raises(ConfigurationError, match="in-memory"):
        open_store(url, instance_path=str(tmp_path))


def test_open_store_other_urls_use_sqlalchemy(tmp_path):
    store = open_store(
        f"sqlite+pysqlite:///{tmp_path}/sa.db", instance_path=str(tmp_path)
    )
    assert isinstance(store, SQLReceiptStore)
    store.add(make_receipt())
    assert store.count() == 1
    store.close()


def test_open_store_without_sqlalchemy(monkeypatch, tmp_path):
    # A None entry in sys.modules makes the import fail, as it does when the
    # "sql" extra is not installed.
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)
    with pytest.raises(ConfigurationError, match=r"cookie-consent\[sql\]"):
        open_store("postgresql+psycopg://db/test", instance_path=str(tmp_path))


def test_open_store_refuses_a_bad_url(tmp_path):
    with pytest.raises(ConfigurationError, match="not a database URL"):
        open_store("not a url", instance_path=str(tmp_path))


# Durability


def spooled_lines(path) -> list[str]:
    lines = []
    for name in (f"{path}.replaying", str(path)):
        if os.path.exists(name):
            with open(name) as spool:
                lines.extend(line for line in spool.read().splitlines() if line)
    return lines


@pytest.fixture
def broken_dir(tmp_path):
    """A database directory that cannot be opened until it is repaired.

    Its name is taken by a regular file, which stops even root.
    """
    path = tmp_path / "db"
    path.write_text("not a directory")
    return path


def repair(broken_dir) -> None:
    broken_dir.unlink()
    broken_dir.mkdir()


@pytest.fixture
def broken_store(broken_dir):
    store = SQLiteReceiptStore(broken_dir / "receipts.db", timeout=0.1)
    yield store
    store.close()


@pytest.fixture
def recorders():
    made = []

    def make(store, spool, **kwargs):
        kwargs.setdefault("background", False)
        recorder = DurableRecorder(store, spool, **kwargs)
        made.append(recorder)
        return recorder

    yield make
    for recorder in made:
        recorder.close()


def test_record_goes_to_the_store(tmp_path, recorders):
    store = SQLiteReceiptStore(tmp_path / "receipts.db")
    recorder = recorders(store, tmp_path / "spool.jsonl")
    receipt = make_receipt()
    recorder.record(receipt)
    assert store.get(receipt.receipt_id) == receipt
    assert not (tmp_path / "spool.jsonl").exists()
    assert recorder.flush() == 0
    store.close()


def test_locked_database_spools_and_flush_replays_once(tmp_path, recorders):
    path = tmp_path / "receipts.db"
    store = SQLiteReceiptStore(path, timeout=0.05)
    store.ping()
    spool = tmp_path / "spool.jsonl"
    recorder = recorders(store, spool, timeout=2.0)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    receipts = [make_receipt(n) for n in range(3)]
    try:
        for receipt in receipts:
            recorder.record(receipt)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert [Receipt.from_json(line) for line in spooled_lines(spool)] == receipts
    assert store.count() == 0
    assert recorder.flush() == 3
    assert recorder.flush() == 0
    assert list(store.iter_receipts()) == receipts
    assert spooled_lines(spool) == []
    store.close()


def test_unreachable_database_spools_until_it_is_back(
    tmp_path, broken_dir, broken_store, recorders
):
    spool = tmp_path / "spool.jsonl"
    recorder = recorders(broken_store, spool)
    receipts = [make_receipt(n) for n in range(4)]
    for receipt in receipts:
        recorder.record(receipt)
    assert len(spooled_lines(spool)) == 4
    with pytest.raises(sqlite3.OperationalError):
        recorder.flush()
    assert len(spooled_lines(spool)) == 4
    repair(broken_dir)
    assert recorder.flush() == 4
    assert recorder.flush() == 0
    assert broken_store.count() == 4
    assert spooled_lines(spool) == []
    assert not spool.exists()


def test_background_thread_replays_when_the_store_is_back(
    tmp_path, broken_dir, broken_store, recorders
):
    spool = tmp_path / "spool.jsonl"
    recorder = recorders(broken_store, spool, background=True, retry_interval=0.05)
    receipts = [make_receipt(n) for n in range(5)]
    for receipt in receipts:
        recorder.record(receipt)
    repair(broken_dir)
    deadline = time.monotonic() + 10
    while broken_store.count() < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert list(broken_store.iter_receipts()) == receipts
    recorder.close()
    assert spooled_lines(spool) == []
    assert recorder.flush() == 0


def test_leftover_spool_is_replayed_on_start(tmp_path, broken_dir, recorders):
    spool = tmp_path / "spool.jsonl"
    store = SQLiteReceiptStore(broken_dir / "receipts.db", timeout=0.1)
    first = recorders(store, spool)
    receipts = [make_receipt(n) for n in range(3)]
    for receipt in receipts:
        first.record(receipt)
    first.close()
    repair(broken_dir)
    recorders(store, spool, background=True, retry_interval=0.05)
    deadline = time.monotonic() + 10
    while store.count() < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert list(store.iter_receipts()) == receipts
    store.close()


class RecordingStore:
    """A SQLite store that notes the order in which receipts reach it."""

    def __init__(self, inner: SQLiteReceiptStore) -> None:
        self.inner = inner
        self.kept: list[str] = []
        self.calls = 0

    def add(self, receipt):
        self.add_many([receipt])

    def add_many(self, receipts):
        self.calls += 1
        receipts = list(receipts)
        self.inner.add_many(receipts)
        self.kept.extend(r.receipt_id for r in receipts)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_replay_keeps_order_and_an_interrupted_replay_goes_first(
    tmp_path, broken_dir, recorders
):
    spool = tmp_path / "spool.jsonl"
    store = RecordingStore(SQLiteReceiptStore(broken_dir / "r.db", timeout=0.1))
    receipts = [make_receipt(n) for n in range(7)]
    recorder = recorders(store, spool, batch_size=2)
    for receipt in receipts[:4]:
        recorder.record(receipt)
    # A replay that crashed after taking the spool leaves it aside.
    os.replace(spool, f"{spool}.replaying")
    for receipt in receipts[4:]:
        recorder.record(receipt)
    repair(broken_dir)
    restarted = recorders(store, spool, batch_size=2)
    assert restarted.flush() == 7
    assert store.kept == [r.receipt_id for r in receipts]
    assert restarted.flush() == 0
    assert store.inner.count() == 7
    assert not os.path.exists(f"{spool}.replaying")
    store.inner.close()


def test_receipts_that_reached_the_store_late_are_kept_once(
    tmp_path, broken_dir, broken_store, recorders
):
    spool = tmp_path / "spool.jsonl"
    recorder = recorders(broken_store, spool)
    receipts = [make_receipt(n) for n in range(6)]
    for receipt in receipts:
        recorder.record(receipt)
    repair(broken_dir)
    broken_store.add_many(receipts[:3])
    assert recorder.flush() == 6
    assert recorder.flush() == 0
    assert broken_store.count() == 6


class GatedStore:
    """A SQLite store whose writes wait until the gate opens: a slow database."""

    def __init__(self, inner: SQLiteReceiptStore) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.done = threading.Event()

    def add(self, receipt):
        self.add_many([receipt])

    def add_many(self, receipts):
        self.gate.wait(30)
        self.inner.add_many(receipts)
        self.done.set()

    def __getattr__(self, name):
        return getattr(self.inner, name)


class CountingStore:
    """A SQLite store that counts its write transactions."""

    def __init__(self, inner: SQLiteReceiptStore) -> None:
        self.inner = inner
        self.writes = 0
        self.gate = threading.Event()

    def add(self, receipt):
        self.add_many([receipt])

    def add_many(self, receipts):
        self.gate.wait(30)
        self.writes += 1
        self.inner.add_many(receipts)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_concurrent_receipts_share_one_commit(tmp_path, recorders):
    store = CountingStore(SQLiteReceiptStore(tmp_path / "receipts.db"))
    recorder = recorders(store, tmp_path / "spool.jsonl", timeout=10)
    receipts = [make_receipt() for _ in range(40)]
    threads = [threading.Thread(target=recorder.record, args=(r,)) for r in receipts]
    for thread in threads:
        thread.start()
    # Hold the first writes back so that the others queue up behind them.
    time.sleep(0.2)
    store.gate.set()
    for thread in threads:
        thread.join(10)
    assert store.count() == 40
    assert not (tmp_path / "spool.jsonl").exists()
    assert store.writes < 40
    store.inner.close()


def test_slow_store_times_out_to_the_spool(tmp_path, recorders):
    spool = tmp_path / "spool.jsonl"
    store = GatedStore(SQLiteReceiptStore(tmp_path / "receipts.db"))
    recorder = recorders(store, spool, timeout=0.2, retry_interval=3600)
    receipt = make_receipt()
    started = time.monotonic()
    recorder.record(receipt)
    assert time.monotonic() - started < 2
    assert spooled_lines(spool) == [receipt.to_json()]
    store.gate.set()
    assert store.done.wait(10)
    assert recorder.flush() == 1
    assert store.count() == 1
    store.inner.close()


def test_failing_store_is_left_alone_for_the_retry_interval(
    tmp_path, broken_dir, recorders
):
    store = RecordingStore(SQLiteReceiptStore(broken_dir / "r.db", timeout=0.1))
    spool = tmp_path / "spool.jsonl"
    recorder = recorders(store, spool, retry_interval=3600)
    for n in range(5):
        recorder.record(make_receipt(n))
    assert store.calls == 1
    assert len(spooled_lines(spool)) == 5
    repair(broken_dir)
    assert recorder.flush() == 5
    # A successful replay proves the store is back.
    recorder.record(make_receipt(9))
    assert store.calls == 3
    assert store.inner.count() == 6
    store.inner.close()


def test_receipt_not_kept_when_the_spool_fails_too(tmp_path, broken_store, recorders):
    not_a_dir = tmp_path / "spool-dir"
    not_a_dir.write_text("")
    recorder = recorders(broken_store, not_a_dir / "spool.jsonl")
    with pytest.raises(ReceiptNotKeptError, match="could not be written") as info:
        recorder.record(make_receipt())
    assert isinstance(info.value, ConsentError)
    assert isinstance(info.value.__cause__, OSError)


def test_closed_recorder_keeps_nothing(tmp_path, recorders):
    store = SQLiteReceiptStore(tmp_path / "receipts.db")
    recorder = recorders(store, tmp_path / "spool.jsonl")
    recorder.close()
    with pytest.raises(ReceiptNotKeptError, match="closed"):
        recorder.record(make_receipt())
    store.close()


def test_spool_is_private(tmp_path, broken_store, recorders):
    spool = tmp_path / "spool.jsonl"
    recorders(broken_store, spool).record(make_receipt())
    assert stat.S_IMODE(spool.stat().st_mode) == 0o600


def test_unreadable_spool_lines_are_set_aside(
    tmp_path, broken_dir, broken_store, recorders
):
    spool = tmp_path / "spool.jsonl"
    receipts = [make_receipt(n) for n in range(3)]
    spool.write_text(
        receipts[0].to_json()
        + "\nnot json\n\n"
        + receipts[1].to_json()
        + "\n"
        + receipts[2].to_json()[:40]
    )
    recorder = recorders(broken_store, spool)
    # The last line was cut short by a crash; the next receipt still gets a
    # line of its own.
    recorder.record(receipts[2])
    repair(broken_dir)
    assert recorder.flush() == 3
    assert list(broken_store.iter_receipts()) == receipts
    rejected = (tmp_path / "spool.jsonl.rejected").read_text().splitlines()
    assert rejected == ["not json", receipts[2].to_json()[:40]]
    assert recorder.flush() == 0


def test_concurrent_records_are_all_spooled(
    tmp_path, broken_dir, broken_store, recorders
):
    spool = tmp_path / "spool.jsonl"
    recorder = recorders(broken_store, spool)
    receipts = [make_receipt(n) for n in range(120)]
    errors = []

    def record(chunk):
        try:
            for receipt in chunk:
                recorder.record(receipt)
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [
        threading.Thread(target=record, args=(receipts[i::6],)) for i in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    lines = spooled_lines(spool)
    assert sorted(lines) == sorted(r.to_json() for r in receipts)
    repair(broken_dir)
    assert recorder.flush() == 120
    assert broken_store.count() == 120


_WRITER = """
import sys, uuid
from datetime import datetime, timezone
from consent.receipts import DurableRecorder, Receipt, SQLiteReceiptStore

store = SQLiteReceiptStore(sys.argv[1], timeout=0.1)
recorder = DurableRecorder(store, sys.argv[2], background=False)
for n in range(int(sys.argv[3])):
    recorder.record(Receipt(
        receipt_id=uuid.uuid4().hex, consent_id=sys.argv[4],
        created_at=datetime.now(timezone.utc), revision="r1", texts_hash="h",
        choices=(("analytics", True),), method="banner", language="en",
        path="/", user_agent="", ip=None,
    ))
recorder.close()
store.close()
"""


def test_processes_can_share_a_spool(tmp_path, broken_dir, recorders):
    spool = tmp_path / "spool.jsonl"
    db = broken_dir / "receipts.db"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(db), str(spool), "40", f"p{n}"]
        )
        for n in range(3)
    ]
    for writer in writers:
        assert writer.wait(60) == 0
    lines = spooled_lines(spool)
    assert len(lines) == 120
    assert len({Receipt.from_json(line).receipt_id for line in lines}) == 120
    repair(broken_dir)
    store = SQLiteReceiptStore(db)
    assert recorders(store, spool).flush() == 120
    assert store.count() == 120
    assert len(store.for_consent_id("p1")) == 40
    store.close()


def test_logs_hold_no_ip_address(tmp_path, broken_dir, broken_store, recorders, caplog):
    caplog.set_level(logging.DEBUG, logger="consent")
    spool = tmp_path / "spool.jsonl"
    recorder = recorders(broken_store, spool)
    recorder.record(make_receipt(ip="198.51.100.0/24"))
    spool.write_text(spool.read_text() + "garbage 198.51.100.7\n")
    repair(broken_dir)
    recorder.flush()
    assert "spool" in caplog.text
    assert "198.51.100" not in caplog.text


def test_sqlite_store_closes_connections_of_finished_threads(tmp_path):
    store = SQLiteReceiptStore(tmp_path / "receipts.db")
    store.ping()

    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    before = open_fds()
    for n in range(30):
        # One short-lived thread per request, as a threaded server does.
        thread = threading.Thread(target=store.add, args=(make_receipt(n),))
        thread.start()
        thread.join(10)
    assert open_fds() - before < 10
    assert store.count() == 30
    store.close()


@pytest.mark.parametrize("count", [1, 50, 51, 1001])
def test_add_many_keeps_batches_of_every_size(store, count):
    # One multi-row statement up to 50 receipts, several in one transaction
    # beyond; receipts repeated within the batch are kept once.
    receipts = [make_receipt(n) for n in range(count)]
    store.add_many(receipts + receipts[: count // 2])
    assert store.count() == count
    assert store.get(receipts[-1].receipt_id) == receipts[-1]


@given(
    st.one_of(
        st.ip_addresses(v=4).map(lambda ip: (str(ip), 24)),
        st.ip_addresses(v=6)
        .filter(lambda ip: ip.ipv4_mapped is None)
        .map(lambda ip: (str(ip), 48)),
    )
)
def test_anonymize_ip_truncates_like_ip_network(ip_and_prefix):
    ip, prefix = ip_and_prefix
    expected = str(ipaddress.ip_network((ip, prefix), strict=False))
    assert anonymize_ip(ip, "truncate") == expected

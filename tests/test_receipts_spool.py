from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
import subprocess
import sys
import threading
import time

import pytest

from consent.exceptions import ConsentError
from consent.receipts import DurableRecorder
from consent.receipts import Receipt
from consent.receipts import ReceiptNotKeptError
from consent.receipts import ShownTexts
from consent.receipts import SQLiteReceiptStore
from tests.factories import T0
from tests.factories import receipt_n


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
    receipt = receipt_n()
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
    receipts = [receipt_n(n) for n in range(3)]
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
    receipts = [receipt_n(n) for n in range(4)]
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
    receipts = [receipt_n(n) for n in range(5)]
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
    receipts = [receipt_n(n) for n in range(3)]
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
    receipts = [receipt_n(n) for n in range(7)]
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
    receipts = [receipt_n(n) for n in range(6)]
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
    receipts = [receipt_n() for _ in range(40)]
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
    receipt = receipt_n()
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
        recorder.record(receipt_n(n))
    assert store.calls == 1
    assert len(spooled_lines(spool)) == 5
    repair(broken_dir)
    assert recorder.flush() == 5
    # A successful replay proves the store is back.
    recorder.record(receipt_n(9))
    assert store.calls == 3
    assert store.inner.count() == 6
    store.inner.close()


def test_receipt_not_kept_when_the_spool_fails_too(tmp_path, broken_store, recorders):
    not_a_dir = tmp_path / "spool-dir"
    not_a_dir.write_text("")
    recorder = recorders(broken_store, not_a_dir / "spool.jsonl")
    with pytest.raises(ReceiptNotKeptError, match="could not be written") as info:
        recorder.record(receipt_n())
    assert isinstance(info.value, ConsentError)
    assert isinstance(info.value.__cause__, OSError)


def test_closed_recorder_keeps_nothing(tmp_path, recorders):
    store = SQLiteReceiptStore(tmp_path / "receipts.db")
    recorder = recorders(store, tmp_path / "spool.jsonl")
    recorder.close()
    with pytest.raises(ReceiptNotKeptError, match="closed"):
        recorder.record(receipt_n())
    store.close()


def test_spool_is_private(tmp_path, broken_store, recorders):
    spool = tmp_path / "spool.jsonl"
    recorders(broken_store, spool).record(receipt_n())
    assert stat.S_IMODE(spool.stat().st_mode) == 0o600


def test_unreadable_spool_lines_are_set_aside(
    tmp_path, broken_dir, broken_store, recorders
):
    spool = tmp_path / "spool.jsonl"
    receipts = [receipt_n(n) for n in range(3)]
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
    receipts = [receipt_n(n) for n in range(120)]
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
    recorder.record(receipt_n(ip="198.51.100.0/24"))
    spool.write_text(spool.read_text() + "garbage 198.51.100.7\n")
    repair(broken_dir)
    recorder.flush()
    assert "spool" in caplog.text
    assert "198.51.100" not in caplog.text


def texts_version(n: int) -> ShownTexts:
    return ShownTexts.from_content({"texts": {"title": f"v{n}"}}, first_seen=T0)


def test_texts_go_to_the_store_once_before_their_receipts(tmp_path, recorders):
    store = RecordingStore(SQLiteReceiptStore(tmp_path / "receipts.db"))
    calls = []
    store.add_texts = lambda texts: (  # type: ignore[method-assign]
        calls.append([t.texts_hash for t in texts]),
        store.inner.add_texts(texts),
    )
    recorder = recorders(store, tmp_path / "spool.jsonl")
    texts = texts_version(1)
    for n in range(3):
        recorder.record(receipt_n(n, texts_hash=texts.texts_hash), texts)
    assert calls == [[texts.texts_hash]]
    assert store.inner.get_texts(texts.texts_hash) == texts
    assert store.inner.count() == 3
    store.inner.close()


def test_texts_travel_through_the_spool(tmp_path, broken_dir, broken_store, recorders):
    spool = tmp_path / "spool.jsonl"
    recorder = recorders(broken_store, spool)
    first, second = texts_version(1), texts_version(2)
    recorder.record(receipt_n(0, texts_hash=first.texts_hash), first)
    recorder.record(receipt_n(1, texts_hash=first.texts_hash), first)
    recorder.record(receipt_n(2, texts_hash=second.texts_hash), second)
    lines = spooled_lines(spool)
    kinds = [json.loads(line).get("kind", "receipt") for line in lines]
    # Each version once, on the line before the first receipt that names it.
    assert kinds == ["texts", "receipt", "receipt", "texts", "receipt"]
    repair(broken_dir)
    assert recorder.flush() == 3
    assert broken_store.get_texts(first.texts_hash) == first
    assert broken_store.get_texts(second.texts_hash) == second
    assert broken_store.count() == 3


def test_a_new_spool_file_gets_the_texts_again(
    tmp_path, broken_dir, broken_store, recorders
):
    # Another process may replay the spool (renaming it) while this one
    # still spools: the texts are written again to the new file.
    spool = tmp_path / "spool.jsonl"
    recorder = recorders(broken_store, spool)
    texts = texts_version(1)
    recorder.record(receipt_n(0, texts_hash=texts.texts_hash), texts)
    os.replace(spool, f"{spool}.replaying")
    recorder.record(receipt_n(1, texts_hash=texts.texts_hash), texts)
    with open(spool) as fresh:
        assert json.loads(fresh.readline())["kind"] == "texts"
    repair(broken_dir)
    other = recorders(broken_store, spool)
    assert other.flush() == 2
    assert broken_store.get_texts(texts.texts_hash) == texts


def test_spooled_texts_that_do_not_match_their_hash_are_set_aside(
    tmp_path, broken_dir, broken_store, recorders
):
    spool = tmp_path / "spool.jsonl"
    texts = texts_version(1)
    forged = texts.to_json().replace("v1", "v9")
    receipt = receipt_n(0, texts_hash=texts.texts_hash)
    spool.write_text(forged + "\n" + receipt.to_json() + "\n")
    repair(broken_dir)
    assert recorders(broken_store, spool).flush() == 1
    assert broken_store.get_texts(texts.texts_hash) is None
    rejected = (tmp_path / "spool.jsonl.rejected").read_text().splitlines()
    assert rejected == [forged]
    assert stat.S_IMODE((tmp_path / "spool.jsonl.rejected").stat().st_mode) == 0o600

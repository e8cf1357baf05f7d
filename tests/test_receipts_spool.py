from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
import typing as t

import pytest

from consent.exceptions import ConsentError
from consent.receipts import DurableRecorder
from consent.receipts import Receipt
from consent.receipts import ReceiptNotKeptError
from consent.receipts import ShownTexts
from consent.receipts import SQLiteReceiptStore
from consent.receipts import adopt_spool
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


def test_record_goes_to_the_spool_then_to_the_store(tmp_path, recorders):
    store = SQLiteReceiptStore(tmp_path / "receipts.db")
    spool = tmp_path / "spool.jsonl"
    recorder = recorders(store, spool, background=True)
    receipt = receipt_n()
    recorder.record(receipt)
    assert recorder.sync(10)
    assert store.get(receipt.receipt_id) == receipt
    recorder.close()
    # Everything it spooled is in the store: a clean stop leaves no file.
    assert [name for name in os.listdir(tmp_path) if "spool" in name] == []
    store.close()


class BlockedStore:
    """A SQLite store whose writes wait until the gate opens: a database
    that hangs."""

    def __init__(self, inner: SQLiteReceiptStore) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.calls = 0

    def add(self, receipt):
        self.add_many([receipt])

    def add_many(self, receipts):
        self.calls += 1
        self.gate.wait(30)
        self.inner.add_many(receipts)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_a_receipt_is_on_disk_when_record_returns(tmp_path, recorders):
    # The database hangs: record() does not wait for it, and what it
    # answered for is in the spool, whole lines, before it returns.
    store = BlockedStore(SQLiteReceiptStore(tmp_path / "receipts.db"))
    spool = tmp_path / "spool.jsonl"
    recorder = recorders(store, spool, background=True, timeout=0.2)
    receipts = [receipt_n(n) for n in range(5)]
    for receipt in receipts:
        recorder.record(receipt)
        assert receipt.to_json() in spooled_lines(spool)
    assert not recorder.sync(0.2)
    store.gate.set()
    assert recorder.sync(10)
    assert list(store.inner.iter_receipts()) == receipts
    store.inner.close()


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
    recorder = recorders(store, tmp_path / "spool.jsonl", background=True)
    receipts = [receipt_n() for _ in range(40)]
    threads = [threading.Thread(target=recorder.record, args=(r,)) for r in receipts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    # Every post was answered with the store held back; the first write
    # waits, and the others queue up behind it.
    assert len(spooled_lines(tmp_path / "spool.jsonl")) == 40
    store.gate.set()
    assert recorder.sync(10)
    assert store.count() == 40
    assert store.writes < 40
    store.inner.close()


def test_a_slow_store_does_not_slow_record(tmp_path, recorders):
    spool = tmp_path / "spool.jsonl"
    store = GatedStore(SQLiteReceiptStore(tmp_path / "receipts.db"))
    recorder = recorders(store, spool, background=True, timeout=0.2)
    receipt = receipt_n()
    recorder.record(receipt)
    # Answered while the store still holds the write.
    assert not store.done.is_set()
    assert spooled_lines(spool) == [receipt.to_json()]
    store.gate.set()
    assert store.done.wait(10)
    assert recorder.sync(10)
    assert store.count() == 1
    store.inner.close()


def test_record_never_calls_the_store_while_the_spool_works(
    tmp_path, broken_dir, recorders
):
    store = RecordingStore(SQLiteReceiptStore(broken_dir / "r.db", timeout=0.1))
    spool = tmp_path / "spool.jsonl"
    recorder = recorders(store, spool)
    for n in range(5):
        recorder.record(receipt_n(n))
    assert store.calls == 0
    assert len(spooled_lines(spool)) == 5
    repair(broken_dir)
    assert recorder.flush() == 5
    assert store.calls == 1
    assert store.inner.count() == 5
    store.inner.close()


def test_a_failing_store_is_left_alone_for_the_retry_interval(
    tmp_path, broken_dir, recorders
):
    store = RecordingStore(SQLiteReceiptStore(broken_dir / "r.db", timeout=0.1))
    spool = tmp_path / "spool.jsonl"
    recorder = recorders(store, spool, background=True, retry_interval=3600)
    recorder.record(receipt_n(0))
    deadline = time.monotonic() + 10
    while store.calls == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.calls == 1
    for n in range(1, 5):
        recorder.record(receipt_n(n))
    assert not recorder.sync(0.3)
    assert store.calls == 1
    assert len(spooled_lines(spool)) == 5
    repair(broken_dir)
    assert recorder.flush() == 5
    assert store.inner.count() == 5
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
    recorder = recorders(store, tmp_path / "spool.jsonl", background=True)
    texts = texts_version(1)
    for n in range(3):
        recorder.record(receipt_n(n, texts_hash=texts.texts_hash), texts)
        assert recorder.sync(10)
    assert calls == [[texts.texts_hash]]
    assert recorder.knows_texts(texts.texts_hash)
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


# Spools of dead processes: the owner lock and adoption.

_OWNER = """
import sys, time, uuid
from datetime import datetime, timezone
from consent.receipts import DurableRecorder, Receipt, SQLiteReceiptStore

store = SQLiteReceiptStore(sys.argv[1], timeout=0.1)
recorder = DurableRecorder(store, sys.argv[2], retry_interval=3600)
for n in range(int(sys.argv[3])):
    recorder.record(Receipt(
        receipt_id=uuid.uuid4().hex, consent_id="dead", created_at=datetime.now(
        timezone.utc), revision="r1", texts_hash="h", choices=(("analytics", True),),
        method="banner", language="en", path="/", user_agent="", ip=None,
    ))
print("recorded", flush=True)
time.sleep(120)
"""


@pytest.fixture
def owner_process(broken_dir):
    """Start a process that records ``count`` receipts into ``spool`` while
    its database is down, then waits (owning its spool) until killed."""
    started = []

    def start(spool, count):
        proc = subprocess.Popen(
            [sys.executable, "-c", _OWNER, str(broken_dir / "r.db"), str(spool)]
            + [str(count)],
            stdout=subprocess.PIPE,
        )
        started.append(proc)
        assert proc.stdout.readline() == b"recorded\n"
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()


def wait_for(condition, limit=20.0):
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_live_recorder_adopts_the_spool_of_a_killed_process(
    tmp_path, owner_process, recorders
):
    dead = tmp_path / "consent-spool-101.jsonl"
    victim = owner_process(dead, 7)
    store = SQLiteReceiptStore(tmp_path / "receipts.db")
    live = recorders(
        store, tmp_path / "consent-spool-202.jsonl", background=True, adopt_interval=0.1
    )
    # Alive, it owns its spool: nobody replays it.
    assert adopt_spool(store, dead) is None
    time.sleep(0.3)
    assert store.count() == 0
    assert len(spooled_lines(dead)) == 7
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    # Dead, its lock went with it: a live recorder replays its receipts and
    # removes its files, without anyone running flush.
    assert wait_for(lambda: store.count() == 7)
    assert len(store.for_consent_id("dead")) == 7
    assert wait_for(lambda: not list(tmp_path.glob("consent-spool-101.*")))
    live.close()
    store.close()


def test_adoption_at_start_and_once_between_adopters(tmp_path, recorders):
    # A spool left by a process that stopped during an outage: no process
    # owns it. Two adopters at once: each receipt is kept once, and only
    # one of them replays it.
    dead = tmp_path / "consent-spool-303.jsonl"
    broken = SQLiteReceiptStore(tmp_path / "missing" / "r.db", timeout=0.1)
    writer = recorders(broken, dead)
    receipts = [receipt_n(n) for n in range(50)]
    for receipt in receipts:
        writer.record(receipt)
    writer.close()
    store = SQLiteReceiptStore(tmp_path / "receipts.db")
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(adopt_spool(store, dead)))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results, key=lambda r: r or 0) in ([None, 50], [0, 50])
    assert list(store.iter_receipts()) == receipts
    # A recorder that starts finds nothing more to adopt.
    recorders(store, tmp_path / "consent-spool-404.jsonl", background=True)
    assert store.count() == 50
    store.close()


def test_a_recorder_that_starts_adopts_what_waits(tmp_path, recorders):
    dead = tmp_path / "consent-spool-505.jsonl"
    broken = SQLiteReceiptStore(tmp_path / "missing" / "r.db", timeout=0.1)
    writer = recorders(broken, dead)
    writer.record(receipt_n(0))
    writer.close()
    store = SQLiteReceiptStore(tmp_path / "receipts.db")
    # The interval is long: only the look at start can find it.
    recorders(
        store,
        tmp_path / "consent-spool-606.jsonl",
        background=True,
        adopt_interval=3600,
    )
    assert wait_for(lambda: store.count() == 1)
    store.close()


def test_a_reused_process_id_does_not_hide_a_dead_spool(tmp_path, recorders):
    # The spool is named after this very process (a dead process had its
    # id): the name says nothing, the free owner lock does.
    dead = tmp_path / f"consent-spool-{os.getpid()}.jsonl"
    broken = SQLiteReceiptStore(tmp_path / "missing" / "r.db", timeout=0.1)
    writer = recorders(broken, dead)
    writer.record(receipt_n(0))
    writer.close()
    store = SQLiteReceiptStore(tmp_path / "receipts.db")
    recorders(store, tmp_path / "consent-spool-1.jsonl", background=True)
    assert wait_for(lambda: store.count() == 1)
    store.close()


def test_adoption_waits_while_the_store_is_down(
    tmp_path, broken_dir, broken_store, recorders
):
    dead = tmp_path / "consent-spool-707.jsonl"
    writer = recorders(broken_store, dead)
    writer.record(receipt_n(0))
    writer.close()
    live = recorders(
        broken_store,
        tmp_path / "consent-spool-808.jsonl",
        background=True,
        adopt_interval=0.05,
    )
    time.sleep(0.3)
    assert len(spooled_lines(dead)) == 1
    repair(broken_dir)
    assert wait_for(lambda: broken_store.count() == 1)
    live.close()


def test_an_erased_receipt_does_not_come_back_from_memory(tmp_path, recorders):
    # A receipt answered, waiting for the shipper, when another process
    # takes the spool to replay it and erases the visitor's receipts (the
    # `erase` command): the shipper must not write it again afterwards.
    store = SQLiteReceiptStore(tmp_path / "receipts.db")
    spool = tmp_path / "spool.jsonl"
    live = recorders(store, spool, background=True)
    # Hold the shipper back, as a store that failed a moment ago does.
    live._skip_store_until = time.monotonic() + 3600
    receipt = receipt_n(0, consent_id="erase-me")
    live.record(receipt)
    other = recorders(store, spool)
    assert other.flush() == 1
    assert store.erase("erase-me") == 1
    live._skip_store_until = 0.0
    assert live.sync(10)
    assert store.for_consent_id("erase-me") == []
    # Receipts recorded after the replay go to the store as usual.
    later = receipt_n(1)
    live.record(later)
    assert live.sync(10)
    assert store.get(later.receipt_id) == later
    store.close()


_TAKER = """
import sys, time
from consent.receipts import DurableRecorder, SQLiteReceiptStore

store = SQLiteReceiptStore(sys.argv[1])
deadline = time.monotonic() + float(sys.argv[3])
taken = 0
while time.monotonic() < deadline:
    recorder = DurableRecorder(store, sys.argv[2], background=False, timeout=10)
    taken += recorder.flush()
    recorder.close()
    time.sleep(0.02)
print(taken)
store.close()
"""


@contextlib.contextmanager
def recording(
    live: DurableRecorder, consent_ids: list[str], *, pause: float = 0.0
) -> t.Iterator[tuple[list[str], list[Exception]]]:
    """A thread per consent id recording receipts with ``live`` until the
    block ends; yields the ids of the receipts recorded and the errors met."""
    recorded: list[str] = []
    errors: list[Exception] = []
    stop = threading.Event()

    def record(consent_id: str) -> None:
        count = 0
        try:
            while not stop.is_set() and count < 100_000:
                receipt = receipt_n(count, consent_id=consent_id)
                count += 1
                live.record(receipt)
                recorded.append(receipt.receipt_id)
                time.sleep(pause)
        except Exception as err:  # pragma: no cover - reported by the caller
            errors.append(err)

    threads = [threading.Thread(target=record, args=(c,)) for c in consent_ids]
    for thread in threads:
        thread.start()
    try:
        yield recorded, errors
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)


def test_receipts_appended_while_another_process_takes_the_spool_are_kept(
    tmp_path, recorders
):
    # The live owner appends without checking, write by write, that its
    # spool is still at its path; another process (`consent receipts
    # flush`) keeps taking the spool aside. The taker reads a file only once
    # the owner let it go: nothing appended to it meanwhile is lost.
    store = SQLiteReceiptStore(tmp_path / "receipts.db")
    spool = tmp_path / "spool.jsonl"
    live = recorders(store, spool, background=True)
    # Everything stays in the spool for the taker, as during an outage.
    live._skip_store_until = time.monotonic() + 3600
    taker = subprocess.Popen(
        [sys.executable, "-c", _TAKER, str(tmp_path / "receipts.db"), str(spool), "3"],
        stdout=subprocess.PIPE,
        text=True,
    )
    with recording(live, [f"thread-{n}" for n in range(4)]) as (recorded, errors):
        time.sleep(2.5)
    out, _ = taker.communicate(timeout=60)
    assert taker.returncode == 0
    assert errors == []
    assert int(out) > 0  # the taker did take receipts away
    live._skip_store_until = 0.0
    assert live.sync(10)
    recorders(store, spool).flush()
    kept = {receipt.receipt_id for receipt in store.iter_receipts()}
    assert set(recorded) <= kept
    assert store.count() == len(set(recorded))
    store.close()


def test_a_spool_its_owner_does_not_let_go_is_replayed_and_kept(
    tmp_path, broken_dir, broken_store, recorders, caplog
):
    import fcntl

    spool = tmp_path / "spool.jsonl"
    writer = recorders(broken_store, spool)
    writer.record(receipt_n(0))
    # A live owner that does not answer: it holds its shared lock.
    stuck = os.open(spool, os.O_RDONLY)
    fcntl.flock(stuck, fcntl.LOCK_SH)
    repair(broken_dir)
    taker = recorders(broken_store, spool, timeout=0.2)
    try:
        assert taker.flush() == 1
        assert "did not let it go" in caplog.text
        assert broken_store.count() == 1
        # Kept for the next replay; meanwhile the spool is not taken aside
        # onto it.
        assert os.path.exists(f"{spool}.replaying")
        writer.record(receipt_n(1))
        taker.flush()
        assert os.path.exists(f"{spool}.replaying")
        assert os.path.exists(spool)
    finally:
        os.close(stuck)
    taker.flush()
    assert not os.path.exists(f"{spool}.replaying")
    assert not os.path.exists(spool)
    assert broken_store.count() == 2


def test_taking_the_spool_of_a_busy_owner_does_not_wait_its_timeout(
    tmp_path, recorders
):
    # The owner's shipper writes to the store every 50 ms, each time under
    # the spool's replay lock; a process taking the spool aside holds that
    # lock while it waits for the owner to let the file go. The owner lets
    # go while it waits for the lock, so neither waits for the other's
    # timeout.
    store = SQLiteReceiptStore(tmp_path / "receipts.db")
    spool = tmp_path / "spool.jsonl"
    live = recorders(store, spool, background=True)
    durations = []
    with recording(live, ["busy"], pause=0.002) as (recorded, errors):
        for _ in range(6):
            taker = recorders(store, spool, timeout=5)
            started = time.monotonic()
            taker.flush()
            durations.append(time.monotonic() - started)
            time.sleep(0.1)
    assert errors == []
    assert max(durations) < 2.5, durations
    assert live.sync(10)
    recorders(store, spool).flush()
    assert not os.path.exists(f"{spool}.replaying")
    assert {r.receipt_id for r in store.iter_receipts()} == set(recorded)
    store.close()

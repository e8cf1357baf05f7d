from __future__ import annotations

import os
import subprocess
import time
import uuid
from datetime import date
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import psycopg
import pytest
import sqlalchemy as sa

from consent.receipts import SCHEMA_VERSION
from consent.receipts import DailyRate
from consent.receipts import DurableRecorder
from consent.receipts import Receipt
from consent.receipts import SQLReceiptStore
from consent.receipts import open_store
from tests.conftest import PG_URL
from tests.conftest import wait_for_postgres

pytestmark = pytest.mark.postgres

# Nothing listens on port 1: connections are refused at once.
DOWN_URL = "postgresql+psycopg://postgres@127.0.0.1:1/test"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


def make_receipt(
    n: int = 0,
    *,
    consent_id: str = "visitor-1",
    at: datetime | None = None,
    choices: dict[str, bool] | None = None,
    method: str = "banner",
) -> Receipt:
    return Receipt(
        receipt_id=uuid.uuid4().hex,
        consent_id=consent_id,
        created_at=T0 + timedelta(minutes=n) if at is None else at,
        revision="r1",
        texts_hash="ab" * 32,
        choices=tuple((choices or {"analytics": n % 2 == 0, "maps": True}).items()),
        method=method,
        language="de",
        path="/besuch",
        user_agent="Mozilla/5.0",
        ip="2001:db8:1234::/48",
    )


@pytest.fixture
def pg_schema():
    """A schema of its own, so that runs in parallel do not meet."""
    wait_for_postgres()
    name = f"consent_test_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {name}"))
    yield name
    wait_for_postgres()
    engine.dispose()
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {name} CASCADE"))
    engine.dispose()


@pytest.fixture
def store(pg_schema):
    store = SQLReceiptStore(PG_URL, schema=pg_schema)
    yield store
    store.close()


def rows_in(schema: str) -> list[str]:
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test") as c:
        return [
            row[0]
            for row in c.execute(f"SELECT receipt_id FROM {schema}.consent_receipts")
        ]


def test_tables_are_created_in_the_schema(store, pg_schema):
    store.ping()
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test") as c:
        tables = {
            row[0]
            for row in c.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = %s",
                (pg_schema,),
            )
        }
        versions = c.execute(
            f"SELECT version FROM {pg_schema}.consent_schema_version"
        ).fetchall()
        indexes = {
            row[0]
            for row in c.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = %s", (pg_schema,)
            )
        }
        created_at = c.execute(
            "SELECT data_type FROM information_schema.columns WHERE table_schema = %s"
            " AND table_name = 'consent_receipts' AND column_name = 'created_at'",
            (pg_schema,),
        ).fetchone()
    assert tables == {"consent_receipts", "consent_schema_version"}
    assert versions == [(SCHEMA_VERSION,)]
    assert {
        "ix_consent_receipts_consent_id",
        "ix_consent_receipts_created_at",
    } <= indexes
    assert created_at == ("timestamp with time zone",)


def test_a_second_store_on_the_same_tables_adds_no_version_row(store, pg_schema):
    store.ping()
    again = SQLReceiptStore(PG_URL, schema=pg_schema)
    again.ping()
    again.close()
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test") as c:
        count = c.execute(
            f"SELECT COUNT(*) FROM {pg_schema}.consent_schema_version"
        ).fetchone()
    assert count == (1,)


def test_stats_counts_days_in_utc(pg_schema):
    # The session time zone must not move receipts to another day.
    engine = sa.create_engine(
        PG_URL, connect_args={"options": "-c timezone=Pacific/Kiritimati"}
    )
    store = SQLReceiptStore(engine, schema=pg_schema)
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
    assert stats.daily == (
        DailyRate(date(2025, 3, 1), "analytics", granted=2, total=3),
        DailyRate(date(2025, 3, 1), "maps", granted=3, total=3),
        DailyRate(date(2025, 3, 2), "analytics", granted=1, total=2),
        DailyRate(date(2025, 3, 2), "maps", granted=0, total=1),
    )
    assert store.stats(since=day2).total == 2
    assert store.get(store.for_consent_id("visitor-1")[0].receipt_id) is not None
    store.close()
    # The engine belongs to the caller, who disposes of it.
    engine.dispose()


def test_open_store_uses_sqlalchemy_for_postgresql(tmp_path):
    store = open_store(PG_URL, instance_path=str(tmp_path))
    assert isinstance(store, SQLReceiptStore)
    assert store.engine.dialect.name == "postgresql"
    store.close()


def test_unreachable_server_fails_fast_and_spools(tmp_path, pg_schema):
    down = SQLReceiptStore(DOWN_URL, timeout=1.0)
    started = time.monotonic()
    with pytest.raises(sa.exc.OperationalError):
        down.ping()
    assert time.monotonic() - started < 5
    spool = tmp_path / "spool.jsonl"
    recorder = DurableRecorder(down, spool, timeout=2.0, background=False)
    receipts = [make_receipt(n) for n in range(3)]
    for receipt in receipts:
        recorder.record(receipt)
    recorder.close()
    down.close()
    assert len(spool.read_text().splitlines()) == 3
    # The same spool, replayed into the live server by another recorder.
    store = SQLReceiptStore(PG_URL, schema=pg_schema)
    flusher = DurableRecorder(store, spool, background=False)
    assert flusher.flush() == 3
    assert flusher.flush() == 0
    assert list(store.iter_receipts()) == receipts
    flusher.close()
    store.close()


def pg_ctl(*args: str) -> None:
    (version,) = os.listdir("/etc/postgresql")
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", *args],
        check=True,
        timeout=60,
        capture_output=True,
    )


def is_ready() -> bool:
    ready = subprocess.run(
        ["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"], check=False
    )
    return ready.returncode == 0


def spooled(spool) -> int:
    count = 0
    for path in (f"{spool}.replaying", str(spool)):
        if os.path.exists(path):
            with open(path) as lines:
                count += sum(1 for line in lines if line.strip())
    return count


def test_receipts_survive_a_server_restart(tmp_path, pg_schema):
    store = SQLReceiptStore(PG_URL, schema=pg_schema, timeout=2.0)
    spool = tmp_path / "consent-spool.jsonl"
    recorder = DurableRecorder(store, spool, timeout=2.0, retry_interval=0.2)
    receipts = [make_receipt(n, consent_id=f"visitor-{n % 7}") for n in range(60)]
    started = time.monotonic()
    try:
        for receipt in receipts[:20]:
            recorder.record(receipt)
        assert store.count() == 20
        pg_ctl("stop", "-m", "fast")
        try:
            for receipt in receipts[20:40]:
                recorder.record(receipt)
            # While the server is down, the receipts wait in the spool.
            assert spooled(spool) == 20
        finally:
            if not is_ready():
                pg_ctl("start")
            wait_for_postgres()
        for receipt in receipts[40:]:
            recorder.record(receipt)
        recorder.flush()
        assert recorder.flush() == 0
        assert spooled(spool) == 0
    finally:
        recorder.close()
        store.close()
    elapsed = time.monotonic() - started
    kept = rows_in(pg_schema)
    assert len(kept) == 60
    assert sorted(kept) == sorted(r.receipt_id for r in receipts)
    check = SQLReceiptStore(PG_URL, schema=pg_schema)
    assert list(check.iter_receipts(batch_size=7)) == receipts
    check.close()
    assert elapsed < 30


def test_a_broken_write_connection_is_replaced(store, pg_schema):
    # Writes keep one connection open between them; when the server drops
    # it, that write fails (the recorder spools it) and the next one opens
    # a fresh connection.
    first, lost, third = make_receipt(0), make_receipt(1), make_receipt(2)
    store.add(first)
    with psycopg.connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True
    ) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE pid <> pg_backend_pid() AND datname = 'test'"
            " AND query LIKE %s",
            (f"%{pg_schema}.consent_receipts%",),
        )
    with pytest.raises(sa.exc.DBAPIError):
        store.add(lost)
    store.add(third)
    assert sorted(rows_in(pg_schema)) == sorted([first.receipt_id, third.receipt_id])


def visitor_text_receipt(n: int, *, ip: str | None) -> Receipt:
    return Receipt(
        receipt_id=uuid.uuid4().hex,
        consent_id="visitor-9",
        created_at=datetime(2025, 3, 1, 13, 30, 15, 123456, tzinfo=timezone.utc),
        revision="r1",
        texts_hash="ab" * 32,
        choices=(("analytics", n % 2 == 0), ("maps", True)),
        method="preferences",
        language="zh-Hant",
        path="/文章/%E4%B8%AD",
        user_agent="Mozilla/5.0 (X11; Linux x86_64) 'quoted' \"double\" $1 %s",
        ip=ip,
    )


@pytest.mark.parametrize("prepare_threshold", [5, None])
def test_receipts_written_in_one_statement_read_back_exactly(
    pg_schema, prepare_threshold
):
    # Small batches go in one statement on a kept-open connection; what
    # comes back is what went in: text outside ASCII, quotes and placeholder
    # look-alikes, a missing IP, microseconds in UTC. With prepared
    # statements turned off (PgBouncer in transaction mode), the same.
    engine = sa.create_engine(
        PG_URL, connect_args={"prepare_threshold": prepare_threshold}
    )
    store = SQLReceiptStore(engine, schema=pg_schema)
    try:
        written = [
            visitor_text_receipt(n, ip=None if n else "2001:db8::/48") for n in range(3)
        ]
        store.add(written[0])
        store.add_many(written[1:])
        store.add_many(written)  # again: kept once
        assert store.for_consent_id("visitor-9") == sorted(
            written, key=lambda r: (r.created_at, r.receipt_id)
        )
    finally:
        store.close()
        engine.dispose()


def test_a_failed_write_raises_the_sqlalchemy_error_of_its_sqlstate(store, pg_schema):
    store.add(make_receipt(0))
    with psycopg.connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True
    ) as admin:
        admin.execute(f"DROP TABLE {pg_schema}.consent_receipts")
    with pytest.raises(sa.exc.ProgrammingError) as caught:
        store.add(make_receipt(1))
    assert isinstance(caught.value.orig, psycopg.errors.UndefinedTable)

"""PostgreSQL specifics: the layout, the schema and options, the one-call
fast path, and outages, made with a proxy of the test's own (never by
stopping the shared server)."""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import date
from datetime import datetime
from datetime import timezone

import psycopg
import pytest
import sqlalchemy as sa

from consent.receipts import SCHEMA_VERSION
from consent.receipts import DailyRate
from consent.receipts import DurableRecorder
from consent.receipts import Receipt
from consent.receipts import ReceiptKeeper
from consent.receipts import ShownTexts
from consent.receipts import SQLReceiptStore
from consent.receipts import open_store
from tests.conftest import PG_URL
from tests.factories import T0
from tests.factories import receipt_n

pytestmark = pytest.mark.postgres

ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test"


def make_receipt(n: int = 0, **fields) -> Receipt:
    fields.setdefault("ip", "2001:db8:1234::/48")
    return receipt_n(n, **fields)


@pytest.fixture
def store(pg_schema):
    store = SQLReceiptStore(PG_URL, schema=pg_schema)
    yield store
    store.close()


def rows_in(schema: str) -> list[str]:
    with psycopg.connect(ADMIN) as c:
        return [
            row[0]
            for row in c.execute(f"SELECT receipt_id FROM {schema}.consent_receipts")
        ]


def test_tables_are_created_in_the_schema(store, pg_schema):
    store.ping()
    with psycopg.connect(ADMIN) as c:
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
    assert tables == {"consent_receipts", "consent_schema_version", "consent_texts"}
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
    with psycopg.connect(ADMIN) as c:
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
    store = open_store(PG_URL, folder=tmp_path)
    assert isinstance(store, SQLReceiptStore)
    assert store.engine.dialect.name == "postgresql"
    store.close()


def spooled(spool, kind: str = "receipt") -> int:
    """How many receipts (or texts) wait in a spool, or in its replay."""
    count = 0
    for path in (f"{spool}.replaying", str(spool)):
        if os.path.exists(path):
            with open(path) as lines:
                count += sum(
                    1
                    for line in lines
                    if line.strip() and json.loads(line).get("kind", "receipt") == kind
                )
    return count


def spooled_ids(spool) -> set[str]:
    """The ids of the receipts in a spool, or in its replay."""
    ids = set()
    for path in (f"{spool}.replaying", str(spool)):
        if os.path.exists(path):
            with open(path) as lines:
                for line in lines:
                    data = json.loads(line) if line.strip() else {}
                    if "receipt_id" in data:
                        ids.add(data["receipt_id"])
    return ids


def test_a_cut_server_fails_fast_and_spools(tmp_path, pg_schema, pg_proxy):
    pg_proxy.cut()
    down = SQLReceiptStore(pg_proxy.url(), schema=pg_schema, timeout=1.0)
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
    assert spooled(spool) == 3
    # The same spool, replayed into the live server by another recorder.
    store = SQLReceiptStore(PG_URL, schema=pg_schema)
    flusher = DurableRecorder(store, spool, background=False)
    assert flusher.flush() == 3
    assert flusher.flush() == 0
    assert list(store.iter_receipts()) == receipts
    flusher.close()
    store.close()


def test_receipts_survive_an_outage(tmp_path, pg_schema, pg_proxy):
    store = SQLReceiptStore(pg_proxy.url(), schema=pg_schema, timeout=2.0)
    spool = tmp_path / "consent-spool.jsonl"
    recorder = DurableRecorder(store, spool, timeout=2.0, retry_interval=0.2)
    texts = ShownTexts.from_content({"texts": {"title": "Cookies"}}, first_seen=T0)
    receipts = [
        make_receipt(n, consent_id=f"visitor-{n % 7}", texts_hash=texts.texts_hash)
        for n in range(60)
    ]
    try:
        for receipt in receipts[:20]:
            recorder.record(receipt)
        assert recorder.sync(10)
        assert store.count() == 20
        pg_proxy.cut()
        for receipt in receipts[20:40]:
            # The texts are new to the store: they wait in the spool too.
            recorder.record(receipt, texts)
        # While the server is cut off, every answered receipt is in the
        # spool, and the texts with them.
        assert {r.receipt_id for r in receipts[20:40]} <= spooled_ids(spool)
        assert spooled(spool, "texts") >= 1
        assert not recorder.sync(0.5)
        pg_proxy.restore()
        for receipt in receipts[40:]:
            recorder.record(receipt, texts)
        # Back: the spool is replayed, and new receipts follow, with no
        # command run.
        assert recorder.sync(30)
    finally:
        recorder.close()
        store.close()
    # Everything is in the database: a clean stop left no spool.
    assert spooled(spool) == 0
    kept = rows_in(pg_schema)
    assert len(kept) == 60
    assert sorted(kept) == sorted(r.receipt_id for r in receipts)
    check = SQLReceiptStore(PG_URL, schema=pg_schema)
    assert list(check.iter_receipts(batch_size=7)) == receipts
    assert check.get_texts(texts.texts_hash) == texts
    check.close()


def test_a_broken_write_connection_is_replaced(pg_schema, pg_proxy):
    # Writes keep one connection open between them. While the server is
    # away, a write fails (the recorder spools it); once it is back, the
    # dead connection is replaced, and the write goes through at once.
    store = SQLReceiptStore(pg_proxy.url(), schema=pg_schema)
    first, lost, third = make_receipt(0), make_receipt(1), make_receipt(2)
    try:
        store.add(first)
        pg_proxy.cut()
        with pytest.raises(sa.exc.DBAPIError):
            store.add(lost)
        pg_proxy.restore()
        store.add(third)
        # Cut and back before the next write: the kept connection is dead,
        # and the write is tried again on a fresh one rather than failing.
        pg_proxy.cut()
        pg_proxy.restore()
        store.add(lost)
    finally:
        store.close()
    assert sorted(rows_in(pg_schema)) == sorted(
        r.receipt_id for r in (first, lost, third)
    )
    assert pg_proxy.connections >= 3


def test_the_urls_options_are_kept_with_the_timeout(pg_schema):
    # A search_path in the URL's options puts the tables in that schema,
    # and the statement timeout is added to it, not put in its place.
    url = f"{PG_URL}?options=-c%20search_path%3D{pg_schema}"
    store = SQLReceiptStore(url, timeout=1.5)
    try:
        store.add(make_receipt(0))
        with store.engine.connect() as conn:
            path = conn.execute(sa.text("SHOW search_path")).scalar_one()
            timeout = conn.execute(sa.text("SHOW statement_timeout")).scalar_one()
    finally:
        store.close()
    assert path == pg_schema
    assert timeout == "1500ms"
    assert len(rows_in(pg_schema)) == 1


def test_the_users_own_statement_timeout_wins(pg_schema):
    url = f"{PG_URL}?options=-c%20statement_timeout%3D7s"
    store = SQLReceiptStore(url, schema=pg_schema, timeout=1.0)
    try:
        with store.engine.connect() as conn:
            timeout = conn.execute(sa.text("SHOW statement_timeout")).scalar_one()
    finally:
        store.close()
    assert timeout == "7s"


def test_the_keeper_puts_its_tables_in_the_schema_setting(pg_schema, tmp_path, policy):
    keeper = ReceiptKeeper.from_config(
        policy,
        {"CONSENT_RECEIPTS_URL": PG_URL, "CONSENT_RECEIPTS_SCHEMA": pg_schema},
        folder=tmp_path,
    )
    try:
        store = keeper.store()
        store.add(make_receipt(0))
    finally:
        keeper.close()
    assert len(rows_in(pg_schema)) == 1


def test_the_keeper_takes_an_engine_and_leaves_it_open(pg_schema, tmp_path, policy):
    engine = sa.create_engine(PG_URL)
    pool = engine.pool
    keeper = ReceiptKeeper(policy, url=engine, folder=tmp_path, schema=pg_schema)
    try:
        keeper.store().add(make_receipt(0))
    finally:
        keeper.close()
    assert engine.pool is pool
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    engine.dispose()
    assert len(rows_in(pg_schema)) == 1


def test_stores_of_two_schemas_can_share_an_engine(tmp_path):
    # Statements prepared on a shared connection name their table, so one
    # schema's store never writes into the other's.
    engine = sa.create_engine(PG_URL)
    admin = psycopg.connect(ADMIN, autocommit=True)
    names = [f"consent_test_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    try:
        for name in names:
            admin.execute(f"CREATE SCHEMA {name}")
        stores = [SQLReceiptStore(engine, schema=name) for name in names]
        for n in range(4):
            stores[n % 2].add(make_receipt(n))
        for one in stores:
            one.close()
        assert [len(rows_in(name)) for name in names] == [2, 2]
    finally:
        engine.dispose()
        for name in names:
            admin.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        admin.close()


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

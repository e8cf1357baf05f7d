from __future__ import annotations

import pytest
import sqlalchemy as sa

from consent.exceptions import ConfigurationError
from consent.receipts import SQLiteReceiptStore
from consent.receipts import SQLReceiptStore
from consent.receipts import open_store
from consent.receipts.urls import check_url
from tests.factories import receipt_n
from tests.isolated import run_isolated


def test_open_store_none():
    assert open_store(None, folder="/nonexistent") is None


def test_open_store_sqlite_default(tmp_path):
    instance = tmp_path / "instance"
    store = open_store("sqlite", folder=str(instance))
    assert isinstance(store, SQLiteReceiptStore)
    assert store.path == str(instance / "consent-receipts.db")
    store.add(receipt_n())
    store.close()
    assert (instance / "consent-receipts.db").is_file()


def test_open_store_relative_sqlite_is_in_the_instance_folder(tmp_path):
    store = open_store("sqlite:///proof.db", folder=str(tmp_path / "inst"))
    assert isinstance(store, SQLiteReceiptStore)
    assert store.path == str(tmp_path / "inst" / "proof.db")
    store.close()


def test_open_store_absolute_sqlite(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/abs.db", folder="/nonexistent")
    assert isinstance(store, SQLiteReceiptStore)
    assert store.path == f"{tmp_path}/abs.db"
    store.close()


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///:memory:", "sqlite+pysqlite://"]
)
def test_open_store_refuses_memory_databases(url, tmp_path):
    with pytest.raises(ConfigurationError, match="in-memory"):
        open_store(url, folder=str(tmp_path))


def test_open_store_other_urls_use_sqlalchemy(tmp_path):
    store = open_store(f"sqlite+pysqlite:///{tmp_path}/sa.db", folder=str(tmp_path))
    assert isinstance(store, SQLReceiptStore)
    store.add(receipt_n())
    assert store.count() == 1
    store.close()


@pytest.mark.parametrize(
    "blocked, expected",
    [
        ("sqlalchemy", 'needs SQLAlchemy: pip install "cookie-consent[sql]"'),
        ("psycopg", "driver for 'postgresql+psycopg' is not installed: pip install"),
    ],
)
def test_a_missing_extra_is_found_before_connecting(tmp_path, blocked, expected):
    result = run_isolated(
        f"""
        from consent.exceptions import ConfigurationError
        from consent.receipts.urls import check_url, open_store
        url = "postgresql+psycopg://nobody@127.0.0.1:1/none"
        for attempt in (check_url, open_store):
            try:
                attempt(url, folder={str(tmp_path)!r})
            except ConfigurationError as err:
                print(err)
        """,
        blocked=(blocked,),
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert all(expected in line for line in lines), lines


def test_open_store_refuses_a_bad_url(tmp_path):
    with pytest.raises(ConfigurationError, match="not a database URL"):
        open_store("not a url", folder=str(tmp_path))


def test_open_store_takes_an_engine_and_leaves_it_open(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'engine.db'}")
    pool = engine.pool
    store = open_store(engine, folder="/nonexistent")
    assert isinstance(store, SQLReceiptStore)
    assert store.engine is engine
    store.add(receipt_n())
    store.close()
    assert engine.pool is pool
    engine.dispose()


@pytest.mark.parametrize("url", ["sqlite", "sqlite:///r.db", "sqlite+pysqlite:///r.db"])
def test_a_schema_is_refused_on_sqlite(tmp_path, url):
    with pytest.raises(ConfigurationError, match="schema"):
        check_url(url, folder=tmp_path, schema="consent")
    with pytest.raises(ConfigurationError, match="schema"):
        open_store(url, folder=tmp_path, schema="consent")


def test_check_url_opens_nothing(tmp_path):
    folder = tmp_path / "not-yet"
    check_url("sqlite", folder=folder)
    check_url(f"sqlite:///{tmp_path}/x.db", folder=folder)
    check_url("postgresql+psycopg://nobody@127.0.0.1:1/none", folder=folder)
    check_url(None, folder=folder)
    assert not folder.exists()
    assert not (tmp_path / "x.db").exists()

"""``consent receipts ...``: the receipts commands without an app."""

from __future__ import annotations

import json
import typing as t
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from consent.cli import main
from consent.receipts import DurableRecorder
from consent.receipts import Receipt
from consent.receipts import ShownTexts
from consent.receipts import SQLiteReceiptStore
from consent.receipts import open_store
from tests.conftest import PG_URL
from tests.factories import T0
from tests.factories import receipt_n


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A receipts folder with a database of five receipts and their texts."""
    store = SQLiteReceiptStore(tmp_path / "consent-receipts.db")
    texts = ShownTexts.from_content(
        {
            "texts": {"banner.title": "We use cookies", "button.accept_all": "OK"},
            "declarations": [{"key": "necessary"}, {"key": "analytics"}],
            "library": "0.1.0",
        },
        first_seen=T0,
    )
    store.add_texts([texts])
    store.add_many(
        receipt_n(
            n * 60 * 24,
            consent_id="visitor-1" if n < 3 else "visitor-2",
            choices={"zeta": n % 2 == 0, "alpha": True},
            texts_hash=texts.texts_hash,
        )
        for n in range(5)
    )
    store.close()
    return tmp_path


def run(*args: str, **kwargs: t.Any) -> t.Any:
    return CliRunner().invoke(main, ["receipts", *args], **kwargs)


def test_show_prints_receipts_and_what_was_shown(folder: Path) -> None:
    result = run("show", "visitor-1", "--url", "sqlite", "--folder", str(folder))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("3 receipts for consent id visitor-1, oldest")
    assert result.output.count("texts       2 texts and 2 categories, library") == 3
    assert "first seen 2025-03-01 12:00:00 UTC" in result.output
    assert "We use cookies" not in result.output
    dumped = run(
        "show", "visitor-1", "--url", "sqlite", "--folder", str(folder), "--texts"
    )
    # Each version once, in full.
    assert dumped.output.count('"banner.title": "We use cookies"') == 1


def test_show_as_json_lines_with_the_texts(folder: Path) -> None:
    result = run(
        "show",
        "visitor-2",
        "--format",
        "jsonl",
        "--texts",
        "--url",
        "sqlite",
        "--folder",
        str(folder),
    )
    assert result.exit_code == 0, result.output
    first, *receipts = result.output.splitlines()
    texts = ShownTexts.from_json(first)
    assert texts.content()["texts"]["button.accept_all"] == "OK"
    assert [Receipt.from_json(line).consent_id for line in receipts] == [
        "visitor-2"
    ] * 2
    assert all(Receipt.from_json(r).texts_hash == texts.texts_hash for r in receipts)


def test_the_url_can_come_from_the_environment(folder: Path) -> None:
    result = run(
        "receipt",
        "0" * 32,
        "--folder",
        str(folder),
        env={"CONSENT_RECEIPTS_URL": f"sqlite:///{folder}/consent-receipts.db"},
    )
    assert result.exit_code == 1
    assert "No receipt has the id 00000000000000000000000000000000." in result.output


def test_a_missing_url_or_database_is_said_plainly(tmp_path: Path) -> None:
    missing = run("stats", env={"CONSENT_RECEIPTS_URL": None})
    assert missing.exit_code == 2
    assert "Missing option '--url'" in missing.output
    nowhere = run("stats", "--url", "sqlite", "--folder", str(tmp_path))
    assert nowhere.exit_code == 1
    assert f"There is no receipts database at {tmp_path}" in nowhere.output
    # Nothing was created by looking.
    assert list(tmp_path.iterdir()) == []
    memory = run("stats", "--url", "sqlite:///:memory:")
    assert memory.exit_code == 1
    assert "in-memory" in memory.output
    assert "Traceback" not in memory.output + nowhere.output


def test_stats_without_a_policy_sorts_the_keys(folder: Path) -> None:
    result = run("stats", "--url", "sqlite", "--folder", str(folder))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Receipts (all time): 5"
    rates = lines[lines.index("Opt-in rate") + 1 :]
    assert rates == ["  alpha        100.0%  5 of 5", "  zeta          60.0%  3 of 5"]


def test_export_erase_and_purge(folder: Path) -> None:
    where = ["--url", "sqlite", "--folder", str(folder)]
    exported = run("export", "--format", "jsonl", "--since", "2025-03-02", *where)
    assert len(exported.output.splitlines()) == 4
    erased = run("erase", "visitor-2", "--yes", *where)
    assert erased.output == "Erased 2 receipts of consent id visitor-2.\n"
    # A short retention: the receipts of March 2025 are past it.
    purged = run("purge", "--retention-days", "30", *where)
    assert purged.exit_code == 0, purged.output
    assert purged.output.startswith("Purged 3 receipts made before ")
    assert run("export", *where).stdout_bytes.count(b"\r\n") == 1  # the header


def test_flush_replays_spools_into_a_new_database(tmp_path: Path) -> None:
    spools = tmp_path / "spools"
    spools.mkdir()
    receipts = [receipt_n(n) for n in range(3)]
    (spools / "consent-spool-77.jsonl").write_text(
        "".join(r.to_json() + "\n" for r in receipts)
    )
    db = tmp_path / "db" / "receipts.db"
    db.parent.mkdir()
    result = run("flush", "--url", f"sqlite:///{db}", "--spool-dir", str(spools))
    assert result.exit_code == 0, result.output
    assert result.output.endswith("Replayed 3 spooled receipts.\n")
    store = SQLiteReceiptStore(db)
    assert list(store.iter_receipts()) == receipts
    store.close()


def test_purge_asks_before_cutting_into_the_retention(folder: Path) -> None:
    where = ["--url", "sqlite", "--folder", str(folder)]
    later = (T0 + timedelta(days=3)).date().isoformat()
    refused = run("purge", "--before", later, *where, input="n\n")
    assert refused.exit_code == 1
    assert "within the retention period (1095 days)" in refused.output


def test_receipt_help_names_the_right_id() -> None:
    result = run("receipt", "--help")
    assert "consent cookie carries the visitor's consent id" in " ".join(
        result.output.split()
    )
    assert "cookie carries, or" not in result.output


@pytest.mark.postgres
def test_the_commands_on_postgresql(pg_schema: str) -> None:
    store = open_store(PG_URL, folder=".", schema=pg_schema)
    store.add_many(receipt_n(n) for n in range(4))
    store.close()
    where = ["--url", PG_URL, "--schema", pg_schema]
    data = json.loads(run("stats", "--json", *where).output)
    assert data["total"] == 4
    assert data["keys"]["analytics"]["granted"] == 2
    shown = run("show", "visitor-1", *where)
    assert "texts       not on record" in shown.output


def test_readers_replay_the_spools_first(folder: Path) -> None:
    # A receipt answered a moment ago waits in a live worker's spool: show,
    # receipt and export find it all the same.
    store = SQLiteReceiptStore(folder / "consent-receipts.db")
    spool = folder / "consent-spool-4242.jsonl"
    worker = DurableRecorder(store, spool, background=False)
    fresh = receipt_n(9, consent_id="visitor-9")
    worker.record(fresh)
    worker.close()
    assert store.get(fresh.receipt_id) is None
    store.close()
    source = ("--url", "sqlite", "--folder", str(folder))
    shown = run("show", "visitor-9", *source)
    assert shown.exit_code == 0, shown.output
    assert fresh.receipt_id in shown.output
    assert not spool.exists()
    assert run("receipt", fresh.receipt_id, *source).exit_code == 0
    exported = run("export", "--format", "jsonl", *source)
    assert fresh.receipt_id in exported.output


def test_a_reader_that_cannot_replay_reads_what_the_store_has(
    folder: Path, tmp_path: Path
) -> None:
    spool_dir = tmp_path / "spools"
    spool_dir.mkdir()
    # A spool this reader cannot read (here: a folder where its replay goes).
    (spool_dir / "consent-spool-1.jsonl.replaying").mkdir()
    result = run(
        "show",
        "visitor-1",
        "--url",
        "sqlite",
        "--folder",
        str(folder),
        "--spool-dir",
        str(spool_dir),
    )
    assert result.exit_code == 0, result.output
    assert "could not be replayed" in result.output
    assert "3 receipts for consent id visitor-1" in result.output

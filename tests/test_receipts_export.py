from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest

from consent.receipts import CSV_COLUMNS
from consent.receipts import Receipt
from consent.receipts import export_chunks
from consent.receipts.export import spreadsheet_safe
from consent.receipts.times import parse_utc
from tests.factories import T0
from tests.factories import receipt
from tests.factories import receipt_n


def read_csv(text: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
    return list(reader)


def test_csv_export_has_a_header_and_a_row_per_receipt() -> None:
    receipts = [receipt_n(n) for n in range(3)]
    text = "".join(export_chunks(receipts, "csv"))
    assert text.startswith(",".join(CSV_COLUMNS) + "\r\n")
    assert text.endswith("\r\n")
    rows = read_csv(text)
    assert [row["receipt_id"] for row in rows] == [r.receipt_id for r in receipts]
    row, first = rows[0], receipts[0]
    assert parse_utc(row["created_at"]) == first.created_at
    assert json.loads(row["choices"]) == first.choices_dict()
    assert row["ip"] == "203.0.113.0/24"
    assert row["path"] == "/visit"


def test_csv_export_of_nothing_is_its_header() -> None:
    assert "".join(export_chunks([], "csv")) == ",".join(CSV_COLUMNS) + "\r\n"
    assert list(export_chunks([], "jsonl")) == []


@pytest.mark.parametrize(
    "text", ["=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("x","y")']
)
def test_cells_a_spreadsheet_would_run_are_defused(text: str) -> None:
    assert spreadsheet_safe(text) == "'" + text
    evil = receipt(T0, user_agent=text + " 浏览器", path=text)
    (row,) = read_csv("".join(export_chunks([evil], "csv")))
    # A receipt drops control characters; what is left is defused as needed.
    assert row["user_agent"] == spreadsheet_safe(evil.user_agent)
    assert row["path"] == spreadsheet_safe(evil.path)
    if text[0] not in "\t\r":
        assert row["user_agent"].startswith("'")
    # JSON Lines keeps every value exactly.
    (line,) = "".join(export_chunks([evil], "jsonl")).splitlines()
    assert Receipt.from_json(line) == evil


def test_csv_quotes_what_needs_quoting() -> None:
    odd = receipt(T0, user_agent='Agent "quoted", with comma\nand line', path="/a,b")
    (row,) = read_csv("".join(export_chunks([odd], "csv")))
    assert row["user_agent"] == odd.user_agent
    assert row["path"] == "/a,b"


def test_exports_come_in_chunks_and_read_back() -> None:
    receipts = [receipt_n(at=T0 + timedelta(seconds=n)) for n in range(3000)]
    for fmt in ("csv", "jsonl"):
        chunks = list(export_chunks(iter(receipts), fmt))  # type: ignore[arg-type]
        assert len(chunks) > 3
        assert all(len(chunk) < 80 * 1024 for chunk in chunks)
        text = "".join(chunks)
        if fmt == "csv":
            assert len(read_csv(text)) == 3000
        else:
            assert [Receipt.from_json(x) for x in text.splitlines()] == receipts


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="csv"):
        list(export_chunks([], "xml"))  # type: ignore[arg-type]

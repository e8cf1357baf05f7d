"""Receipts exported: CSV for spreadsheets, JSON Lines with every value exact.

Exports answer access requests (GDPR Art. 15) and feed a site's own
archives. Both formats are written lazily, in chunks, so that an export of
any size runs in constant memory when its receipts come from
:meth:`~consent.receipts.ReceiptStore.iter_receipts`.
"""

from __future__ import annotations

import collections.abc as cabc
import csv
import functools
import io
import json
import typing as t

from .record import TEXT_FIELDS

if t.TYPE_CHECKING:
    from .record import Receipt

#: Export formats: spreadsheet-friendly CSV, or JSON Lines in the spool's
#: own format (one :meth:`~consent.receipts.Receipt.to_json` per line), which
#: can be read back with :meth:`~consent.receipts.Receipt.from_json`.
ExportFormat = t.Literal["csv", "jsonl"]

EXPORT_FORMATS: tuple[ExportFormat, ...] = ("csv", "jsonl")

#: The columns of a CSV export, in order. ``choices`` holds the JSON object
#: of every key and whether it was granted.
CSV_COLUMNS = (*TEXT_FIELDS, "ip", "choices")

#: Media types of the export formats, for a download.
MEDIA_TYPES: dict[ExportFormat, str] = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson; charset=utf-8",
}

# A spreadsheet runs a cell that starts with one of these as a formula; the
# language, user agent and path come from visitors, so they could carry one.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_CHUNK_CHARS = 64 * 1024


def spreadsheet_safe(value: str) -> str:
    """``value`` with a leading ``'`` when a spreadsheet would run it as a
    formula (it starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
    return), so that opening an export runs nothing a visitor sent."""
    return "'" + value if value.startswith(_FORMULA_START) else value


@functools.lru_cache(maxsize=1024)
def _choices_cell(choices: tuple[tuple[str, bool], ...]) -> str:
    # Few distinct combinations of choices exist: encode each once.
    return json.dumps(dict(choices), separators=(",", ":"))


def csv_row(receipt: Receipt) -> tuple[str, ...]:
    """One receipt as the cells of a CSV row, in :data:`CSV_COLUMNS` order.

    Cells a spreadsheet would run as a formula get a leading ``'``
    (:func:`spreadsheet_safe`); the JSON Lines export keeps every value
    exactly.
    """
    return (
        receipt.receipt_id,
        receipt.consent_id,
        receipt.created_at.isoformat(),
        receipt.revision,
        receipt.texts_hash,
        receipt.method,
        spreadsheet_safe(receipt.language),
        spreadsheet_safe(receipt.path),
        spreadsheet_safe(receipt.user_agent),
        receipt.ip or "",
        _choices_cell(receipt.choices),
    )


def export_chunks(
    receipts: cabc.Iterable[Receipt], fmt: ExportFormat
) -> cabc.Iterator[str]:
    """Yield an export in chunks of about 64 KB: for CSV, the header first
    (RFC 4180, CRLF line ends, as :func:`csv.writer` writes by default);
    for JSON Lines, one receipt per line.

    :param receipts: The receipts, in the order they are written.
    :param fmt: ``"csv"`` or ``"jsonl"``.
    :raises ValueError: for another format.
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"Unknown export format {fmt!r}: use 'csv' or 'jsonl'.")
    buffer = io.StringIO()
    if fmt == "csv":
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        for receipt in receipts:
            writer.writerow(csv_row(receipt))
            if buffer.tell() >= _CHUNK_CHARS:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    else:
        for receipt in receipts:
            buffer.write(receipt.to_json())
            buffer.write("\n")
            if buffer.tell() >= _CHUNK_CHARS:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()

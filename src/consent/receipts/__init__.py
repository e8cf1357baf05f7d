"""Proof of consent: receipts, the stores that keep them, and a spool for outages.

A site must be able to show that a visitor agreed, to what and when (GDPR
Art. 7(1)), so every decision is written down as a :class:`Receipt`, and what
the visitor was shown is kept once per version as :class:`ShownTexts`.
Receipts are kept by a :class:`ReceiptStore`: :class:`SQLiteReceiptStore` for
a single server, :class:`SQLReceiptStore` for PostgreSQL or any other
database SQLAlchemy speaks. :class:`DurableRecorder` sits in front of a store
and keeps each receipt in a local, fsynced spool file while the database is
down, then replays the spool once it is back: a receipt accepted is a
receipt kept. :class:`ReceiptKeeper` puts it together for an app, and is
what the adapters call.

Receipts are personal data too, so they hold as little as they can: a random
consent id, a reduced user agent, a path without its query string, and an IP
address that was truncated or keyed-hashed by :func:`anonymize_ip` (GDPR
Art. 5(1)(c) and Art. 25).

One concept per module: :mod:`~consent.receipts.record`,
:mod:`~consent.receipts.privacy`, :mod:`~consent.receipts.store`,
:mod:`~consent.receipts.sqlite`, :mod:`~consent.receipts.sql` (and
:mod:`~consent.receipts.libpq`), :mod:`~consent.receipts.spool` (and
:mod:`~consent.receipts.spoolfile`, :mod:`~consent.receipts.writer`,
:mod:`~consent.receipts.adopt`),
:mod:`~consent.receipts.export`, :mod:`~consent.receipts.stats`,
:mod:`~consent.receipts.keeper`, :mod:`~consent.receipts.urls`, and the
``consent receipts`` command in :mod:`~consent.receipts.commands`.
"""

from ..exceptions import ReceiptNotKeptError as ReceiptNotKeptError
from ..model import DEFAULT_RETENTION as DEFAULT_RETENTION
from .adopt import adopt_spool as adopt_spool
from .export import CSV_COLUMNS as CSV_COLUMNS
from .export import ExportFormat as ExportFormat
from .export import export_chunks as export_chunks
from .keeper import RECEIPT_DEFAULTS as RECEIPT_DEFAULTS
from .keeper import ReceiptKeeper as ReceiptKeeper
from .privacy import IPMode as IPMode
from .privacy import anonymize_ip as anonymize_ip
from .privacy import reduce_user_agent as reduce_user_agent
from .record import TEXT_FIELDS as TEXT_FIELDS
from .record import Receipt as Receipt
from .record import ShownTexts as ShownTexts
from .spool import DurableRecorder as DurableRecorder
from .sql import SQLReceiptStore as SQLReceiptStore
from .sqlite import SQLiteReceiptStore as SQLiteReceiptStore
from .stats import key_totals as key_totals
from .store import SCHEMA_VERSION as SCHEMA_VERSION
from .store import DailyRate as DailyRate
from .store import ReceiptStore as ReceiptStore
from .store import Stats as Stats
from .times import parse_utc as parse_utc
from .urls import open_store as open_store

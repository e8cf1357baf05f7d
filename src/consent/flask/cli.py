"""``flask consent ...``: the operator's commands.

Receipts are personal data as well as proof. ``show`` and ``export`` answer
access requests (GDPR Art. 15), ``erase`` answers erasure requests
(Art. 17), ``purge`` enforces the retention period (Art. 5(1)(e)), and
``flush`` replays receipts that web processes spooled while the database was
down. ``stats`` and ``check`` are for the site's own reporting and review.
"""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import dataclasses
import functools
import glob
import json
import os
import sqlite3
import sys
import typing as t
from datetime import date
from datetime import datetime
from datetime import timezone

import click
from flask import current_app
from flask.cli import AppGroup

from ..exceptions import ConfigurationError
from ..receipts import TEXT_FIELDS
from ..receipts import DurableRecorder
from ..state import METHODS

if t.TYPE_CHECKING:
    from ..model import Cookie
    from ..model import Policy
    from ..receipts import Receipt
    from ..receipts import ReceiptKeeper
    from ..receipts import ReceiptStore
    from ..receipts import Stats
    from ..site import Site

#: The ``flask consent`` command group.
consent_cli = AppGroup("consent", help="Consent receipts and policy tools.")

#: Export formats: spreadsheet-friendly CSV, or JSON Lines in the spool's
#: own format (one :meth:`~consent.receipts.Receipt.to_json` per line), which
#: can be read back with :meth:`~consent.receipts.Receipt.from_json`.
ExportFormat = t.Literal["csv", "jsonl"]

#: The columns of a CSV export, in order. ``choices`` holds the JSON object
#: of every key and whether it was granted.
CSV_COLUMNS = (*TEXT_FIELDS, "ip", "choices")

#: How spool files are named in the spool directory (one per process).
SPOOL_PATTERN = "consent-spool-*.jsonl"

_RECEIPTS_OFF = (
    "Receipts are off (CONSENT_RECEIPTS_URL is None): set CONSENT_RECEIPTS_URL"
    ' to "sqlite" or a database URL to keep and manage receipts.'
)
# A spreadsheet runs a cell that starts with one of these as a formula; the
# user agent and path come from visitors, so they could carry one.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_CSV_SPECIAL = (",", '"', "\r", "\n")
_EXPORT_BATCH = 2000
_CHUNK_BYTES = 64 * 1024
_PROGRESS_STEPS = 100


def parse_utc(value: str) -> datetime:
    """Read ``YYYY-MM-DD`` or an ISO 8601 datetime as an aware UTC datetime.

    A date means its midnight; a time without an offset is taken as UTC.

    :raises ValueError: when ``value`` is neither.
    """
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    if len(text) == 10:
        day = date.fromisoformat(text)
        return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


if t.TYPE_CHECKING:
    _ParamType = click.ParamType[datetime]
else:
    _ParamType = click.ParamType


class UTCDateTime(_ParamType):
    """A click type for :func:`parse_utc`."""

    name = "date"

    def convert(
        self, value: t.Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return parse_utc(str(value))
        except ValueError:
            self.fail(
                f"{value!r} is not a date: write YYYY-MM-DD or an ISO datetime"
                " such as 2025-03-01T12:00:00Z (times without an offset are UTC).",
                param,
                ctx,
            )


UTC_DATETIME = UTCDateTime()


def format_time(value: datetime) -> str:
    """A receipt time as operators read it: ``2025-03-01 12:00:05 UTC``."""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _csv_field(value: str) -> str:
    # RFC 4180, as csv.writer with its defaults quotes (QUOTE_MINIMAL),
    # without building a writer per row: exports run to millions of rows.
    if any(ch in value for ch in _CSV_SPECIAL):
        return '"' + value.replace('"', '""') + '"'
    return value


def _spreadsheet_safe(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


@functools.lru_cache(maxsize=1024)
def _choices_field(choices: tuple[tuple[str, bool], ...]) -> str:
    # Few distinct combinations of choices exist: encode each once.
    return _csv_field(json.dumps(dict(choices), separators=(",", ":")))


def csv_header() -> str:
    """The header line of a CSV export."""
    return ",".join(CSV_COLUMNS) + "\r\n"


def csv_line(receipt: Receipt) -> str:
    """One receipt as a CSV line (CRLF-terminated, as RFC 4180 has it).

    Cells a spreadsheet would run as a formula get a leading ``'``; the
    JSON Lines export keeps every value exactly.
    """
    return (
        ",".join(
            (
                _csv_field(receipt.receipt_id),
                _csv_field(receipt.consent_id),
                receipt.created_at.isoformat(),
                _csv_field(receipt.revision),
                _csv_field(receipt.texts_hash),
                receipt.method,
                _csv_field(_spreadsheet_safe(receipt.language)),
                _csv_field(_spreadsheet_safe(receipt.path)),
                _csv_field(_spreadsheet_safe(receipt.user_agent)),
                _csv_field(receipt.ip or ""),
                _choices_field(receipt.choices),
            )
        )
        + "\r\n"
    )


def export_lines(
    receipts: cabc.Iterable[Receipt], fmt: ExportFormat
) -> cabc.Iterator[str]:
    """Yield an export line by line: a CSV header first, then one line each.

    Lazy, so that an export of any size runs in constant memory when
    ``receipts`` is :meth:`~consent.receipts.ReceiptStore.iter_receipts`.

    :param fmt: ``"csv"`` or ``"jsonl"``.
    """
    if fmt == "csv":
        yield csv_header()
        for receipt in receipts:
            yield csv_line(receipt)
    elif fmt == "jsonl":
        for receipt in receipts:
            yield receipt.to_json() + "\n"
    else:
        raise ValueError(f"Unknown export format {fmt!r}: use 'csv' or 'jsonl'.")


def export_chunks(
    receipts: cabc.Iterable[Receipt], fmt: ExportFormat
) -> cabc.Iterator[str]:
    """Like :func:`export_lines`, joined into chunks of about 64 KB, so that a
    large export is not written one small line at a time."""
    parts: list[str] = []
    size = 0
    for line in export_lines(receipts, fmt):
        parts.append(line)
        size += len(line)
        if size >= _CHUNK_BYTES:
            yield "".join(parts)
            parts, size = [], 0
    if parts:
        yield "".join(parts)


def _settings() -> Site:
    """The consent site of the app the command runs in."""
    ext = current_app.extensions.get("consent")
    if ext is None:
        raise click.ClickException(
            "Consent is not set up on this app: call Consent(app, policy) in the"
            " app that FLASK_APP names."
        )
    site: Site = ext.site(current_app._get_current_object())  # type: ignore[attr-defined]
    return site


def _keeper() -> ReceiptKeeper:
    keeper: ReceiptKeeper | None = _settings().receipts
    if keeper is None:
        raise click.ClickException(_RECEIPTS_OFF)
    return keeper


def is_store_error(err: BaseException) -> bool:
    """True when ``err`` comes from the database rather than from the code:
    a file that cannot be opened, or an error of sqlite3, SQLAlchemy or a
    database driver."""
    if isinstance(err, (OSError, sqlite3.Error)):
        return True
    return type(err).__module__.split(".")[0] in ("sqlalchemy", "psycopg")


@contextlib.contextmanager
def _opened_store() -> cabc.Iterator[tuple[ReceiptKeeper, ReceiptStore]]:
    """The app's receipt store, closed when the command ends; database
    errors become a message rather than a traceback."""
    keeper = _keeper()
    try:
        yield keeper, keeper.store()
    except click.ClickException:
        raise
    except ConfigurationError as err:
        raise click.ClickException(_store_failed(keeper, err)) from err
    except Exception as err:
        if not is_store_error(err):
            raise
        raise click.ClickException(_store_failed(keeper, err)) from err
    finally:
        keeper.close()


def _store_failed(keeper: ReceiptKeeper, err: BaseException) -> str:
    first_line = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return (
        f"The receipt store failed ({type(err).__name__}: {first_line}). Check"
        " CONSENT_RECEIPTS_URL and that the database is running."
    )


def _is_terminal() -> bool:
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


@contextlib.contextmanager
def _progress(
    label: str, total: cabc.Callable[[], int]
) -> cabc.Iterator[cabc.Callable[[int], None]]:
    """Yield ``update(n)``; draws a bar on stderr only when it is a terminal,
    so that pipes and logs get the data and nothing else."""
    if not _is_terminal():
        yield lambda n: None
        return
    with click.progressbar(length=total(), label=label, file=sys.stderr) as bar:
        yield bar.update


def _choices_text(choices: cabc.Sequence[tuple[str, bool]]) -> str:
    granted = [key for key, value in choices if value]
    refused = [key for key, value in choices if not value]
    parts = []
    if granted:
        parts.append("granted " + ", ".join(granted))
    if refused:
        parts.append("refused " + ", ".join(refused))
    return "; ".join(parts) or "(no optional keys)"


def describe(receipt: Receipt) -> str:
    """A receipt as readable lines, for the terminal."""
    rows = (
        ("receipt", receipt.receipt_id),
        ("consent id", receipt.consent_id),
        ("time", format_time(receipt.created_at)),
        ("method", receipt.method),
        ("choices", _choices_text(receipt.choices)),
        ("revision", receipt.revision),
        ("language", receipt.language),
        ("path", receipt.path),
        ("user agent", receipt.user_agent or "-"),
        ("ip", receipt.ip or "-"),
        ("texts hash", receipt.texts_hash),
    )
    return "\n".join(f"{name:<11} {value}" for name, value in rows)


_FORMAT_OPTION = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "jsonl"]),
    default="text",
    show_default=True,
    help="Readable text, or one JSON object per receipt.",
)


@consent_cli.command("show")
@click.argument("consent_id")
@_FORMAT_OPTION
def show_command(consent_id: str, fmt: str) -> None:
    """Print every receipt of one visitor, oldest first.

    CONSENT_ID is the visitor's consent id, shown to them on the preferences
    page. Use it to answer an access request. A consent id that starts
    with "-" goes after "--": flask consent show -- -Xy1...
    """
    with _opened_store() as (_, store):
        receipts = store.for_consent_id(consent_id)
    if fmt == "jsonl":
        for receipt in receipts:
            click.echo(receipt.to_json())
        return
    if not receipts:
        click.echo(f"No receipts for consent id {consent_id}.")
        return
    count = len(receipts)
    noun = "receipt" if count == 1 else "receipts"
    click.echo(f"{count} {noun} for consent id {consent_id}, oldest first:")
    for receipt in receipts:
        click.echo("")
        click.echo(describe(receipt))


@consent_cli.command("receipt")
@click.argument("receipt_id")
@_FORMAT_OPTION
def receipt_command(receipt_id: str, fmt: str) -> None:
    """Print one receipt.

    RECEIPT_ID is the id a consent cookie carries, or one from an export.
    """
    with _opened_store() as (_, store):
        receipt = store.get(receipt_id)
    if receipt is None:
        raise click.ClickException(f"No receipt has the id {receipt_id}.")
    click.echo(receipt.to_json() if fmt == "jsonl" else describe(receipt))


def _binary_stdout() -> t.BinaryIO:
    # Bytes, so that the export is UTF-8 whatever the terminal's locale.
    sys.stdout.flush()
    return sys.stdout.buffer


def _open_output(path: str) -> t.BinaryIO:
    # The export holds personal data: readable by its owner only.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    return os.fdopen(fd, "wb")


@consent_cli.command("export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl"]),
    default="csv",
    show_default=True,
    help="CSV for spreadsheets, or JSON Lines with every value exact.",
)
@click.option(
    "--since", type=UTC_DATETIME, help="Only receipts made at or after this time."
)
@click.option("--until", type=UTC_DATETIME, help="Only receipts made before this time.")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    help="Write to this file (created readable by you only); default: stdout.",
)
def export_command(
    fmt: ExportFormat,
    since: datetime | None,
    until: datetime | None,
    output: str | None,
) -> None:
    """Export receipts, oldest first, in constant memory.

    Dates are YYYY-MM-DD or ISO datetimes, in UTC; --since includes its
    time, --until excludes it: --since 2025-03-01 --until 2025-04-01 is
    March.
    """
    written = 0
    with _opened_store() as (_, store), contextlib.ExitStack() as stack:
        if output:
            try:
                out = stack.enter_context(_open_output(output))
            except OSError as err:
                raise click.ClickException(
                    f"Cannot write {output}: {err.strerror}."
                ) from err
        else:
            out = _binary_stdout()
        receipts = store.iter_receipts(since, until, batch_size=_EXPORT_BATCH)
        update = stack.enter_context(
            _progress("Exporting receipts", lambda: store.count(since, until))
        )

        def counted() -> cabc.Iterator[Receipt]:
            nonlocal written
            for receipt in receipts:
                written += 1
                if written % 1000 == 0:
                    update(1000)
                yield receipt
            update(written % 1000)

        try:
            for chunk in export_chunks(counted(), fmt):
                out.write(chunk.encode())
            out.flush()
        except BrokenPipeError:
            # The reader left (`| head`): stop quietly, as other tools do.
            _silence_stdout()
            raise click.exceptions.Exit(1) from None
    if output:
        noun = "receipt" if written == 1 else "receipts"
        click.echo(f"Exported {written} {noun} to {output}.", err=True)


def _silence_stdout() -> None:
    # Python flushes stdout again at exit; into a closed pipe that would
    # print a second error.
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _spool_paths(spool_dir: str) -> list[str]:
    """Every spool in ``spool_dir``, of any process, alive or not; a spool
    whose replay was cut short is found by its ``.replaying`` file."""
    found = set(glob.glob(os.path.join(glob.escape(spool_dir), SPOOL_PATTERN)))
    for leftover in glob.glob(
        os.path.join(glob.escape(spool_dir), SPOOL_PATTERN + ".replaying")
    ):
        found.add(leftover[: -len(".replaying")])
    return sorted(found)


def _replay_spools(keeper: ReceiptKeeper, store: ReceiptStore) -> list[tuple[str, int]]:
    replayed = []
    for path in _spool_paths(keeper.spool_dir):
        recorder = DurableRecorder(
            store, path, timeout=keeper.timeout, background=False
        )
        try:
            count = recorder.flush()
        except Exception as err:
            raise click.ClickException(
                f"Replaying {path} failed ({type(err).__name__}); its receipts"
                " stay in the spool. Run `flask consent flush` again once the"
                " database answers."
            ) from err
        finally:
            recorder.close()
        replayed.append((path, count))
    return replayed


@consent_cli.command("flush")
def flush_command() -> None:
    """Replay spooled receipts into the store now.

    A web process spools receipts while the database is down and replays
    them by itself once it is back; this replays the spools of every
    process, including processes that have stopped. Replaying twice is
    harmless: a receipt is kept once.
    """
    with _opened_store() as (keeper, store):
        replayed = _replay_spools(keeper, store)
    if not replayed:
        click.echo(f"No spool files in {keeper.spool_dir}.")
    for path, count in replayed:
        click.echo(f"{os.path.basename(path)}: {count} replayed")
    total = sum(count for _, count in replayed)
    noun = "receipt" if total == 1 else "receipts"
    if replayed:
        click.echo(f"Replayed {total} spooled {noun}.")
    pattern = os.path.join(glob.escape(keeper.spool_dir), SPOOL_PATTERN + ".rejected")
    for rejected in sorted(glob.glob(pattern)):
        click.echo(
            f"Warning: {rejected} holds spooled lines that are not receipts;"
            " look at them, then remove the file.",
            err=True,
        )


@consent_cli.command("erase")
@click.argument("consent_id")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def erase_command(consent_id: str, yes: bool) -> None:
    """Delete every receipt of one visitor (the right to erasure).

    Answers a request under GDPR Art. 17. Spools are replayed first, so
    that a receipt still waiting in a spool cannot come back after the
    erasure. A consent id that starts with "-" goes after "--":
    flask consent erase -- -Xy1...
    """
    with _opened_store() as (keeper, store):
        _replay_spools(keeper, store)
        count = len(store.for_consent_id(consent_id))
        if not count:
            click.echo(f"No receipts for consent id {consent_id}.")
            return
        noun = "receipt" if count == 1 else "receipts"
        if not yes:
            click.confirm(
                f"Erase the {count} {noun} of consent id {consent_id}? The proof"
                " of their choices is lost",
                abort=True,
            )
        erased = store.erase(consent_id)
    noun = "receipt" if erased == 1 else "receipts"
    click.echo(f"Erased {erased} {noun} of consent id {consent_id}.")


def _purge_in_steps(
    store: ReceiptStore, before: datetime, update: cabc.Callable[[int], None]
) -> int:
    # The store deletes in batches but reports only the total; moving the
    # cutoff forward in steps from the oldest receipt lets the bar advance.
    first = store.iter_receipts(until=before, batch_size=1)
    oldest = next(first, None)
    close = getattr(first, "close", None)
    if close is not None:
        close()
    if oldest is None:
        return 0
    span = before - oldest.created_at
    deleted = 0
    for step in range(1, _PROGRESS_STEPS + 1):
        cutoff = (
            before
            if step == _PROGRESS_STEPS
            else oldest.created_at + span * step / _PROGRESS_STEPS
        )
        count = store.purge(cutoff)
        deleted += count
        update(count)
    return deleted


@consent_cli.command("purge")
@click.option(
    "--before",
    type=UTC_DATETIME,
    help="Delete receipts made before this time, instead of those older than"
    " CONSENT_RECEIPTS_RETENTION.",
)
@click.option(
    "--dry-run", is_flag=True, help="Count what would be deleted; delete nothing."
)
@click.option(
    "--yes",
    "-y",
    is_flag=True,
    help="Do not ask before deleting receipts that are still within retention.",
)
def purge_command(before: datetime | None, dry_run: bool, yes: bool) -> None:
    """Delete receipts older than the retention period.

    The period is CONSENT_RECEIPTS_RETENTION (three years by default). Run
    it daily, from cron or a scheduler: keeping proof longer than needed is
    itself a breach of storage limitation (GDPR Art. 5(1)(e)).
    """
    with _opened_store() as (keeper, store):
        cutoff = datetime.now(timezone.utc) - keeper.retention
        if before is None:
            before = cutoff
        if dry_run:
            count = store.count(until=before)
            noun = "receipt" if count == 1 else "receipts"
            click.echo(
                f"{count} {noun} made before {format_time(before)} would be purged."
            )
            return
        if before > cutoff and not yes:
            click.confirm(
                f"Receipts made since {format_time(cutoff)} are within the"
                f" retention period ({keeper.retention.days} days) and may still"
                f" be needed as proof. Delete everything before"
                f" {format_time(before)}?",
                abort=True,
            )
        with _progress("Purging receipts", lambda: store.count(until=before)) as update:
            if _is_terminal():
                deleted = _purge_in_steps(store, before, update)
            else:
                deleted = store.purge(before)
    noun = "receipt" if deleted == 1 else "receipts"
    click.echo(f"Purged {deleted} {noun} made before {format_time(before)}.")


def _ordered_keys(policy: Policy, keys: cabc.Iterable[str]) -> list[str]:
    """Keys in policy order; keys of earlier revisions follow, sorted."""
    present = set(keys)
    ordered = [key for key in policy.choice_keys if key in present]
    return ordered + sorted(present - set(ordered))


def key_totals(stats: Stats) -> dict[str, tuple[int, int]]:
    """Granted and listed counts per key, summed over the days of ``stats``."""
    totals: dict[str, tuple[int, int]] = {}
    for rate in stats.daily:
        granted, total = totals.get(rate.key, (0, 0))
        totals[rate.key] = (granted + rate.granted, total + rate.total)
    return totals


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


@consent_cli.command("stats")
@click.option(
    "--since", type=UTC_DATETIME, help="Count receipts made at or after this time."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def stats_command(since: datetime | None, as_json: bool) -> None:
    """Count receipts by method, and the opt-in rate of every key."""
    with _opened_store() as (keeper, store):
        stats = store.stats(since=since)
    totals = key_totals(stats)
    keys = _ordered_keys(keeper.policy, totals)
    methods = [*METHODS, *sorted(set(stats.by_method) - set(METHODS))]
    if as_json:
        data = {
            "since": since.isoformat() if since else None,
            "total": stats.total,
            "by_method": {m: stats.by_method.get(m, 0) for m in methods},
            "keys": {
                key: {
                    "granted": totals[key][0],
                    "total": totals[key][1],
                    "rate": totals[key][0] / totals[key][1] if totals[key][1] else 0.0,
                }
                for key in keys
            },
        }
        click.echo(json.dumps(data, indent=2))
        return
    scope = f"since {format_time(since)}" if since else "all time"
    click.echo(f"Receipts ({scope}): {stats.total}")
    click.echo("")
    click.echo("By method")
    for method in methods:
        count = stats.by_method.get(method, 0)
        share = _percent(count, stats.total)
        click.echo(f"  {method:<12} {count:>9}  {share:>6}")
    click.echo("")
    click.echo("Opt-in rate")
    if not keys:
        click.echo("  (no receipts)")
    services = {
        s.key for c in keeper.policy.categories for s in c.services if not c.required
    }
    width = max([len(k) + 2 for k in keys] + [12])
    for key in keys:
        granted, total = totals[key]
        label = f"  {key}" if key in services else key
        click.echo(
            f"  {label:<{width}} {_percent(granted, total):>6}  {granted} of {total}"
        )


def _table(headers: cabc.Sequence[str], rows: cabc.Sequence[cabc.Sequence[str]]) -> str:
    widths = [
        max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))
    ]
    lines = [
        "  ".join(
            str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)
        ).rstrip()
        for row in [headers, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join("    " + line for line in lines)


def _cookie_rows(cookies: cabc.Iterable[Cookie]) -> list[tuple[str, ...]]:
    return [(c.label, c.provider, c.purpose, c.duration, c.party) for c in cookies]


@consent_cli.command("check")
def check_command() -> None:
    """Validate the policy and print the cookie declaration.

    The policy was checked when the app loaded it; this checks it again,
    prints what visitors are told, per category, and tells whether the
    receipt store answers.
    """
    settings = _settings()
    policy: Policy = settings.policy
    try:
        # Building the policy again runs every check it passed at import.
        dataclasses.replace(policy)
    except ConfigurationError as err:
        raise click.ClickException(f"The policy is not valid: {err}") from err
    keys = len(policy.choice_keys)
    click.echo(
        f"Policy OK: revision {policy.revision}, mode {policy.mode},"
        f" {len(policy.categories)} categories, {keys} optional keys,"
        f" choices last {policy.max_age.days} days."
    )
    click.echo(f"Controller: {policy.controller}")
    builtin = settings.builtin_cookies(settings.settings.default_language)
    first_required = next(c.key for c in policy.categories if c.required)
    headers = ("cookie", "provider", "purpose", "duration", "party")
    for category in policy.categories:
        click.echo("")
        kind = "required" if category.required else "optional"
        click.echo(f"{category.title} ({category.key}, {kind})")
        cookies = list(category.cookies)
        if category.key == first_required:
            cookies = [*builtin, *cookies]
        if cookies:
            click.echo(_table(headers, _cookie_rows(cookies)))
        for service in category.services:
            provider = f", {service.provider}" if service.provider else ""
            click.echo(f"  Service: {service.title} ({service.key}{provider})")
            if service.cookies:
                click.echo(_table(headers, _cookie_rows(service.cookies)))
            else:
                click.echo("    (no cookies)")
        if not cookies and not category.services:
            click.echo("    (no cookies)")
    click.echo("")
    keeper = settings.receipts
    if keeper is None:
        click.echo("Receipts: off (CONSENT_RECEIPTS_URL is None).")
        return
    try:
        store = keeper.store()
        store.ping()
    except Exception as err:
        raise click.ClickException(_store_failed(keeper, err)) from err
    finally:
        keeper.close()
    click.echo(f"Receipts: kept in {store!r}, retention {keeper.retention.days} days.")

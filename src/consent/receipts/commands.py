"""The receipts commands, written once for every command line.

``consent receipts ...`` runs them on a database URL, without any web
framework; ``flask consent ...`` runs the same commands on the store of the
app that ``FLASK_APP`` names. A :class:`FrontEnd` says how each command line
reaches its :class:`~consent.receipts.ReceiptKeeper`, and
:func:`receipt_commands` builds the commands around it.

Receipts are personal data as well as proof. ``show`` and ``export`` answer
access requests (GDPR Art. 15), ``erase`` answers erasure requests
(Art. 17), ``purge`` enforces the retention period (Art. 5(1)(e)), and
``flush`` replays receipts that web processes spooled while the database was
down. ``stats`` is for the site's own reporting.
"""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import dataclasses
import json
import os
import sys
import typing as t
from datetime import datetime
from datetime import timezone

import click

from ..exceptions import ConfigurationError
from ..model import DEFAULT_RETENTION
from ..state import METHODS
from .export import export_chunks
from .keeper import ReceiptKeeper
from .spool import DurableRecorder
from .spoolfile import rejected_paths
from .spoolfile import spool_paths
from .stats import key_totals
from .stats import ordered_keys
from .store import is_store_error
from .terminal import UTC_DATETIME
from .terminal import is_terminal
from .terminal import print_receipts
from .terminal import progress
from .times import format_time
from .urls import sqlite_path

if t.TYPE_CHECKING:
    from .export import ExportFormat
    from .record import Receipt
    from .store import ReceiptStore

_EXPORT_BATCH = 2000
_PROGRESS_STEPS = 100

_Command = cabc.Callable[..., None]


@dataclasses.dataclass(frozen=True)
class FrontEnd:
    """How one command line reaches the receipts.

    :param prog: The command as a user types it, such as
        ``"flask consent"``; messages name it.
    :param where: What names the store, for messages, such as
        ``"CONSENT_RECEIPTS_URL"``.
    :param options: Makes the options every command of this front end takes
        besides its own (a new list each call: a click parameter belongs to
        one command).
    :param keeper: Gives the keeper, from the values of those options; it
        raises :class:`click.ClickException` when there is none.
    :param wrap: Wraps every command's callback, such as Flask's
        ``with_appcontext``.
    :param is_new_store_error: True when a command other than ``flush``
        must refuse to create a store that does not exist yet.
    """

    prog: str
    where: str
    options: cabc.Callable[[], list[click.Parameter]]
    keeper: cabc.Callable[[dict[str, t.Any]], ReceiptKeeper]
    wrap: cabc.Callable[[_Command], _Command] = lambda callback: callback
    is_new_store_error: bool = False

    def command(self, name: str) -> cabc.Callable[[_Command], click.Command]:
        """Make a click command of ``name`` from an implementation that takes
        a :class:`Run` first, then its own parameters (declared with click's
        decorators under this one)."""

        def decorate(implementation: _Command) -> click.Command:
            def callback(**values: t.Any) -> None:
                source = {
                    option.name: values.pop(option.name)
                    for option in options
                    if option.name is not None
                }
                run = Run(self, source, may_create=name == "flush")
                try:
                    implementation(run, **values)
                except click.ClickException:
                    raise
                except ConfigurationError as err:
                    raise click.ClickException(run.failed(err)) from err
                except Exception as err:
                    if not is_store_error(err):
                        raise
                    raise click.ClickException(run.failed(err)) from err
                finally:
                    run.close()

            # The parameters click's decorators put on the implementation
            # belong to the command; the front end's own come after them.
            params = getattr(implementation, "__click_params__", [])
            callback.__click_params__ = params  # type: ignore[attr-defined]
            options = self.options()
            command = click.command(name, help=implementation.__doc__)(
                self.wrap(callback)
            )
            command.params.extend(options)
            return command

        return decorate


class Run:
    """One run of a command: its keeper and store, opened when first asked
    for and closed when the command ends.

    :param front: The command line.
    :param source: The values of the front end's own options.
    :param may_create: True when the command may create a store that does
        not exist yet (``flush``).
    """

    def __init__(
        self, front: FrontEnd, source: dict[str, t.Any], *, may_create: bool
    ) -> None:
        self.front = front
        self._source = source
        self._may_create = may_create
        self._keeper: ReceiptKeeper | None = None

    @property
    def keeper(self) -> ReceiptKeeper:
        """The keeper of this run."""
        if self._keeper is None:
            self._keeper = self.front.keeper(self._source)
        return self._keeper

    def store(self) -> ReceiptStore:
        """The store of this run."""
        keeper = self.keeper
        if self.front.is_new_store_error and not self._may_create:
            url = keeper.url
            path = sqlite_path(url, keeper.folder) if isinstance(url, str) else None
            if path is not None and not os.path.exists(path):
                raise click.ClickException(
                    f"There is no receipts database at {path}: check --url"
                    " and --folder."
                )
        return keeper.store()

    def failed(self, err: BaseException) -> str:
        """What to tell when the store failed with ``err``."""
        return store_failed_message(err, self.front.where)

    def close(self) -> None:
        """Close the keeper, if it was opened."""
        if self._keeper is not None:
            self._keeper.close()


def store_failed_message(err: BaseException, where: str) -> str:
    """A one-line message for a store that failed, with no traceback.

    :param err: What the store raised.
    :param where: What names the store, such as ``"CONSENT_RECEIPTS_URL"``.
    """
    text = str(err).strip()
    first_line = text.splitlines()[0] if text else ""
    return (
        f"The receipt store failed ({type(err).__name__}: {first_line}). Check"
        f" {where} and that the database is running."
    )


_FORMAT_OPTION = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "jsonl"]),
    default="text",
    show_default=True,
    help="Readable text, or one JSON object per receipt.",
)
_TEXTS_OPTION = click.option(
    "--texts",
    "with_texts",
    is_flag=True,
    help="Also print everything the visitor was shown (with --format jsonl,"
    " as a texts line before the first receipt that names it).",
)


def _show(front: FrontEnd) -> click.Command:
    @front.command("show")
    @click.argument("consent_id")
    @_FORMAT_OPTION
    @_TEXTS_OPTION
    def show(run: Run, consent_id: str, fmt: str, with_texts: bool) -> None:
        """Print every receipt of one visitor, oldest first, and what they
        were shown.

        CONSENT_ID is the visitor's consent id, which their consent cookie
        carries and the preferences page shows them. Use it to answer an
        access request. A consent id that starts with "-" goes after "--":
        show -- -Xy1...
        """
        store = run.store()
        _catch_up(run, store)
        receipts = store.for_consent_id(consent_id)
        if not receipts:
            if fmt != "jsonl":
                click.echo(f"No receipts for consent id {consent_id}.")
            return
        if fmt != "jsonl":
            count = len(receipts)
            noun = "receipt" if count == 1 else "receipts"
            click.echo(f"{count} {noun} for consent id {consent_id}, oldest first:")
        print_receipts(store, receipts, fmt, with_texts=with_texts, apart=True)

    return show


def _receipt(front: FrontEnd) -> click.Command:
    @front.command("receipt")
    @click.argument("receipt_id")
    @_FORMAT_OPTION
    @_TEXTS_OPTION
    def receipt(run: Run, receipt_id: str, fmt: str, with_texts: bool) -> None:
        """Print one receipt, and what its visitor was shown.

        RECEIPT_ID is the id of one receipt, as show and export list it.
        (The consent cookie carries the visitor's consent id, not a receipt
        id: look a visitor up with show.)
        """
        store = run.store()
        _catch_up(run, store)
        found = store.get(receipt_id)
        if found is None:
            raise click.ClickException(f"No receipt has the id {receipt_id}.")
        print_receipts(store, [found], fmt, with_texts=with_texts, apart=False)

    return receipt


def _binary_stdout() -> t.BinaryIO:
    # Bytes, so that the export is UTF-8 whatever the terminal's locale.
    sys.stdout.flush()
    return sys.stdout.buffer


def _open_output(path: str) -> t.BinaryIO:
    # The export holds personal data: readable by its owner only.
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags | getattr(os, "O_BINARY", 0), 0o600)
    return os.fdopen(fd, "wb")


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


def _export(front: FrontEnd) -> click.Command:
    @front.command("export")
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
    @click.option(
        "--until", type=UTC_DATETIME, help="Only receipts made before this time."
    )
    @click.option(
        "--output",
        "-o",
        type=click.Path(dir_okay=False, writable=True),
        help="Write to this file (created readable by you only); default: stdout.",
    )
    def export(
        run: Run,
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
        store = run.store()
        _catch_up(run, store)
        with contextlib.ExitStack() as stack:
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
                progress("Exporting receipts", lambda: store.count(since, until))
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

    return export


def _replay_spools(run: Run, store: ReceiptStore) -> list[tuple[str, int]]:
    keeper = run.keeper
    replayed = []
    for path in spool_paths(keeper.spool_dir):
        recorder = DurableRecorder(
            store, path, timeout=keeper.timeout, background=False
        )
        try:
            count = recorder.flush()
        except Exception as err:
            raise click.ClickException(
                f"Replaying {path} failed ({type(err).__name__}); its receipts"
                f" stay in the spool. Run `{run.front.prog} flush` again once the"
                " database answers."
            ) from err
        finally:
            recorder.close()
        replayed.append((path, count))
    return replayed


def _catch_up(run: Run, store: ReceiptStore) -> None:
    """Replay the spools this command can see before it reads, so that it
    shows receipts answered a moment ago too; a reader that cannot (another
    user's spools, the database refusing writes) reads what the store has."""
    keeper = run.keeper
    if not os.path.isdir(keeper.spool_dir):
        return
    for path in spool_paths(keeper.spool_dir):
        recorder = DurableRecorder(
            store, path, timeout=keeper.timeout, background=False
        )
        try:
            recorder.flush()
        except Exception as err:
            click.echo(
                f"Note: {os.path.basename(path)} could not be replayed"
                f" ({type(err).__name__}); receipts answered in the last moments"
                " may be missing.",
                err=True,
            )
            return
        finally:
            recorder.close()


def _flush(front: FrontEnd) -> click.Command:
    @front.command("flush")
    def flush(run: Run) -> None:
        """Replay spooled receipts into the store now.

        A web process spools receipts while the database is down and
        replays them by itself once it is back; this replays the spools of
        every process, including processes that have stopped. Replaying
        twice is harmless: a receipt is kept once.
        """
        spool_dir = run.keeper.spool_dir
        replayed = _replay_spools(run, run.store())
        if not replayed:
            click.echo(f"No spool files in {spool_dir}.")
        for path, count in replayed:
            click.echo(f"{os.path.basename(path)}: {count} replayed")
        total = sum(count for _, count in replayed)
        noun = "receipt" if total == 1 else "receipts"
        if replayed:
            click.echo(f"Replayed {total} spooled {noun}.")
        for rejected in rejected_paths(spool_dir):
            click.echo(
                f"Warning: {rejected} holds spooled lines that are not receipts;"
                " look at them, then remove the file.",
                err=True,
            )

    return flush


def _erase(front: FrontEnd) -> click.Command:
    @front.command("erase")
    @click.argument("consent_id")
    @click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
    def erase(run: Run, consent_id: str, yes: bool) -> None:
        """Delete every receipt of one visitor (the right to erasure).

        Answers a request under GDPR Art. 17. Spools are replayed first, so
        that a receipt still waiting in a spool cannot come back after the
        erasure. A consent id that starts with "-" goes after "--":
        erase -- -Xy1...
        """
        store = run.store()
        _replay_spools(run, store)
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

    return erase


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


def _purge(front: FrontEnd) -> click.Command:
    @front.command("purge")
    @click.option(
        "--before",
        type=UTC_DATETIME,
        help="Delete receipts made before this time, instead of those older than"
        " the retention period.",
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
    def purge(run: Run, before: datetime | None, dry_run: bool, yes: bool) -> None:
        """Delete receipts older than the retention period.

        The period is three years unless configured (CONSENT_RECEIPTS_RETENTION
        for an app, --retention-days for consent receipts). Run it daily, from
        cron or a scheduler: keeping proof longer than needed is itself a
        breach of storage limitation (GDPR Art. 5(1)(e)).
        """
        store = run.store()
        retention = run.keeper.retention
        cutoff = datetime.now(timezone.utc) - retention
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
                f" retention period ({retention.days} days) and may still"
                f" be needed as proof. Delete everything before"
                f" {format_time(before)}?",
                abort=True,
            )
        until = before
        with progress("Purging receipts", lambda: store.count(until=until)) as update:
            if is_terminal():
                deleted = _purge_in_steps(store, before, update)
            else:
                deleted = store.purge(before)
        noun = "receipt" if deleted == 1 else "receipts"
        click.echo(f"Purged {deleted} {noun} made before {format_time(before)}.")

    return purge


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _stats(front: FrontEnd) -> click.Command:
    @front.command("stats")
    @click.option(
        "--since", type=UTC_DATETIME, help="Count receipts made at or after this time."
    )
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
    def stats(run: Run, since: datetime | None, as_json: bool) -> None:
        """Count receipts by method, and the opt-in rate of every key.

        Keys come in the order of the app's policy, with services under
        their category; without an app, in sorted order.
        """
        counted = run.store().stats(since=since)
        policy = run.keeper.policy
        totals = key_totals(counted)
        keys = ordered_keys(policy, totals)
        methods = [*METHODS, *sorted(set(counted.by_method) - set(METHODS))]
        if as_json:
            data = {
                "since": since.isoformat() if since else None,
                "total": counted.total,
                "by_method": {m: counted.by_method.get(m, 0) for m in methods},
                "keys": {
                    key: {
                        "granted": totals[key][0],
                        "total": totals[key][1],
                        "rate": totals[key][0] / totals[key][1]
                        if totals[key][1]
                        else 0.0,
                    }
                    for key in keys
                },
            }
            click.echo(json.dumps(data, indent=2))
            return
        scope = f"since {format_time(since)}" if since else "all time"
        click.echo(f"Receipts ({scope}): {counted.total}")
        click.echo("")
        click.echo("By method")
        for method in methods:
            count = counted.by_method.get(method, 0)
            share = _percent(count, counted.total)
            click.echo(f"  {method:<12} {count:>9}  {share:>6}")
        click.echo("")
        click.echo("Opt-in rate")
        if not keys:
            click.echo("  (no receipts)")
        services = (
            set()
            if policy is None
            else {
                s.key for c in policy.categories for s in c.services if not c.required
            }
        )
        width = max([len(k) + 2 for k in keys] + [12])
        for key in keys:
            granted, total = totals[key]
            label = f"  {key}" if key in services else key
            rate = _percent(granted, total)
            click.echo(f"  {label:<{width}} {rate:>6}  {granted} of {total}")

    return stats


def receipt_commands(front: FrontEnd) -> list[click.Command]:
    """The receipts commands, made for one command line: ``show``,
    ``receipt``, ``export``, ``erase``, ``purge``, ``stats`` and ``flush``."""
    makers = (_show, _receipt, _export, _erase, _purge, _stats, _flush)
    return [make(front) for make in makers]


def _standalone_options() -> list[click.Parameter]:
    return [
        click.Option(
            ["--url"],
            envvar="CONSENT_RECEIPTS_URL",
            required=True,
            help="The receipts database: 'sqlite' (consent-receipts.db in"
            " --folder), sqlite:///file.db, or any SQLAlchemy URL such as"
            " postgresql+psycopg://user@host/db. Default: $CONSENT_RECEIPTS_URL.",
        ),
        click.Option(
            ["--folder"],
            type=click.Path(file_okay=False),
            default=".",
            show_default=True,
            help="The receipts' home: where 'sqlite' and relative SQLite files"
            " are, and spools unless --spool-dir says otherwise (the app's"
            " instance folder).",
        ),
        click.Option(
            ["--spool-dir"],
            type=click.Path(file_okay=False),
            help="Where the web processes keep their spools; default: --folder.",
        ),
        click.Option(
            ["--retention-days"],
            type=click.IntRange(min=1),
            default=DEFAULT_RETENTION.days,
            show_default=True,
            help="How long receipts are kept, for purge.",
        ),
        click.Option(
            ["--schema"],
            envvar="CONSENT_RECEIPTS_SCHEMA",
            help="The PostgreSQL schema of the tables. Default:"
            " $CONSENT_RECEIPTS_SCHEMA, or the connection's own.",
        ),
    ]


def _standalone_keeper(source: dict[str, t.Any]) -> ReceiptKeeper:
    try:
        return ReceiptKeeper(
            None,
            url=source["url"],
            folder=os.path.abspath(source["folder"]),
            spool_dir=source["spool_dir"],
            retention=source["retention_days"],
            schema=source["schema"],
        )
    except ConfigurationError as err:
        raise click.ClickException(str(err)) from err


#: How ``consent receipts ...`` reaches the receipts: from a URL.
STANDALONE = FrontEnd(
    prog="consent receipts",
    where="--url",
    options=_standalone_options,
    keeper=_standalone_keeper,
    is_new_store_error=True,
)


@click.group("receipts", context_settings={"help_option_names": ["-h", "--help"]})
def receipts_cli() -> None:
    """Manage consent receipts in a database, without the app.

    Every command takes --url (or $CONSENT_RECEIPTS_URL); in an app,
    flask consent offers the same commands on the app's own settings.
    """


for _command in receipt_commands(STANDALONE):
    receipts_cli.add_command(_command)

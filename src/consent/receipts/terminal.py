"""What the receipts commands read from and print on a terminal: dates,
progress bars, and receipts with what their visitors were shown."""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import json
import sys
import typing as t
from datetime import datetime

import click

from .times import format_time
from .times import parse_utc

if t.TYPE_CHECKING:
    from .record import Receipt
    from .record import ShownTexts
    from .store import ReceiptStore

if t.TYPE_CHECKING:
    _ParamType = click.ParamType[datetime]
else:
    _ParamType = click.ParamType


class UTCDateTime(_ParamType):
    """A click type for :func:`~consent.receipts.times.parse_utc`."""

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


def is_terminal() -> bool:
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


@contextlib.contextmanager
def progress(
    label: str, total: cabc.Callable[[], int]
) -> cabc.Iterator[cabc.Callable[[int], None]]:
    """Yield ``update(n)``; draws a bar on stderr only when it is a terminal,
    so that pipes and logs get the data and nothing else."""
    if not is_terminal():
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


def _texts_summary(texts: ShownTexts | None) -> str:
    if texts is None:
        return "not on record (a receipt made before texts were kept)"
    content = texts.content()
    shown = content.get("texts", {})
    declarations = content.get("declarations", [])
    check = "" if texts.is_intact else ", DOES NOT MATCH ITS HASH"
    return (
        f"{len(shown)} texts and {len(declarations)} categories, library"
        f" {content.get('library', '?')}, first seen"
        f" {format_time(texts.first_seen)}{check}"
    )


def describe(receipt: Receipt, texts: ShownTexts | None = None) -> str:
    """A receipt as readable lines, for the terminal.

    :param receipt: The receipt.
    :param texts: What its hash names, summed up on a last line.
    """
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
        ("texts", _texts_summary(texts)),
    )
    return "\n".join(f"{name:<11} {value}" for name, value in rows)


def describe_texts(texts: ShownTexts) -> str:
    """Everything a visitor was shown, as indented JSON, for the terminal."""
    body = json.dumps(texts.content(), indent=2, sort_keys=True, ensure_ascii=False)
    return f"What was shown ({texts.texts_hash}):\n{body}"


def print_receipts(
    store: ReceiptStore,
    receipts: cabc.Sequence[Receipt],
    fmt: str,
    *,
    with_texts: bool,
    apart: bool,
) -> None:
    """Print receipts as text or JSON Lines, each with what it was shown;
    ``apart`` puts a blank line before each text receipt."""
    found: dict[str, ShownTexts | None] = {}
    for receipt in receipts:
        is_new = receipt.texts_hash not in found
        if is_new:
            found[receipt.texts_hash] = store.get_texts(receipt.texts_hash)
        texts = found[receipt.texts_hash]
        if fmt == "jsonl":
            if with_texts and is_new and texts is not None:
                click.echo(texts.to_json())
            click.echo(receipt.to_json())
            continue
        if apart:
            click.echo("")
        click.echo(describe(receipt, texts))
        if with_texts and is_new and texts is not None:
            click.echo("")
            click.echo(describe_texts(texts))

"""``flask consent ...``: the operator's commands, on the app's own settings.

The receipts commands (``show``, ``receipt``, ``export``, ``erase``,
``purge``, ``stats``, ``flush``) are those of ``consent receipts``
(:mod:`consent.receipts.commands`), given the app's
:class:`~consent.receipts.ReceiptKeeper`. ``check`` is the app's own: it
prints the app's cookie declaration.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import typing as t

import click
from flask.cli import AppGroup
from flask.cli import with_appcontext

from ..exceptions import ConfigurationError
from ..receipts.commands import FrontEnd
from ..receipts.commands import receipt_commands
from ..receipts.commands import store_failed_message
from ._context import site_of

if t.TYPE_CHECKING:
    from ..model import Cookie
    from ..model import Policy
    from ..receipts.keeper import ReceiptKeeper
    from ..site import Site

#: The ``flask consent`` command group.
consent_cli = AppGroup("consent", help="Consent receipts and policy tools.")

_RECEIPTS_OFF = (
    "Receipts are off (CONSENT_RECEIPTS_URL is None): set CONSENT_RECEIPTS_URL"
    ' to "sqlite" or a database URL to keep and manage receipts.'
)


def _site() -> Site:
    """The consent site of the app the command runs in."""
    try:
        return site_of()
    except RuntimeError:
        raise click.ClickException(
            "Consent is not set up on this app: call Consent(app, policy) in the"
            " app that FLASK_APP names."
        ) from None


def _keeper(source: dict[str, t.Any]) -> ReceiptKeeper:
    keeper: ReceiptKeeper | None = _site().receipts
    if keeper is None:
        raise click.ClickException(_RECEIPTS_OFF)
    return keeper


#: How ``flask consent ...`` reaches the receipts: the app's keeper.
FLASK = FrontEnd(
    prog="flask consent",
    where="CONSENT_RECEIPTS_URL",
    options=list,
    keeper=_keeper,
    wrap=with_appcontext,
)

for _command in receipt_commands(FLASK):
    consent_cli.add_command(_command)


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
    site = _site()
    policy: Policy = site.policy
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
    builtin = site.builtin_cookies(site.settings.default_language)
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
    keeper = site.receipts
    if keeper is None:
        click.echo("Receipts: off (CONSENT_RECEIPTS_URL is None).")
        return
    try:
        store = keeper.store()
        store.ping()
    except Exception as err:
        raise click.ClickException(
            store_failed_message(err, "CONSENT_RECEIPTS_URL")
        ) from err
    finally:
        keeper.close()
    click.echo(f"Receipts: kept in {store!r}, retention {keeper.retention.days} days.")

"""The ``consent`` command: tools that need no web framework.

``consent receipts ...`` manages receipts from a database URL, and
``consent scan URL`` scans a site in a real browser. Each subcommand is
imported when it runs, so ``consent --help`` stays quick and a missing
optional extra only matters to the command that needs it. Also available as
``python -m consent``.
"""

from __future__ import annotations

import importlib
import typing as t

import click

#: Subcommands by name: the module and attribute of each click command.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "receipts": ("consent.receipts.commands", "receipts_cli"),
    "scan": ("consent.scan.command", "scan_command"),
}


class _LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *SUBCOMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in SUBCOMMANDS:
            return super().get_command(ctx, cmd_name)
        module, name = SUBCOMMANDS[cmd_name]
        command = getattr(importlib.import_module(module), name)
        return t.cast(click.Command, command)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cookie-consent", prog_name="consent")
def main() -> None:
    """Cookie consent tools: receipts and the compliance scanner."""

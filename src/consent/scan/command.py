"""``consent scan URL``: the click command.

Exit status 0 when the scan found nothing, 1 when it has findings, 2 when
it could not scan (or the command line is wrong), so a CI job can gate on
it. Importing this module needs neither Playwright nor tldextract: the scan
imports them when it runs, and says what to install when they are missing.
"""

from __future__ import annotations

import logging
import sys
import typing as t
from pathlib import Path

import click

from .declaration import DECLARATION_PATH
from .errors import ScanError
from .records import VISIT_TITLES

if t.TYPE_CHECKING:
    from .records import ScanResult
    from .records import VisitName

#: Exit status: the scan found nothing.
EXIT_CLEAN = 0
#: Exit status: the scan has findings.
EXIT_FINDINGS = 1
#: Exit status: the scan could not be done.
EXIT_ERROR = 2


class _Progress:
    """Pages done of pages planned, on standard error: one line rewritten
    in place on a terminal, one line per page otherwise (CI logs).
    """

    def __init__(self) -> None:
        self.is_tty = sys.stderr.isatty()
        self._width = 0

    def __call__(self, done: int, planned: int, visit: VisitName, url: str) -> None:
        text = f"[{done}/{planned}] {VISIT_TITLES[visit]}: {url}"
        if self.is_tty:
            padding = " " * max(0, self._width - len(text))
            click.echo(f"\r{text}{padding}", nl=False, err=True)
            self._width = len(text)
        else:
            click.echo(text, err=True)

    def clear(self) -> None:
        if self.is_tty and self._width:
            click.echo("\r" + " " * self._width + "\r", nl=False, err=True)
            self._width = 0


def _fail(message: str) -> t.NoReturn:
    click.echo(f"consent scan: {message}", err=True)
    sys.exit(EXIT_ERROR)


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as err:
        _fail(f"could not write {path}: {err.strerror or err}.")


def _check_writable(path: Path | None) -> None:
    if path is not None and not path.parent.is_dir():
        raise click.BadParameter(
            f"{path.parent} is not a folder; create it first.", param_hint=str(path)
        )


@click.command("scan")
@click.argument("url")
@click.option(
    "--crawl",
    type=click.IntRange(0, 200),
    default=0,
    show_default=True,
    metavar="N",
    help="Also visit up to N same-site links found on the start page.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Write the full report as JSON (schema version 1) to FILE.",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Write the report as one self-contained HTML file.",
)
@click.option(
    "--browser",
    metavar="PATH",
    help="The Chromium or Chrome to drive (found automatically by default).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1, max=600),
    default=30,
    show_default=True,
    metavar="S",
    help="Seconds one page may take to load.",
)
@click.option(
    "--total-timeout",
    type=click.FloatRange(min=1, max=24 * 3600),
    default=600,
    show_default=True,
    metavar="S",
    help="Seconds the whole scan may take.",
)
@click.option(
    "--declaration",
    "declaration_path",
    default=DECLARATION_PATH,
    show_default=True,
    metavar="PATH",
    help="Where the site publishes its cookie declaration.",
)
@click.option(
    "--browser-arg",
    "browser_args",
    multiple=True,
    metavar="ARG",
    help="An extra Chromium switch, such as --proxy-server=...; repeatable.",
)
def scan_command(
    url: str,
    crawl: int,
    json_path: Path | None,
    html_path: Path | None,
    browser: str | None,
    timeout: float,
    total_timeout: float,
    declaration_path: str,
    browser_args: tuple[str, ...],
) -> None:
    """Scan URL in a real browser: no interaction, Reject all, Accept all.

    Records cookies, localStorage and sessionStorage keys and requests to
    other sites in each visit, in a fresh browser profile, and checks them
    against the site's /consent/declaration.json (or a list of known
    trackers when it has none).

    Exit status: 0 no findings, 1 findings, 2 could not scan.
    """
    _check_writable(json_path)
    _check_writable(html_path)
    from .runner import ScanOptions
    from .runner import scan

    options = ScanOptions(
        crawl=crawl,
        page_timeout=timeout,
        total_timeout=total_timeout,
        browser=browser,
        browser_args=browser_args,
        declaration_path=declaration_path,
    )
    progress = _Progress()
    try:
        result: ScanResult = scan(url, options, progress)
    except ScanError as err:
        progress.clear()
        _fail(str(err))
    except KeyboardInterrupt:
        progress.clear()
        # A Ctrl-C in a terminal reaches Playwright's driver too, which then
        # is gone; asyncio would log the lost connection again at exit.
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        _fail("interrupted; the browser it started is closed.")
    except Exception as err:
        # Never exit 1 (findings) for a scan that did not finish.
        progress.clear()
        _fail(f"unexpected error, please report it: {type(err).__name__}: {err}")
    progress.clear()
    from .report_text import render_text

    click.echo(render_text(result), nl=False)
    if json_path is not None:
        from .report_json import render_json

        _write(json_path, render_json(result))
    if html_path is not None:
        from .report_html import render_html

        _write(html_path, render_html(result))
    sys.exit(EXIT_CLEAN if result.is_clean else EXIT_FINDINGS)

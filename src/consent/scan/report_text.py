"""The terminal report: findings first, then what each visit recorded."""

from __future__ import annotations

import collections.abc as cabc

import click

from .findings import describe
from .records import VISIT_TITLES
from .records import CookieRecord
from .records import ScanResult
from .records import VisitRecord

#: Rows shown per table; the JSON and HTML reports have them all.
MAX_ROWS = 40


def _table(rows: cabc.Sequence[cabc.Sequence[str]], indent: str = "    ") -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        indent
        + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _cookie_row(cookie: CookieRecord) -> list[str]:
    flags = [
        f for f, on in (("HttpOnly", cookie.http_only), ("Secure", cookie.secure)) if on
    ]
    if cookie.partitioned:
        flags.append("Partitioned")
    return [
        cookie.name,
        cookie.domain,
        f"{cookie.party}-party",
        f"by {cookie.set_by}",
        cookie.expires.strftime("%Y-%m-%d") if cookie.expires else "session",
        " ".join([*flags, f"SameSite={cookie.same_site or '-'}"]),
        "before and after"
        if len(cookie.phases) == 2
        else cookie.phases[0].replace("_", " "),
    ]


def _limited(lines: list[str], total: int) -> list[str]:
    if total > MAX_ROWS:
        lines.append(f"    ... and {total - MAX_ROWS} more (see --json or --html)")
    return lines


def _visit_lines(visit: VisitRecord) -> list[str]:
    banner = visit.banner
    if not banner.shown:
        shown = "no banner found"
    else:
        kind = "this library's banner" if banner.ours else "a banner"
        reject = "with" if banner.has_reject else "WITHOUT"
        shown = f"{kind} {reject} Reject all on its first layer"
    lines = [click.style(VISIT_TITLES[visit.name], bold=True) + f": {shown}"]
    if visit.name != "no_interaction":
        lines.append(
            "  choice made" if visit.choice_made else "  button not found: no choice"
        )
    errors = [p for p in visit.pages if p.error]
    lines.append(f"  {len(visit.pages)} page loads, {len(errors)} failed")
    for page in errors:
        lines.append(f"    {page.error}")
    lines.append(f"  Cookies ({len(visit.cookies)})")
    if visit.cookies:
        rows = [_cookie_row(c) for c in visit.cookies[:MAX_ROWS]]
        lines += _limited(_table(rows), len(visit.cookies))
    lines.append(f"  Requests to other sites ({len(visit.requests)})")
    if visit.requests:
        rows = [
            [r.host, r.resource_type, r.phase.replace("_", " "), r.url]
            for r in visit.requests[:MAX_ROWS]
        ]
        lines += _limited(_table(rows), len(visit.requests))
    lines.append(f"  Web Storage ({len(visit.storage)})")
    if visit.storage:
        rows = [
            [s.key, f"{s.area}Storage", s.origin, f"{s.party}-party"]
            for s in visit.storage[:MAX_ROWS]
        ]
        lines += _limited(_table(rows), len(visit.storage))
    return lines


def render_text(result: ScanResult) -> str:
    """The report for a terminal, styled with ANSI codes (``click.echo``
    removes them when the output is not a terminal).

    :param result: What the scan found.
    """
    lines = [
        click.style(f"consent scan {result.url}", bold=True)
        + f"  (site {result.site}, {len(result.pages)} pages per visit,"
        f" {result.duration:.1f} s)"
    ]
    if result.declaration is not None:
        categories = ", ".join(result.declaration.categories)
        lines.append(f"Declaration: {result.declaration_url} ({categories})")
    elif result.declaration_error:
        lines.append(
            click.style("Declaration not used: ", fg="yellow")
            + f"{result.declaration_error} Checked against known trackers instead."
        )
    else:
        lines.append(
            f"No declaration at {result.declaration_url}: checked against known"
            " trackers."
        )
    lines.append("")
    count = len(result.findings)
    if count:
        lines.append(
            click.style(
                f"{count} finding{'s' if count != 1 else ''}", fg="red", bold=True
            )
        )
        for number, finding in enumerate(result.findings, 1):
            title = describe(finding.code)
            subject = f": {finding.subject}" if finding.subject else ""
            lines.append(click.style(f"{number}. {title}{subject}", fg="red"))
            lines.append(f"   {finding.message}")
            for location in finding.locations[:3]:
                lines.append(
                    f"   seen in {VISIT_TITLES[location.visit]}: {location.page}"
                )
            if len(finding.locations) > 3:
                lines.append(f"   and {len(finding.locations) - 3} more places")
    else:
        lines.append(click.style("No findings.", fg="green", bold=True))
    for visit in result.visits:
        lines.append("")
        lines += _visit_lines(visit)
    return "\n".join(lines) + "\n"

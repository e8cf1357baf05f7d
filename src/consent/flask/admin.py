"""The receipts dashboard: an optional blueprint at ``<prefix>/admin``.

Off by default. ``CONSENT_ADMIN_ACCESS`` turns it on: a callable that
returns True for the users allowed to see it, asked before every view. The
dashboard shows the opt-in rate per category and service and per day, as an
SVG chart drawn on the server (no JavaScript), the receipts per method, the
latest receipts, and streaming exports. Receipts are personal data, so every
response is ``no-store`` and may not be framed.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import itertools
import logging
import math
import typing as t
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from datetime import timezone

from flask import Blueprint
from flask import Response
from flask import abort
from flask import current_app
from flask import render_template
from flask import request
from flask import stream_with_context

from ..state import METHODS
from ._context import site_of
from ._context import visitor
from .cli import ExportFormat
from .cli import export_chunks
from .cli import is_store_error
from .cli import parse_utc

if t.TYPE_CHECKING:
    from flask.typing import ResponseReturnValue

    from ..model import Policy
    from ..receipts import Receipt
    from ..receipts import ReceiptKeeper
    from ..receipts import ReceiptStore
    from ..receipts import Stats

logger = logging.getLogger(__name__)

admin_bp = Blueprint(
    "consent_admin",
    __name__,
    template_folder="../templates",
)

#: Receipts per page of the "latest receipts" table.
PER_PAGE = 50
#: The periods the charts can show, in days.
WINDOWS = (7, 14, 30, 90, 365)
DEFAULT_WINDOW = 30

#: The dashboard needs its stylesheet and nothing else; nothing may frame it.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self';"
    " base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

# One colour per category, readable on white and told apart by people with
# the common colour-vision deficiencies (after the Okabe-Ito palette, darkened
# for contrast on white).
_PALETTE = ("#0b6aa2", "#b35900", "#1b7f5a", "#a3367a", "#5a4fcf", "#8a6d00")
_MIMETYPES: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson; charset=utf-8",
}
# Chart geometry, in SVG user units.
_WIDTH = 560
_HEIGHT = 168
_LEFT = 40
_RIGHT = 8
_TOP = 10
_BOTTOM = 26
# Windows searched back from now when looking for the start of a page of the
# newest receipts: most pages are found in the first one or two.
_SPANS = tuple(timedelta(days=d) for d in (1 / 24, 1, 7, 30, 365, 5 * 365, 25 * 365))


@admin_bp.before_request
def _check_access() -> None:
    """Ask ``CONSENT_ADMIN_ACCESS`` first; answer 403 unless it says yes."""
    current = visitor()
    # The dashboard is not a page of the site: no banner, no consent.js.
    current.banner_suppressed = True
    current.head_rendered = True
    access = current_app.config.get("CONSENT_ADMIN_ACCESS")
    if access is None or not access():
        abort(403)


@admin_bp.after_request
def _protect(response: Response) -> Response:
    response.cache_control.no_store = True
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def _keeper() -> ReceiptKeeper | None:
    keeper: ReceiptKeeper | None = site_of().receipts
    return keeper


def _policy() -> Policy:
    return site_of().policy


@dataclasses.dataclass(frozen=True)
class Bar:
    """One day's bar of a chart."""

    x: float
    y: float
    width: float
    height: float
    day: date
    granted: int
    total: int

    @property
    def percent(self) -> float:
        return 100 * self.granted / self.total if self.total else 0.0


@dataclasses.dataclass(frozen=True)
class Chart:
    """The daily opt-in rate of one key, laid out for the template."""

    key: str
    title: str
    parent: str | None
    color: str
    bars: tuple[Bar, ...]
    granted: int
    total: int
    #: Horizontal grid lines: (y, label).
    grid: tuple[tuple[float, str], ...]
    #: Day labels under the axis: (x, label).
    ticks: tuple[tuple[float, str], ...]
    #: The y of the window's overall rate, drawn as a dashed line.
    average_y: float | None

    @property
    def percent(self) -> float:
        return 100 * self.granted / self.total if self.total else 0.0

    @property
    def description(self) -> str:
        if not self.total:
            return f"No receipts listed {self.title} in this period."
        days = len(self.bars)
        return (
            f"Opt-in rate of {self.title} per day: {self.percent:.0f}% overall,"
            f" {self.granted} of {self.total} receipts, on {days} days with"
            " receipts."
        )


def _plot_y(rate: float) -> float:
    plot = _HEIGHT - _TOP - _BOTTOM
    return _TOP + plot * (1 - rate)


def _chart(
    key: str,
    title: str,
    parent: str | None,
    color: str,
    days: list[date],
    cells: cabc.Mapping[date, tuple[int, int]],
) -> Chart:
    plot_w = _WIDTH - _LEFT - _RIGHT
    slot = plot_w / len(days)
    width = max(slot * 0.72, 1.0)
    bars = []
    for i, day in enumerate(days):
        granted, total = cells.get(day, (0, 0))
        if not total:
            continue
        y = _plot_y(granted / total)
        # Even 0% gets a sliver, so that a day with receipts is told apart
        # from a day without.
        height = max(_plot_y(0.0) - y, 1.5)
        bars.append(
            Bar(
                x=round(_LEFT + i * slot + (slot - width) / 2, 2),
                y=round(_plot_y(0.0) - height, 2),
                width=round(width, 2),
                height=round(height, 2),
                day=day,
                granted=granted,
                total=total,
            )
        )
    granted = sum(g for g, _ in cells.values())
    total = sum(n for _, n in cells.values())
    step = max(1, math.ceil(len(days) / 6))
    ticks = tuple(
        (round(_LEFT + (i + 0.5) * slot, 2), f"{day:%b} {day.day}")
        for i, day in enumerate(days)
        if (len(days) - 1 - i) % step == 0
    )
    grid = tuple((round(_plot_y(r), 2), f"{r:.0%}") for r in (0.0, 0.5, 1.0))
    return Chart(
        key=key,
        title=title,
        parent=parent,
        color=color,
        bars=tuple(bars),
        granted=granted,
        total=total,
        grid=grid,
        ticks=ticks,
        average_y=round(_plot_y(granted / total), 2) if total else None,
    )


def _charts(policy: Policy, stats: Stats, days: list[date]) -> list[Chart]:
    """One chart per category and service, in policy order; keys that only
    receipts of an earlier revision list come last."""
    cells: dict[str, dict[date, tuple[int, int]]] = {}
    for rate in stats.daily:
        cells.setdefault(rate.key, {})[rate.day] = (rate.granted, rate.total)
    charts = []
    known = set()
    colors = itertools.cycle(_PALETTE)
    for category in policy.optional_categories:
        color = next(colors)
        charts.append(
            _chart(
                category.key,
                category.title,
                None,
                color,
                days,
                cells.get(category.key, {}),
            )
        )
        known.add(category.key)
        for service in category.services:
            charts.append(
                _chart(
                    service.key,
                    service.title,
                    category.title,
                    color,
                    days,
                    cells.get(service.key, {}),
                )
            )
            known.add(service.key)
    for key in sorted(set(cells) - known):
        charts.append(_chart(key, key, None, "#4a5566", days, cells[key]))
    return charts


def _since_holding(
    store: ReceiptStore, need: int, total: int, now: datetime, slack: int
) -> datetime | None:
    """A time from which the store holds at least ``need`` receipts, and not
    many more than ``need + slack``: where a page of the newest receipts
    starts. ``None`` when the page reaches the oldest receipt.

    The store reads oldest first; counting back from now, by widening
    windows and then bisection, finds the page without reading every
    receipt before it.
    """
    if need >= total:
        return None
    later = now + timedelta(days=1)
    if store.count(since=later) >= need:
        return later
    earlier: datetime | None = None
    for span in _SPANS:
        candidate = now - span
        if store.count(since=candidate) >= need:
            earlier = candidate
            break
        later = candidate
    if earlier is None:
        return None
    for _ in range(64):
        if later - earlier <= timedelta(microseconds=1):
            break
        middle = earlier + (later - earlier) / 2
        count = store.count(since=middle)
        if count >= need:
            earlier = middle
            if count - need <= slack:
                break
        else:
            later = middle
    return earlier


def newest_first(
    store: ReceiptStore, page: int, per_page: int, total: int, now: datetime
) -> list[Receipt]:
    """The receipts of ``page`` (from 1), newest first.

    :param total: ``store.count()``, which the caller has already.
    """
    skip = (page - 1) * per_page
    if skip >= total:
        return []
    need = min(skip + per_page, total)
    since = _since_holding(store, need, total, now, slack=per_page)
    held = total if since is None else store.count(since=since)
    # Oldest first, the page is [held - need, held - skip).
    receipts = store.iter_receipts(since=since, batch_size=min(held, 1000) or 1)
    rows = list(itertools.islice(receipts, max(held - need, 0), max(held - skip, 0)))
    close = getattr(receipts, "close", None)
    if close is not None:
        close()
    rows.reverse()
    return rows


def _window() -> int:
    days = request.args.get("days", DEFAULT_WINDOW, type=int)
    return days if days in WINDOWS else DEFAULT_WINDOW


@admin_bp.get("/", endpoint="index")
def index() -> ResponseReturnValue:
    """The dashboard."""
    keeper = _keeper()
    policy = _policy()
    if keeper is None:
        return render_template(
            "consent/admin/index.html", is_enabled=False, policy=policy
        )
    window = _window()
    now = datetime.now(timezone.utc)
    today = now.date()
    days = [today - timedelta(days=n) for n in range(window - 1, -1, -1)]
    since = datetime.combine(days[0], time.min, tzinfo=timezone.utc)
    try:
        store = keeper.store()
        stats = store.stats(since=since)
        total = store.count()
        pages = max(1, math.ceil(total / PER_PAGE))
        page = min(max(request.args.get("page", 1, type=int), 1), pages)
        receipts = newest_first(store, page, PER_PAGE, total, now)
    except Exception as err:
        if not is_store_error(err):
            raise
        logger.error("The receipts dashboard could not read the store: %r", err)
        page_html = render_template(
            "consent/admin/index.html", is_enabled=False, policy=policy, is_down=True
        )
        return page_html, 503
    charts = _charts(policy, stats, days)
    methods = [*METHODS, *sorted(set(stats.by_method) - set(METHODS))]
    return render_template(
        "consent/admin/index.html",
        is_enabled=True,
        policy=policy,
        retention_days=keeper.retention.days,
        window=window,
        windows=WINDOWS,
        days=days,
        stats=stats,
        total=total,
        methods=[(m, stats.by_method.get(m, 0)) for m in methods],
        largest_method=max([stats.by_method.get(m, 0) for m in methods] + [1]),
        charts=charts,
        table_keys=[c for c in charts if c.total],
        daily={
            (rate.day, rate.key): (rate.granted, rate.total) for rate in stats.daily
        },
        receipts=receipts,
        page=page,
        pages=pages,
        chart_width=_WIDTH,
        chart_height=_HEIGHT,
        chart_left=_LEFT,
        chart_right=_WIDTH - _RIGHT,
    )


def _range() -> tuple[datetime | None, datetime | None]:
    bounds = []
    for name in ("since", "until"):
        value = request.args.get(name)
        try:
            bounds.append(parse_utc(value) if value else None)
        except ValueError:
            abort(
                400,
                description=f"{name}={value!r} is not a date: use YYYY-MM-DD or an"
                " ISO datetime such as 2025-03-01T12:00:00Z.",
            )
    return bounds[0], bounds[1]


def _export(fmt: ExportFormat) -> Response:
    keeper = _keeper()
    if keeper is None:
        abort(404, description="Receipts are off (CONSENT_RECEIPTS_URL is None).")
    since, until = _range()
    store = keeper.store()
    receipts = store.iter_receipts(since, until)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    response = Response(
        stream_with_context(export_chunks(receipts, fmt)),
        mimetype=_MIMETYPES[fmt],
    )
    response.headers["Content-Disposition"] = (
        f'attachment; filename="consent-receipts-{stamp}.{fmt}"'
    )
    return response


@admin_bp.get("/export.csv", endpoint="export_csv")
def export_csv() -> ResponseReturnValue:
    """Every receipt (or those between ``since`` and ``until``) as CSV."""
    return _export("csv")


@admin_bp.get("/export.jsonl", endpoint="export_jsonl")
def export_jsonl() -> ResponseReturnValue:
    """Every receipt (or those between ``since`` and ``until``) as JSON Lines."""
    return _export("jsonl")

"""Counting receipts: opt-in rates per day and key, totals, and the layout
of the dashboard's charts.

Stores group rows by day and choices (few distinct combinations), and the
counting per key is done here, the same for every store. The chart layout is
plain geometry, so that any adapter can render it; the dashboard draws it as
SVG on the server, without JavaScript.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import itertools
import json
import math
import typing as t
from datetime import date
from datetime import datetime

from .store import DailyRate

if t.TYPE_CHECKING:
    from ..model import Policy
    from .store import Stats

#: Chart geometry, in SVG user units: the width and height of a chart and
#: the space kept left of the plot (for the grid labels) and right of it.
CHART_WIDTH = 560
CHART_HEIGHT = 168
CHART_LEFT = 40
CHART_RIGHT = 8
_TOP = 10
_BOTTOM = 26

# One colour per category, readable on white and told apart by people with
# the common colour-vision deficiencies (after the Okabe-Ito palette, darkened
# for contrast on white).
_PALETTE = ("#0b6aa2", "#b35900", "#1b7f5a", "#a3367a", "#5a4fcf", "#8a6d00")
# Keys only receipts of an earlier revision list: grey.
_OLD_KEY_COLOR = "#4a5566"


def daily_rates(
    rows: cabc.Iterable[tuple[str | date, str, int]],
) -> tuple[DailyRate, ...]:
    """Opt-in counts per day and key, from rows grouped by day and choices.

    :param rows: ``(day, choices JSON, count)``; the day as a
        :class:`~datetime.date`, a datetime or ISO text.
    """
    cells: dict[tuple[date, str], list[int]] = {}
    for day, choices, count in rows:
        if isinstance(day, str):
            day = date.fromisoformat(day[:10])
        elif isinstance(day, datetime):
            day = day.date()
        for key, granted in json.loads(choices).items():
            cell = cells.setdefault((day, key), [0, 0])
            cell[1] += count
            if granted:
                cell[0] += count
    return tuple(
        DailyRate(day=day, key=key, granted=granted, total=total)
        for (day, key), (granted, total) in sorted(cells.items())
    )


def key_totals(stats: Stats) -> dict[str, tuple[int, int]]:
    """Granted and listed counts per key, summed over the days of ``stats``."""
    totals: dict[str, tuple[int, int]] = {}
    for rate in stats.daily:
        granted, total = totals.get(rate.key, (0, 0))
        totals[rate.key] = (granted + rate.granted, total + rate.total)
    return totals


def ordered_keys(policy: Policy | None, keys: cabc.Iterable[str]) -> list[str]:
    """Keys in policy order, then keys of earlier revisions, sorted; all
    sorted when there is no policy to follow."""
    present = set(keys)
    if policy is None:
        return sorted(present)
    ordered = [key for key in policy.choice_keys if key in present]
    return ordered + sorted(present - set(ordered))


@dataclasses.dataclass(frozen=True)
class Bar:
    """One day's bar of a chart.

    :param x: Left edge.
    :param y: Top edge.
    :param width: Width.
    :param height: Height.
    :param day: The UTC day.
    :param granted: Receipts that granted the key that day.
    :param total: Receipts that listed the key that day.
    """

    x: float
    y: float
    width: float
    height: float
    day: date
    granted: int
    total: int

    @property
    def percent(self) -> float:
        """The day's opt-in rate, in percent."""
        return 100 * self.granted / self.total if self.total else 0.0


@dataclasses.dataclass(frozen=True)
class Chart:
    """The daily opt-in rate of one key, laid out for a template.

    :param key: The category or service key.
    :param title: Its title in the policy (the key, for an old key).
    :param parent: The title of the category of a service; ``None`` for a
        category.
    :param color: The fill colour of the bars.
    :param bars: A bar per day with receipts.
    :param granted: Receipts in the period that granted the key.
    :param total: Receipts in the period that listed it.
    """

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
    #: The y of the period's overall rate, drawn as a dashed line.
    average_y: float | None

    @property
    def percent(self) -> float:
        """The period's opt-in rate, in percent."""
        return 100 * self.granted / self.total if self.total else 0.0

    @property
    def description(self) -> str:
        """The chart in words, for screen readers."""
        if not self.total:
            return f"No receipts listed {self.title} in this period."
        days = len(self.bars)
        return (
            f"Opt-in rate of {self.title} per day: {self.percent:.0f}% overall,"
            f" {self.granted} of {self.total} receipts, on {days} days with"
            " receipts."
        )


def _plot_y(rate: float) -> float:
    plot = CHART_HEIGHT - _TOP - _BOTTOM
    return _TOP + plot * (1 - rate)


def _chart(
    key: str,
    title: str,
    parent: str | None,
    color: str,
    days: cabc.Sequence[date],
    cells: cabc.Mapping[date, tuple[int, int]],
) -> Chart:
    plot_w = CHART_WIDTH - CHART_LEFT - CHART_RIGHT
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
                x=round(CHART_LEFT + i * slot + (slot - width) / 2, 2),
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
        (round(CHART_LEFT + (i + 0.5) * slot, 2), f"{day:%b} {day.day}")
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


def charts(policy: Policy, stats: Stats, days: cabc.Sequence[date]) -> list[Chart]:
    """One chart per optional category and service, in policy order; keys
    that only receipts of an earlier revision list come last.

    :param policy: The policy whose keys are charted.
    :param stats: The receipts of the period (:meth:`ReceiptStore.stats`).
    :param days: The days of the period, oldest first; at least one.
    """
    cells: dict[str, dict[date, tuple[int, int]]] = {}
    for rate in stats.daily:
        cells.setdefault(rate.key, {})[rate.day] = (rate.granted, rate.total)
    made = []
    known = set()
    colors = itertools.cycle(_PALETTE)
    for category in policy.optional_categories:
        color = next(colors)
        made.append(
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
            made.append(
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
        made.append(_chart(key, key, None, _OLD_KEY_COLOR, days, cells[key]))
    return made

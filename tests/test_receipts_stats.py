from __future__ import annotations

from datetime import date
from datetime import timedelta

import pytest

from consent.model import Policy
from consent.receipts import DailyRate
from consent.receipts import Stats
from consent.receipts import key_totals
from consent.receipts.stats import CHART_HEIGHT
from consent.receipts.stats import charts
from consent.receipts.stats import daily_rates
from consent.receipts.stats import ordered_keys

DAY = date(2025, 3, 1)


def test_daily_rates_count_each_key_per_day() -> None:
    rows = [
        ("2025-03-01", '{"analytics":true,"media":false}', 3),
        (DAY, '{"analytics":false,"media":false}', 1),
        ("2025-03-02 00:00:00", '{"analytics":true}', 2),
    ]
    assert daily_rates(rows) == (
        DailyRate(DAY, "analytics", granted=3, total=4),
        DailyRate(DAY, "media", granted=0, total=4),
        DailyRate(DAY + timedelta(days=1), "analytics", granted=2, total=2),
    )


def test_key_totals_sum_the_days() -> None:
    stats = Stats(
        by_method={"banner": 6},
        daily=(
            DailyRate(DAY, "analytics", 3, 4),
            DailyRate(DAY + timedelta(days=1), "analytics", 2, 2),
            DailyRate(DAY, "media", 0, 4),
        ),
    )
    assert key_totals(stats) == {"analytics": (5, 6), "media": (0, 4)}


def test_keys_follow_the_policy_or_are_sorted(policy: Policy) -> None:
    keys = ["westlake_map", "zzz_old", "analytics", "aaa_old", "media"]
    assert ordered_keys(policy, keys) == [
        "analytics",
        "media",
        "westlake_map",
        "aaa_old",
        "zzz_old",
    ]
    assert ordered_keys(None, keys) == sorted(keys)


def test_charts_lay_out_a_bar_per_day_with_receipts(policy: Policy) -> None:
    days = [DAY + timedelta(days=n) for n in range(7)]
    stats = Stats(
        by_method={"banner": 9},
        daily=(
            DailyRate(days[0], "analytics", 0, 2),
            DailyRate(days[3], "analytics", 1, 2),
            DailyRate(days[6], "analytics", 2, 2),
            DailyRate(days[6], "old_key", 1, 1),
        ),
    )
    made = charts(policy, stats, days)
    assert [(c.key, c.parent) for c in made] == [
        ("analytics", None),
        ("media", None),
        ("westlake_map", "Embedded media"),
        ("old_key", None),
    ]
    analytics = made[0]
    assert [bar.day for bar in analytics.bars] == [days[0], days[3], days[6]]
    empty, half, full = analytics.bars
    assert half.height == pytest.approx(full.height / 2, abs=0.02)
    assert 0 < empty.height < 2  # a sliver: a day with receipts shows
    assert all(0 <= bar.y <= CHART_HEIGHT for bar in analytics.bars)
    assert analytics.percent == 50
    assert analytics.description == (
        "Opt-in rate of Analytics per day: 50% overall, 3 of 6 receipts, on 3"
        " days with receipts."
    )
    assert made[1].bars == () and made[1].average_y is None
    assert made[1].description == "No receipts listed Embedded media in this period."
    # A service shares its category's colour; an old key is grey.
    assert made[2].color == made[1].color
    assert made[3].color == "#4a5566"
    assert len(analytics.ticks) <= 7

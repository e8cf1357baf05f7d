"""How `make bench` decides a goal from the rounds of one run, and what it
says of the machine the run had."""

from __future__ import annotations

import math
import random

import pytest

from bench.common import at_least
from bench.common import cpu_ticks
from bench.common import goal
from bench.common import judged
from bench.common import median_interval
from bench.common import stolen_share
from bench.common import verdict


def test_the_interval_of_eight_rounds_is_their_range() -> None:
    assert median_interval([5, 1, 4, 2, 8, 7, 3, 6]) == (1, 8)


def test_the_interval_of_24_rounds_drops_six_from_each_end() -> None:
    assert median_interval(range(1, 25)) == (7, 18)


def test_too_few_rounds_give_their_range() -> None:
    assert median_interval([3.0, 1.0, 2.0]) == (1.0, 3.0)
    with pytest.raises(ValueError, match="no values"):
        median_interval([])


@pytest.mark.parametrize("rounds", [8, 15, 24, 40])
def test_the_interval_holds_the_median_at_least_95_percent_of_the_time(
    rounds: int,
) -> None:
    # Skewed, as the rounds of a shared machine are: exponential times,
    # whose median is ln 2.
    draw = random.Random(rounds)
    trials = 4000
    held = 0
    for _ in range(trials):
        low, high = median_interval(draw.expovariate(1.0) for _ in range(rounds))
        held += low <= math.log(2) <= high
    assert held / trials >= 0.94


def test_a_goal_passes_or_fails_only_when_its_whole_interval_does() -> None:
    asks = goal("asking", 1.05, 1.10, fmt=".3f", unit="×")
    below = judged(asks, 1.2, [1.01, 1.03, 1.05, 1.06, 1.08, 1.02, 1.04, 1.07])
    assert verdict(below) == "PASS"
    assert below["interval"] == (1.01, 1.08)
    assert below["measured"] == "1.050× (1.010–1.080)"
    above = judged(asks, 1.2, [1.12, 1.15, 1.11, 1.2, 1.13, 1.14, 1.16, 1.18])
    assert verdict(above) == "FAIL"
    across = judged(asks, 1.2, [1.01, 1.15, 1.05, 1.12, 1.08, 1.02, 1.04, 1.07])
    assert verdict(across) == "UNDECIDED"
    assert across["passed"] is False


def test_a_lower_bound_is_judged_from_the_other_side() -> None:
    posts = at_least("posts", 0.82, 0.80, fmt=".3f", unit="×")
    assert verdict(judged(posts, 1.1, [0.81, 0.82, 0.83, 0.85, 0.82, 0.84])) == "PASS"
    assert verdict(judged(posts, 1.1, [0.71, 0.72, 0.73, 0.75, 0.72, 0.79])) == "FAIL"
    assert (
        verdict(judged(posts, 1.1, [0.78, 0.82, 0.83, 0.85, 0.82, 0.84])) == "UNDECIDED"
    )


def test_a_run_whose_machine_changed_speed_stays_unstable() -> None:
    asks = goal("asking", 1.05, 1.10, fmt=".3f", unit="×")
    shaky = judged(asks, 1.8, [1.01, 1.03, 1.05, 1.06, 1.08, 1.02, 1.04, 1.07])
    assert verdict(shaky) == "UNSTABLE"
    assert shaky["passed"] is False


def test_fewer_than_six_rounds_decide_nothing() -> None:
    asks = goal("asking", 1.05, 1.10, fmt=".3f", unit="×")
    assert verdict(judged(asks, 1.2, [1.01, 1.03, 1.05, 1.06, 1.08])) == "UNDECIDED"
    assert verdict(judged(asks, 1.2, [1.21, 1.23, 1.25, 1.26, 1.28])) == "UNDECIDED"
    assert verdict(judged(asks, 1.2, [1.01, 1.03, 1.05, 1.06, 1.08, 1.02])) == "PASS"


PROC_STAT_BEFORE = "cpu  100 5 50 800 10 1 4 30 0 0\ncpu0 50 2 25 400 5 0 2 15 0 0\n"
PROC_STAT_AFTER = "cpu  160 5 70 900 10 1 4 80 7 0\ncpu0 80 2 35 450 5 0 2 40 7 0\n"


def test_stolen_time_is_the_share_of_steal_in_the_machines_ticks() -> None:
    before = cpu_ticks(PROC_STAT_BEFORE)
    after = cpu_ticks(PROC_STAT_AFTER)
    # All eight counts of the first line; guest time is in user already.
    assert before == (1000, 30)
    assert after == (1230, 80)
    assert stolen_share(before, after) == pytest.approx(50 / 230)


def test_stolen_time_is_unknown_without_two_readings() -> None:
    assert cpu_ticks("") is None
    assert cpu_ticks("intr 1 2 3\n") is None
    assert cpu_ticks("cpu  1 2 3 4\n") is None
    assert stolen_share(None, (10, 1)) is None
    assert stolen_share((10, 1), (10, 1)) is None


def test_this_machine_counts_its_processor_time() -> None:
    # make test runs on Linux: /proc/stat is there.
    ticks = cpu_ticks()
    assert ticks is not None
    total, steal = ticks
    assert 0 <= steal <= total

"""What the benchmarks share: the policy, the key, timing and goal helpers."""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import math
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
import typing as t
from pathlib import Path

from consent import Category
from consent import Policy
from consent import Service

#: The signing key of every benchmark app and codec (32 random-looking bytes).
SECRET_KEY = "bench-secret-key-2f7c9a41d0e35b86"


def bench_policy() -> Policy:
    """Four categories (one required) and ten services, as a mid-size site has."""

    def services(prefix: str, names: cabc.Iterable[str]) -> tuple[Service, ...]:
        return tuple(
            Service(key=f"{prefix}_{name}", title=name.title(), provider="Provider")
            for name in names
        )

    return Policy(
        categories=(
            Category(
                key="necessary",
                title="Strictly necessary",
                description="Remember your choice and keep you signed in.",
                required=True,
            ),
            Category(
                key="analytics",
                title="Analytics",
                description="Count page views and measure what is read.",
                services=services("an", ("matomo", "plausible", "heatmap", "ab")),
            ),
            Category(
                key="marketing",
                title="Marketing",
                description="Measure campaigns and show relevant offers.",
                services=services("mk", ("ads", "pixel", "affiliate")),
            ),
            Category(
                key="media",
                title="Embedded media",
                description="Show videos and maps from other sites.",
                services=services("md", ("video", "map", "social")),
            ),
        ),
        controller="Benchmark site",
    )


def median(values: cabc.Iterable[float]) -> float:
    return statistics.median(list(values))


def calibrate(fn: cabc.Callable[[], object], target: float) -> int:
    """How many calls of ``fn`` take about ``target`` seconds."""
    timer = timeit.Timer(fn)
    number = 1
    while True:
        elapsed = timer.timeit(number)
        if elapsed >= target / 5:
            return max(1, int(number * target / elapsed))
        number *= 2


def interleaved_timeit(
    contenders: cabc.Mapping[str, cabc.Callable[[], object]],
    *,
    rounds: int,
    target: float,
) -> dict[str, list[float]]:
    """Seconds per call of each contender, one sample per round.

    Every round times each contender once, in an order rotated from round to
    round, so that a slow moment of a shared machine hits all of them alike.
    """
    names = list(contenders)
    timers = {name: timeit.Timer(fn) for name, fn in contenders.items()}
    numbers = {name: calibrate(fn, target) for name, fn in contenders.items()}
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            number = numbers[name]
            samples[name].append(timers[name].timeit(number) / number)
    return samples


#: How sure the interval of a median is (:func:`median_interval`).
CONFIDENCE = 0.95


def median_interval(
    values: cabc.Iterable[float], confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """An interval that holds the median of what ``values`` sample, with at
    least ``confidence``, whatever their distribution: the j-th smallest and
    the j-th largest value, j as large as the binomial distribution allows
    (each value is above the true median with probability one half).

    Rounds of a shared machine are not normally distributed, so the
    interval assumes nothing but independent rounds. With 8 values, 95 %
    takes the whole range; with 24, the 7th smallest to the 7th largest.
    With fewer than 6 values no pair reaches 95 %; the range is returned.
    """
    found = sorted(values)
    n = len(found)
    if not n:
        raise ValueError("no values")

    def below(j: int) -> float:
        """The chance that fewer than j values are below the median."""
        return sum(math.comb(n, i) for i in range(j)) / 2**n

    j = 1
    while j + 1 <= n - j and 1 - 2 * below(j + 1) >= confidence:
        j += 1
    return found[j - 1], found[n - j]


def round_ratios(
    samples: cabc.Mapping[str, cabc.Sequence[float]], numerator: str, denominator: str
) -> list[float]:
    """The ratio ``numerator / denominator`` of each round."""
    return [
        a / b for a, b in zip(samples[numerator], samples[denominator], strict=True)
    ]


def paired_ratio(
    samples: cabc.Mapping[str, cabc.Sequence[float]], numerator: str, denominator: str
) -> float:
    """The median of the per-round ratios ``numerator / denominator``."""
    return median(round_ratios(samples, numerator, denominator))


class Goal(t.TypedDict):
    name: str
    goal: str
    #: "≤" or "≥": which side of ``limit`` passes.
    sign: str
    measured: str
    value: float
    limit: float
    passed: bool
    #: The machine changed speed too much during the run to tell.
    unstable: t.NotRequired[bool]
    #: The :data:`CONFIDENCE` interval of ``value``, a median of rounds.
    interval: t.NotRequired[tuple[float, float]]
    #: The limit lies inside ``interval``: the run cannot tell its side.
    undecided: t.NotRequired[bool]


#: Beyond this max/min of a contender's rounds, the machine changed speed too
#: much during a run for its ratios to decide a goal, either way.
MAX_SPREAD = 1.5


def _goal(
    name: str, value: float, limit: float, sign: str, passed: bool, fmt: str, unit: str
) -> Goal:
    return {
        "name": name,
        "goal": f"{sign} {limit:{fmt}}{unit}",
        "sign": sign,
        "measured": f"{value:{fmt}}{unit}",
        "value": value,
        "limit": limit,
        "passed": passed,
    }


def goal(name: str, value: float, limit: float, *, fmt: str, unit: str = "") -> Goal:
    """A goal of the form ``value <= limit``."""
    return _goal(name, value, limit, "≤", value <= limit, fmt, unit)


def at_least(
    name: str, value: float, limit: float, *, fmt: str, unit: str = ""
) -> Goal:
    """A goal of the form ``value >= limit``."""
    return _goal(name, value, limit, "≥", value >= limit, fmt, unit)


def spread(values: cabc.Iterable[float]) -> float:
    """The largest of ``values`` over the smallest: how steady rounds were."""
    found = list(values)
    return max(found) / min(found)


def round_spreads(
    label: str, rounds: cabc.Mapping[str, cabc.Sequence[float]]
) -> dict[str, float]:
    """The :func:`spread` of each contender's rounds; says so when one of
    them is beyond :data:`MAX_SPREAD`."""
    spreads = {name: spread(values) for name, values in rounds.items()}
    worst = max(spreads.values())
    if worst > MAX_SPREAD:
        print(
            f"  UNSTABLE: {label} contenders varied up to {worst:.1f}× between"
            " rounds (the machine is busy); the ratios of this run are not"
            " evidence"
        )
    return spreads


def judged(
    goal: Goal,
    rounds_spread: float,
    rounds: cabc.Sequence[float] | None = None,
) -> Goal:
    """``goal``, judged on the rounds of a run.

    It is left undecided (not passed, shown as UNSTABLE) when the rounds of
    a contender it compares varied more than :data:`MAX_SPREAD`: the ratios
    of such a run are not evidence. Given ``rounds``, the per-round values
    whose median the goal's value is, the goal passes only when the whole
    :func:`median_interval` is on the passing side of its limit and fails
    only when the whole of it is on the other; otherwise, and always with
    fewer than 6 rounds, it is UNDECIDED: the limit is within what the run
    can tell apart.
    """
    if rounds_spread > MAX_SPREAD:
        return {
            **goal,
            "measured": f"{goal['measured']} (rounds varied {rounds_spread:.1f}×)",
            "passed": False,
            "unstable": True,
        }
    if rounds is None:
        return goal
    low, high = median_interval(rounds)
    limit = goal["limit"]
    passes, fails = (high <= limit, low > limit)
    if goal["sign"] == "≥":
        passes, fails = (low >= limit, high < limit)
    # With fewer than 6 rounds even their whole range holds the median less
    # surely than CONFIDENCE: such a run decides nothing.
    if 1 - 2 * 0.5 ** len(rounds) < CONFIDENCE:
        passes = fails = False
    return {
        **goal,
        "measured": f"{goal['measured']} ({low:.3f}–{high:.3f})",
        "interval": (low, high),
        "passed": passes,
        "undecided": not (passes or fails),
    }


#: Where Linux counts the processor time of the whole machine.
PROC_STAT = Path("/proc/stat")


def cpu_ticks(text: str | None = None) -> tuple[int, int] | None:
    """The machine's processor time so far, in clock ticks: all of it, and
    the part the hypervisor gave to other virtual machines while this one
    had work to run (``steal``).

    :param text: The contents of ``/proc/stat``; read when not given.
    :return: ``None`` where there is no such file (not Linux).
    """
    if text is None:
        try:
            text = PROC_STAT.read_text()
        except OSError:
            return None
    fields = text.split("\n", 1)[0].split()
    if len(fields) < 9 or fields[0] != "cpu":
        return None
    # user nice system idle iowait irq softirq steal; guest time is counted
    # in user already.
    counts = [int(value) for value in fields[1:9]]
    return sum(counts), counts[7]


def stolen_share(
    before: tuple[int, int] | None, after: tuple[int, int] | None
) -> float | None:
    """The share of the machine's processor time between two
    :func:`cpu_ticks` that other virtual machines took; ``None`` when it
    cannot be told."""
    if before is None or after is None or after[0] <= before[0]:
        return None
    return (after[1] - before[1]) / (after[0] - before[0])


def verdict(goal: Goal) -> str:
    """PASS, FAIL, UNSTABLE (the machine changed speed too much to tell) or
    UNDECIDED (the goal's limit is within the run's interval)."""
    if goal.get("unstable"):
        return "UNSTABLE"
    if goal.get("undecided"):
        return "UNDECIDED"
    return "PASS" if goal["passed"] else "FAIL"


def print_goals(goals: cabc.Iterable[Goal]) -> None:
    for g in goals:
        print(f"  {verdict(g)}  {g['name']}: {g['measured']} (goal {g['goal']})")


ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).parent / "gunicorn"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def server(
    command: cabc.Callable[[int], list[str]],
    ready: cabc.Callable[[str], bool],
    *,
    name: str,
    env: cabc.Mapping[str, str] | None = None,
) -> cabc.Iterator[str]:
    """Run a server process on a free loopback port.

    ``command(port)`` is its command line. Yields the base URL once
    ``ready(url)`` returns True; ``ready`` raises ``OSError`` while the server
    is not listening yet, and anything else to say the app answers wrongly.
    The server is stopped on exit, whatever happens.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            command(port),
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        try:
            deadline = time.monotonic() + 20
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(
                        f"{name} exited with {proc.returncode}:\n" + log.read().decode()
                    )
                try:
                    if ready(url):
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not answer on {url} within 20 s")
                time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def gunicorn(
    app: str,
    ready: cabc.Callable[[str], bool],
    *,
    options: cabc.Sequence[str] = ("--worker-class=sync",),
    env: cabc.Mapping[str, str] | None = None,
) -> contextlib.AbstractContextManager[str]:
    """Serve ``app`` (a gunicorn app spec) with one worker on 127.0.0.1; see
    :func:`server`."""
    return server(
        lambda port: [
            str(GUNICORN),
            "--workers=1",
            *options,
            f"--bind=127.0.0.1:{port}",
            "--graceful-timeout=5",
            "--log-level=warning",
            "--chdir",
            str(ROOT),
            app,
        ],
        ready,
        name="gunicorn",
        env=env,
    )


def uvicorn(
    factory: str,
    ready: cabc.Callable[[str], bool],
    *,
    env: cabc.Mapping[str, str] | None = None,
) -> contextlib.AbstractContextManager[str]:
    """Serve the app of ``factory`` (``module:function``) with one uvicorn
    process (uvloop and httptools, as ``uvicorn[standard]`` installs) on
    127.0.0.1; see :func:`server`."""
    return server(
        lambda port: [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            factory,
            "--host=127.0.0.1",
            f"--port={port}",
            "--log-level=warning",
            "--no-access-log",
            "--loop=uvloop",
            "--http=httptools",
        ],
        ready,
        name="uvicorn",
        env=env,
    )


_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET_ERRORS = re.compile(r"Socket errors: (.*)")
_REQUESTS = re.compile(r"(\d+) requests in")


def wrk(
    url: str, seconds: int, *options: str, connections: int = 8
) -> dict[str, t.Any]:
    """Load ``url`` with wrk (one thread) for ``seconds``; requests per
    second, requests completed, responses that were not 2xx or 3xx, and
    socket errors. ``options`` go to wrk as they are (``-H``, ``-s``)."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", *options, url],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    rps = _RPS.search(out)
    requests = _REQUESTS.search(out)
    if rps is None or requests is None:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    non_2xx = _NON_2XX.search(out)
    socket_errors = _SOCKET_ERRORS.search(out)
    return {
        "rps": float(rps.group(1)),
        "requests": int(requests.group(1)),
        "non_2xx_3xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else None,
    }

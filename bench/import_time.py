"""Import time of ``consent`` and ``consent.flask`` on top of Flask.

Each sample is a fresh interpreter that imports Flask first, then the
library, timing each import with ``time.perf_counter`` in the process (no
interpreter start-up in the figure). Variants run interleaved; medians are
taken over the runs. A ``-X importtime`` run per round gives the breakdown
by module (it adds its own overhead, so its totals are context only).

Imports read bytecode caches, as a deployed app does: the interpreters use a
private ``PYTHONPYCACHEPREFIX`` (filled by a warm-up run, removed at the end),
so the figures do not depend on ``PYTHONDONTWRITEBYTECODE`` or on whether the
source tree holds ``__pycache__`` directories.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import tempfile
import typing as t
from pathlib import Path

from .common import goal
from .common import median
from .common import print_goals

RUNS = 15
GOAL_MS = 10.0
ROOT = Path(__file__).resolve().parent.parent

_TIMED = """\
import time
t0 = time.perf_counter()
import flask
t1 = time.perf_counter()
import {module}
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""

VARIANTS = ("consent", "consent.flask")


def _env(cache: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = cache
    return env


def _timed(module: str, env: dict[str, str]) -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, "-c", _TIMED.format(module=module)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    flask_s, module_s = out.split()
    return float(flask_s), float(module_s)


def _importtime(env: dict[str, str]) -> list[tuple[int, int, int, str]]:
    """``(level, self µs, cumulative µs, module)`` for every import."""
    err = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-c",
            "import flask; import consent.flask",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stderr
    rows = []
    for line in err.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name = line[len("import time:") :].split("|")
        level = (len(name) - len(name.lstrip()) - 1) // 2
        rows.append((level, int(self_us), int(cumulative_us), name.strip()))
    return rows


def _consent_breakdown(
    rows: list[tuple[int, int, int, str]],
) -> tuple[int, dict[str, int]]:
    """Total cumulative µs of the top-level consent imports, and self µs of
    every module imported under them."""
    total = 0
    own: dict[str, int] = {}
    inside = False
    # Children are printed before their parent: walk backwards from each
    # top-level consent entry.
    for level, self_us, cumulative_us, name in reversed(rows):
        if level == 0:
            inside = name == "consent" or name.startswith("consent.")
            if inside:
                total += cumulative_us
        if inside:
            own[name] = self_us
    return total, own


def run() -> dict[str, t.Any]:
    with tempfile.TemporaryDirectory(prefix="bench-pycache-") as cache:
        return _run(_env(cache))


def _run(env: dict[str, str]) -> dict[str, t.Any]:
    for _ in range(2):  # Write, then read, the bytecode caches.
        _timed("consent.flask", env)
    flask_ms: list[float] = []
    module_ms: dict[str, list[float]] = {v: [] for v in VARIANTS}
    importtime_ms: list[float] = []
    own_us: dict[str, list[int]] = collections.defaultdict(list)
    for round_ in range(RUNS):
        order = VARIANTS if round_ % 2 == 0 else VARIANTS[::-1]
        for variant in order:
            flask_s, module_s = _timed(variant, env)
            flask_ms.append(flask_s * 1e3)
            module_ms[variant].append(module_s * 1e3)
        total_us, own = _consent_breakdown(_importtime(env))
        importtime_ms.append(total_us / 1e3)
        for name, us in own.items():
            own_us[name].append(us)

    medians = {v: median(ms) for v, ms in module_ms.items()}
    flask_median = median(flask_ms)
    ratios = {v: medians[v] / flask_median for v in VARIANTS}
    slowest = sorted(
        ((median(us) / 1e3, name) for name, us in own_us.items()), reverse=True
    )[:6]
    print(f"  {RUNS} fresh interpreters per variant, interleaved; medians")
    print(f"  import flask                 {flask_median:6.1f} ms (context)")
    for variant in VARIANTS:
        print(
            f"  import {variant:<21} {medians[variant]:6.1f} ms"
            f"   {ratios[variant]:.3f}× Flask's own import"
        )
    print(
        f"  -X importtime, consent.flask {median(importtime_ms):6.1f} ms"
        " (cumulative, with importtime's overhead)"
    )
    print(
        "  slowest modules (self): "
        + ", ".join(f"{n} {ms:.1f} ms" for ms, n in slowest)
    )
    goals = [
        goal("import consent", medians["consent"], GOAL_MS, fmt=".1f", unit=" ms"),
        goal(
            "import consent.flask after flask",
            medians["consent.flask"],
            GOAL_MS,
            fmt=".1f",
            unit=" ms",
        ),
    ]
    print_goals(goals)
    return {
        "runs": RUNS,
        "median_ms": {"flask": flask_median, **medians},
        "ratio_to_flask_import": ratios,
        "importtime_cumulative_ms": median(importtime_ms),
        "importtime_self_ms": {n: ms for ms, n in slowest},
        "samples_ms": {"flask": flask_ms, **module_ms},
        "goals": goals,
    }


if __name__ == "__main__":
    run()

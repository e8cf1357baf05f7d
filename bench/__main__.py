"""Run every benchmark, print a compact report, write bench/results/latest.json.

``make bench`` (or ``python -m bench`` from the repository root). Goals that
fail are listed at the end; the exit status is 0 unless a benchmark could
not run at all.
"""

from __future__ import annotations

import datetime
import importlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
import traceback
import typing as t
from pathlib import Path

from .common import cpu_ticks
from .common import stolen_share
from .common import verdict

BENCHMARKS = (
    ("cookie_size", "1. Cookie size"),
    ("decode", "2. Cookie decode vs Flask session load"),
    ("wsgi", "3. Requests/second, Flask under gunicorn and ASGI under uvicorn, + wrk"),
    ("import_time", "4. Import time on top of Flask"),
    ("banner_budget", "5. Banner budget against vanilla-cookieconsent and Klaro"),
    ("receipts", "6. Receipts: consent posts and a 1,000,000-receipt export"),
)
RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
PACKAGES = ("flask", "werkzeug", "itsdangerous", "jinja2", "gunicorn", "cookie-consent")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _command(*args: str) -> str | None:
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else None


def machine() -> dict[str, t.Any]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": versions,
        "wrk": _command("wrk", "-v"),
        "git_commit": _command("git", "rev-parse", "--short", "HEAD"),
        "git_uncommitted_changes": _command("git", "status", "--porcelain") is not None,
        "load_average_start": os.getloadavg(),
    }


def _stolen_text(share: float | None, during: str = "") -> str:
    """What other virtual machines took of this one's processors (steal
    time): one reason, on a shared host, for a run to be UNSTABLE."""
    found = "unknown" if share is None else f"{share:.0%}"
    return f"processor time taken by other virtual machines{during}: {found}"


def main() -> int:
    facts = machine()
    print(
        f"consent benchmarks, {facts['date']}: {facts['cpu_model']},"
        f" {facts['nproc']} CPUs, load {facts['load_average_start'][0]:.2f};"
        f" Python {facts['python']}, Flask {facts['packages']['flask']}"
    )
    results: dict[str, t.Any] = {}
    errors: dict[str, str] = {}
    started = time.monotonic()
    run_ticks = cpu_ticks()
    for module, title in BENCHMARKS:
        print(f"\n{title}")
        begun = time.monotonic()
        ticks = cpu_ticks()
        try:
            results[module] = importlib.import_module(f"bench.{module}").run()
        except Exception:
            errors[module] = traceback.format_exc()
            print(f"  ERROR, this benchmark did not run:\n{errors[module]}")
            continue
        results[module]["elapsed_seconds"] = time.monotonic() - begun
        stolen = results[module]["cpu_stolen_share"] = stolen_share(ticks, cpu_ticks())
        print(f"  {_stolen_text(stolen, ' during this benchmark')}")
    facts["load_average_end"] = os.getloadavg()
    facts["elapsed_seconds"] = time.monotonic() - started
    facts["cpu_stolen_share"] = stolen_share(run_ticks, cpu_ticks())

    goals = [g for r in results.values() for g in r["goals"]]
    failed = [g for g in goals if verdict(g) == "FAIL"]
    unstable = [g for g in goals if verdict(g) == "UNSTABLE"]
    undecided = [g for g in goals if verdict(g) == "UNDECIDED"]
    print(
        f"\nSummary ({facts['elapsed_seconds']:.0f} s;"
        f" {_stolen_text(facts['cpu_stolen_share'])})"
    )
    for g in goals:
        line = f"{g['name']:<38} {g['measured']:>9}  goal {g['goal']}"
        print(f"  {verdict(g):<9}  {line}")
    if failed:
        print(f"\n{len(failed)} goal(s) FAILED:")
        for g in failed:
            print(f"  - {g['name']}: {g['measured']}, goal {g['goal']}")
    if unstable:
        print(
            f"\n{len(unstable)} goal(s) UNSTABLE: the machine changed speed too much"
            " during their run to decide them; run `make bench` again when it is"
            " quieter."
        )
    if undecided:
        print(
            f"\n{len(undecided)} goal(s) UNDECIDED: the goal is inside the 95 %"
            " interval of the run's median (after the median), so its rounds cannot"
            " tell on which side the median is; more rounds narrow the interval."
        )
    for module in errors:
        print(f"  - {module}: did not run (see the error above)")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {"machine": facts, "results": results, "errors": errors},
            indent=2,
            ensure_ascii=False,
        )
        + "\n"
    )
    print(f"\nWrote {RESULTS}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

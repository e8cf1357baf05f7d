"""The demo under load, with PostgreSQL cut off in the middle.

For each adapter (the Flask app under gunicorn, its ASGI twin under
uvicorn, two worker processes each), visitors come for ``LOADTEST_SECONDS``
seconds (40 by default, at most 60) from ``LOADTEST_THREADS`` threads on
loopback. Each visitor is new (no cookies): it loads the article, and half
of them then post a choice from its banner form with the page's CSRF token
(accept all, reject all, or analytics only), as a browser does; the others
open the cookie declaration. PostgreSQL is reached through a TCP proxy this
script owns, cut for ``LOADTEST_OUTAGE`` seconds (10) in the middle of the
run: the shared server itself is never stopped.

It prints requests per second, latency percentiles, errors (5xx, 503 and
connection errors, each counted), and the receipts found in the database
against the consent posts answered, once the outage is over and within a
bounded wait; then writes them to ``docs/reliability.md`` between its
markers. Every post comes from 127.0.0.1, so the per-client limit is off
(``CONSENT_RATE_LIMIT=None``).

Run it with ``make loadtest`` or ``python -m bench.loadtest``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import typing as t
from pathlib import Path

import psycopg

from tests.pgproxy import TCPProxy
from tests.servers import DemoServer
from tests.servers import Visitor

from .common import ROOT
from .receipts import postgres_role

SECONDS = min(int(os.environ.get("LOADTEST_SECONDS", "40")), 60)
OUTAGE = int(os.environ.get("LOADTEST_OUTAGE", "10"))
THREADS = int(os.environ.get("LOADTEST_THREADS", "8"))
WORKERS = 2
#: Seconds the receipts may take to reach the database after the load.
SETTLE = 60.0
ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
REPORT = ROOT / "docs" / "reliability.md"
START = "<!-- loadtest:start -->"
END = "<!-- loadtest:end -->"

_ACTIONS = ("accept_all", "reject_all", "save")


@dataclasses.dataclass
class Tally:
    """What the visitors saw, shared by the load threads."""

    latencies: list[float] = dataclasses.field(default_factory=list)
    statuses: dict[int, int] = dataclasses.field(default_factory=dict)
    connection_errors: int = 0
    posts_answered: int = 0
    posts_503: int = 0
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def add(self, status: int, seconds: float) -> None:
        with self.lock:
            self.latencies.append(seconds)
            self.statuses[status] = self.statuses.get(status, 0) + 1


def _visit(url: str, tally: Tally, rng: random.Random) -> None:
    """One new visitor: the article, then a choice or the declaration."""
    with Visitor(url) as visitor:
        started = time.perf_counter()
        status, html = visitor.get("/")
        tally.add(status, time.perf_counter() - started)
        if status != 200:
            return
        if rng.random() < 0.5:
            started = time.perf_counter()
            status, _ = visitor.get("/consent/declaration")
            tally.add(status, time.perf_counter() - started)
            return
        action = rng.choice(_ACTIONS)
        token = visitor.csrf_token(html)
        started = time.perf_counter()
        status = visitor.post_choice(action, token, chosen=("analytics",))
        tally.add(status, time.perf_counter() - started)
        with tally.lock:
            if status in (200, 303):
                tally.posts_answered += 1
            elif status == 503:
                tally.posts_503 += 1


def _load(url: str, tally: Tally, stop: threading.Event, seed: int) -> None:
    rng = random.Random(seed)
    while not stop.is_set():
        try:
            _visit(url, tally, rng)
        except (OSError, ValueError):
            with tally.lock:
                tally.connection_errors += 1


def _receipts(role: str) -> int:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT count(*) FROM information_schema.tables"
            " WHERE table_schema = %s AND table_name = 'consent_receipts'",
            (role,),
        ).fetchone()
        if not exists or not exists[0]:
            return 0
        row = conn.execute(f"SELECT count(*) FROM {role}.consent_receipts").fetchone()
    return int(row[0]) if row else 0


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run_adapter(adapter: t.Literal["flask", "asgi"]) -> dict[str, t.Any]:
    """Load one twin through an outage; return its figures."""
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(postgres_role())
        role = url.split("//", 1)[1].split("@", 1)[0].split(":", 1)[0]
        proxy = stack.enter_context(TCPProxy(("127.0.0.1", 5432)))
        spool_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        env = {
            "CONSENT_RECEIPTS_URL": proxy.url(user=role),
            "CONSENT_RECEIPTS_SPOOL_DIR": str(spool_dir),
            "CONSENT_RATE_LIMIT": "null",
        }
        server = stack.enter_context(DemoServer(adapter, workers=WORKERS, env=env))
        tally = Tally()
        stop = threading.Event()
        threads = [
            threading.Thread(target=_load, args=(server.url, tally, stop, n))
            for n in range(THREADS)
        ]
        cut_at = (SECONDS - OUTAGE) / 2
        load_before = os.getloadavg()[0]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        try:
            time.sleep(cut_at)
            proxy.cut()
            cut_began = time.monotonic()
            time.sleep(OUTAGE)
            proxy.restore()
            back_at = time.monotonic()
            time.sleep(max(0.0, SECONDS - (back_at - began)))
        finally:
            stop.set()
            for thread in threads:
                thread.join(60)
        elapsed = time.monotonic() - began
        load_after = os.getloadavg()[0]
        outage = back_at - cut_began
        answered = tally.posts_answered
        stopped = time.monotonic()
        deadline = stopped + SETTLE
        while (found := _receipts(role)) < answered and time.monotonic() < deadline:
            time.sleep(0.5)
        settled = time.monotonic() - stopped
        errors_5xx = sum(n for s, n in tally.statuses.items() if s >= 500)
        requests = sum(tally.statuses.values())
    return {
        "adapter": adapter,
        "server": (
            f"gunicorn, {WORKERS} gthread workers of 4 threads"
            if adapter == "flask"
            else f"uvicorn, {WORKERS} workers"
        ),
        "seconds": elapsed,
        "outage_seconds": outage,
        "threads": THREADS,
        "requests": requests,
        "requests_per_second": requests / elapsed,
        "p50_ms": statistics.median(tally.latencies) * 1e3,
        "p99_ms": _percentile(tally.latencies, 0.99) * 1e3,
        "max_ms": max(tally.latencies) * 1e3,
        "statuses": dict(sorted(tally.statuses.items())),
        "errors_5xx": errors_5xx,
        "posts_503": tally.posts_503,
        "connection_errors": tally.connection_errors,
        "posts_answered": answered,
        "receipts_found": found,
        "seconds_to_settle": settled,
        "load_average": (load_before, load_after),
    }


def _machine() -> str:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} CPUs, Linux {platform.release()}"


def _commit() -> str:
    out = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    commit = out.stdout.strip() or "unknown"
    return commit + (" (with changes)" if dirty.stdout.strip() else "")


def table(result: dict[str, t.Any], *, date: str, machine: str, commit: str) -> str:
    """The Markdown table of one adapter's run."""
    ok = (
        result["errors_5xx"] == 0
        and result["connection_errors"] == 0
        and result["receipts_found"] == result["posts_answered"]
    )
    rows = [
        ("Date, machine, commit", f"{date}; {machine}; `{commit}`"),
        (
            "Load average (1 min) at start and end",
            "{:.2f} and {:.2f}".format(*result["load_average"]),
        ),
        ("Server", result["server"]),
        (
            "Load",
            f"{result['threads']} visitor threads for {result['seconds']:.0f} s;"
            f" PostgreSQL cut for {result['outage_seconds']:.0f} s in the middle",
        ),
        ("Requests per second", f"{result['requests_per_second']:.0f}"),
        (
            "Latency p50 / p99 / max",
            f"{result['p50_ms']:.1f} / {result['p99_ms']:.1f} /"
            f" {result['max_ms']:.0f} ms",
        ),
        (
            "Responses",
            ", ".join(f"{n} × {s}" for s, n in result["statuses"].items()),
        ),
        (
            "5xx, of them 503 for a grant not kept; connection errors",
            f"{result['errors_5xx']}, {result['posts_503']};"
            f" {result['connection_errors']}",
        ),
        (
            "Receipts in PostgreSQL / consent posts answered",
            f"{result['receipts_found']} / {result['posts_answered']},"
            f" all there {result['seconds_to_settle']:.1f} s after the load stopped"
            f" (bounded wait: {SETTLE:.0f} s)",
        ),
        (
            "Goal (no error, every answered post's receipt kept)",
            "met" if ok else "NOT met",
        ),
    ]
    title = "Flask app" if result["adapter"] == "flask" else "ASGI twin"
    lines = [f"### {title}", "", "| | |", "| --- | --- |"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines) + "\n"


def write_report(results: list[dict[str, t.Any]]) -> None:
    """Put the tables between the markers of ``docs/reliability.md``."""
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine, commit = _machine(), _commit()
    body = "\n".join(
        table(result, date=date, machine=machine, commit=commit) for result in results
    )
    text = REPORT.read_text()
    head, found, rest = text.partition(START)
    _, found_end, tail = rest.partition(END)
    if not (found and found_end):
        raise RuntimeError(f"{REPORT} lacks the markers {START} and {END}.")
    REPORT.write_text(f"{head}{START}\n{body}{END}{tail}")
    print(f"  written to {REPORT.relative_to(ROOT)}")


def run() -> list[dict[str, t.Any]]:
    results = []
    for adapter in ("flask", "asgi"):
        print(
            f"{adapter}: {SECONDS} s of visitors from {THREADS} threads,"
            f" PostgreSQL cut for {OUTAGE} s in the middle",
            flush=True,
        )
        result = run_adapter(adapter)
        results.append(result)
        load = result["load_average"]
        print(
            f"  {result['requests_per_second']:.0f} requests/s,"
            f" p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms;"
            f" statuses {result['statuses']};"
            f" 5xx {result['errors_5xx']} (503 {result['posts_503']}),"
            f" connection errors {result['connection_errors']};"
            f" receipts {result['receipts_found']} for"
            f" {result['posts_answered']} posts answered"
            f" ({result['seconds_to_settle']:.1f} s after the load stopped);"
            f" load average {load[0]:.2f} -> {load[1]:.2f}",
            flush=True,
        )
    write_report(results)
    return results


if __name__ == "__main__":
    failed = [
        r
        for r in run()
        if r["errors_5xx"]
        or r["connection_errors"]
        or r["receipts_found"] != r["posts_answered"]
    ]
    sys.exit(1 if failed else 0)

"""Where a receipt's cost goes: each step of the write path, side by side.

The same consent post as ``bench/receipts.py`` (gunicorn, wrk, an "Accept
all" form post of a new visitor), served by several apps at once, each
stopping the write path at another step:

- ``built``: the receipt and its spool line are made, nothing is written;
- ``written``: the line is written to a file with ``O_DSYNC``, and that is
  all (no shipper);
- ``logged``: the spool log as shipped, with nothing handed to the shipper;
- ``shipped``: the whole path, the store written behind;
- ``before``: the whole path of an earlier commit (``BENCH_STEPS_BEFORE``,
  unset by default), whose ``src/`` is taken with ``git archive``.

The steps are made by replacing parts of the library in the served app only:
a diagnostic, not a way to run it. Ratios are medians of the per-round
ratios to receipts off. ``python -m bench.receipt_steps`` runs it;
``BENCH_STEPS`` picks the steps (``built,written,logged,shipped``),
``BENCH_STEPS_STORE`` the store (``sqlite`` or ``postgresql``),
``BENCH_STEPS_WORKERS`` the gunicorn workers (threads are 8 in all),
``BENCH_RECEIPTS_ROUNDS`` and ``BENCH_RECEIPTS_SECONDS`` the rounds.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import threading
import typing as t
from pathlib import Path

from .common import ROOT
from .common import gunicorn
from .common import median
from .common import paired_ratio
from .common import wrk
from .receipts import _lua
from .receipts import _post
from .receipts import create as create_app
from .receipts import form_post
from .receipts import postgres_role

if t.TYPE_CHECKING:
    from flask import Flask

ROUNDS = int(os.environ.get("BENCH_RECEIPTS_ROUNDS", "5"))
SECONDS = int(os.environ.get("BENCH_RECEIPTS_SECONDS", "4"))
STEPS = os.environ.get("BENCH_STEPS", "built,written,logged,shipped")
STORE = os.environ.get("BENCH_STEPS_STORE", "sqlite")
WORKERS = int(os.environ.get("BENCH_STEPS_WORKERS", "1"))
BEFORE = os.environ.get("BENCH_STEPS_BEFORE", "")


def _write_only() -> t.Callable[..., None]:
    files: dict[str, int] = {}
    lock = threading.Lock()

    def record(self: t.Any, receipt: t.Any, texts: t.Any = None) -> None:
        path = self.spool_path + ".step"
        fd = files.get(path)
        if fd is None:
            with lock:
                fd = files.get(path)
                if fd is None:
                    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_DSYNC
                    fd = files[path] = os.open(path, flags, 0o600)
        os.write(fd, receipt.to_json().encode() + b"\n")

    return record


def create(kind: str = "off", step: str = "shipped") -> Flask:
    """The bench app of ``kind``, its write path stopped at ``step`` (a
    gunicorn factory)."""
    from consent.receipts import spool

    if step == "built":
        spool.DurableRecorder.record = (  # type: ignore[method-assign]
            lambda self, receipt, texts=None: receipt.to_json()
        )
    elif step == "written":
        spool.DurableRecorder.record = _write_only()  # type: ignore[method-assign]
    elif step == "logged":
        spool.DurableRecorder._written = (  # type: ignore[method-assign]
            lambda self, entry, gen, has_foreign: None
        )
    return create_app(kind)


def _before_tree(work: Path) -> Path:
    """The ``src/`` of the commit ``BEFORE``, unpacked in ``work``."""
    archive = subprocess.run(
        ["git", "archive", BEFORE, "src"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(work)], input=archive, check=True)
    return work / "src"


def run() -> dict[str, t.Any]:
    cookie, body = form_post()
    steps = [s for s in STEPS.split(",") if s]
    names = ["off", *steps, *(["before"] if BEFORE else [])]
    threads = 8 // WORKERS
    options = (f"--workers={WORKERS}", "--worker-class=gthread", f"--threads={threads}")
    print(
        f"  {ROUNDS} rounds of {SECONDS} s, {STORE}, gunicorn {WORKERS} worker(s) of"
        f" {threads} threads, wrk -c8; steps: {', '.join(names[1:])}"
    )
    rps: dict[str, list[float]] = {name: [] for name in names}
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=ROOT)))
        script = work / "post.lua"
        script.write_text(_lua(cookie, body))
        pg = stack.enter_context(postgres_role()) if STORE == "postgresql" else ""
        paths = [str(ROOT)]
        if BEFORE:
            paths.insert(0, str(_before_tree(work)))

        def ready(base: str) -> bool:
            if _post(base, cookie, body) != 303:
                raise RuntimeError(f"POST {base}/consent did not answer 303")
            return True

        urls = {}
        for name in names:
            kind = "off" if name == "off" else STORE
            step = "shipped" if name in ("off", "before") else name
            env = {
                "BENCH_RECEIPTS_INSTANCE": str(work / name),
                "BENCH_RECEIPTS_URL": pg,
                "PYTHONPATH": os.pathsep.join(
                    paths if name == "before" else paths[-1:]
                ),
            }
            spec = (
                f"bench.receipts:create('{kind}')"
                if name == "before"
                else f"bench.receipt_steps:create('{kind}', '{step}')"
            )
            urls[name] = stack.enter_context(
                gunicorn(spec, ready, options=options, env=env)
            )
        for name in names:
            wrk(urls[name] + "/consent", 1, "-s", str(script))
        for round_ in range(ROUNDS):
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                result = wrk(urls[name] + "/consent", SECONDS, "-s", str(script))
                if result["non_2xx_3xx"]:
                    raise RuntimeError(f"{name}: answers that were not 2xx or 3xx")
                rps[name].append(result["rps"])
            print(
                f"  round {round_ + 1}: "
                + "  ".join(f"{n}={rps[n][-1]:.0f}" for n in names)
            )
    ratios = {name: paired_ratio(rps, name, "off") for name in names}
    for name in names:
        print(
            f"  {name:<8} {median(rps[name]):7.1f} posts/s"
            f"  {ratios[name]:5.3f}× receipts off"
        )
    return {"rps": rps, "ratio_to_off": ratios}


if __name__ == "__main__":
    run()

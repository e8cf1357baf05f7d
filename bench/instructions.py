"""Instructions per request, counted, for the request path budget.

Times on a shared machine move with everything else it runs; the number of
instructions a request executes does not. Valgrind's callgrind counts them:
for each app of :mod:`bench.wsgi` (both adapters, the ASGI floor too), a
child process builds the app, serves 300 requests in process to warm it up,
then ``N`` more; the same child with ``N = 0`` gives what start-up and
warm-up cost, and the difference divided by ``N`` is the instructions of
one request. Instructions are not time (a cache miss costs more than an
addition), but a change that removes work shows here whatever the machine
is doing. The children share one hash seed, so that the two runs of an
app differ only by the requests they serve.

Run with ``python -m bench.instructions`` (about five minutes on two
processors); needs ``valgrind`` (``apt-get install valgrind``).
"""

from __future__ import annotations

import asyncio
import collections.abc as cabc
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import typing as t

from . import apps
from . import asgi_apps
from .common import ROOT

#: Requests counted per app, after the warm-up.
REQUESTS = int(os.environ.get("BENCH_INSTRUCTIONS_REQUESTS", "300"))
WARMUP = 300
KINDS = {
    "flask": ("plain", "consent", "consent_unasked", "session"),
    "asgi": ("plain", "consent", "consent_unasked", "session", "passthrough"),
}
_COLLECTED = re.compile(r"Collected : (\d+)")


def cookie_of(adapter: str, kind: str) -> str:
    """The Cookie header of every request to the app ``kind`` of ``adapter``."""
    cookie = f"consent={apps.consent_cookie()}"
    if kind == "session":
        module = apps if adapter == "flask" else asgi_apps
        cookie += f"; session={module.session_cookie()}"
    return cookie


def flask_request(kind: str) -> cabc.Callable[[], bytes]:
    """One in-process request to the Flask app ``kind``."""
    return apps.wsgi_call(apps.create(kind), cookie_of("flask", kind))


def asgi_request(kind: str) -> cabc.Callable[[], cabc.Awaitable[None]]:
    """One in-process request to the ASGI app ``kind``, to await."""
    app = asgi_apps.app_of(kind)
    headers = asgi_apps.request_headers(cookie_of("asgi", kind))

    async def send(message: t.Any) -> None:
        pass

    async def one() -> None:
        await app(asgi_apps.scope(headers), asgi_apps.receive, send)

    return one


def _serve_flask(kind: str, count: int) -> None:
    call = flask_request(kind)
    for _ in range(count):
        call()


def _serve_asgi(kind: str, count: int) -> None:
    one = asgi_request(kind)

    async def serve() -> None:
        for _ in range(count):
            await one()

    asyncio.run(serve())


def _count(adapter: str, kind: str, requests: int) -> int:
    """Instructions of a child that serves ``WARMUP + requests`` requests."""
    out = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            "-m",
            "bench.instructions",
            "--child",
            adapter,
            kind,
            str(WARMUP + requests),
        ],
        cwd=ROOT,
        # The same hash seed for every child: sets and dicts of strings lay
        # out alike, so the two runs of an app differ only by the requests.
        env={**os.environ, "PYTHONHASHSEED": "0"},
        capture_output=True,
        text=True,
        timeout=1800,
        check=True,
    )
    found = _COLLECTED.search(out.stderr)
    if found is None:
        raise RuntimeError(f"cannot read callgrind's output:\n{out.stderr}")
    return int(found.group(1))


def per_request(adapter: str, kind: str) -> int:
    """Instructions of one request of the app ``kind`` of ``adapter``."""
    return (_count(adapter, kind, REQUESTS) - _count(adapter, kind, 0)) // REQUESTS


def run() -> dict[str, dict[str, int]]:
    if shutil.which("valgrind") is None:
        raise RuntimeError("valgrind is not installed (apt-get install valgrind)")
    jobs = [(adapter, kind) for adapter, kinds in KINDS.items() for kind in kinds]
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        counts = pool.map(lambda job: per_request(*job), jobs)
        counted = dict(zip(jobs, counts, strict=True))
    print(f"  instructions per request (callgrind, {REQUESTS} requests in process)")
    result: dict[str, dict[str, int]] = {}
    for adapter, kinds in KINDS.items():
        plain = counted[adapter, "plain"]
        result[adapter] = {kind: counted[adapter, kind] for kind in kinds}
        for kind in kinds:
            count = counted[adapter, kind]
            print(
                f"  {adapter:5} {kind:16} {count:9,d}  {count - plain:+8,d}"
                f"  {count / plain:5.3f}×"
            )
    return result


def _child(argv: cabc.Sequence[str]) -> None:
    adapter, kind, count = argv
    serve = _serve_flask if adapter == "flask" else _serve_asgi
    serve(kind, int(count))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2:])
    else:
        run()

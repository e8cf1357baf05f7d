"""Requests per second under a real server and wrk, with and without the
adapter, for Flask (gunicorn) and ASGI (uvicorn): the request path budget.

Each contender is one server process (one worker) on its own free loopback
port. The four of an adapter are started together, each is checked to answer
the expected page and warmed up with a short wrk run; then every round loads
each of them once with wrk, in an order rotated from round to round, and all
are stopped at the end. Short runs interleaved many times cancel more of a
shared machine's noise than a few long ones. Ratios are medians of the
per-round ratios of time per request (1 / requests per second) to the plain
app's.

Every request carries the same valid consent cookie (granting everything);
the session contender's requests also carry a session cookie: the
framework's own signed cookie, the reference cost. See :mod:`bench.apps` and
:mod:`bench.asgi_apps` for what each app does.

Context: the same apps called in process (a WSGI call, or an ASGI call on
one event loop, with the same headers; no server and no network), timed
interleaved, which shows the microseconds each one adds per request without
the loopback and server costs that dilute the ratios above. In process, the
ASGI apps have a fifth contender, the floor: a middleware that only wraps
``send`` and reads the response's headers
(:class:`bench.asgi_apps.PassThrough`).
"""

from __future__ import annotations

import asyncio
import collections.abc as cabc
import contextlib
import os
import shutil
import typing as t
import urllib.error
import urllib.request

from . import apps
from . import asgi_apps
from .common import Goal
from .common import goal
from .common import gunicorn
from .common import interleaved_timeit
from .common import judged
from .common import median
from .common import paired_ratio
from .common import print_goals
from .common import round_ratios
from .common import round_spreads
from .common import uvicorn
from .common import wrk

ROUNDS = int(os.environ.get("BENCH_WSGI_ROUNDS", "8"))
DURATION = int(os.environ.get("BENCH_WSGI_SECONDS", "3"))
WARMUP = 1
IN_PROCESS_ROUNDS = 15
#: ASGI requests per timed call in process (one run of the event loop).
ASGI_BATCH = 50
CONNECTIONS = 8
#: A page that asks consent.allows: at most this much slower than without.
GOAL_ASKED = 1.10
#: "No measurable overhead": within the run-to-run noise of this setup.
GOAL_UNASKED = 1.03

CONTENDERS = {
    "a": ("plain", "no adapter"),
    "b": ("consent", "adapter, page asks consent.allows"),
    "c": ("consent_unasked", "adapter, page never asks"),
    "d": ("session", "no adapter, page reads session['x']"),
}
#: The contenders timed in process: those above and, under ASGI only, the floor.
IN_PROCESS = {
    **CONTENDERS,
    "e": ("passthrough", "floor: a pass-through middleware"),
}

Serve = cabc.Callable[[str, str], contextlib.AbstractContextManager[str]]


def _get(url: str, cookie: str) -> bytes:
    req = urllib.request.Request(url, headers={"Cookie": cookie})
    with urllib.request.urlopen(req, timeout=2) as response:
        return t.cast(bytes, response.read())


def _ready(cookie: str) -> cabc.Callable[[str], bool]:
    def ready(base: str) -> bool:
        try:
            body = _get(base + "/", cookie)
        except urllib.error.HTTPError as err:
            raise RuntimeError(f"{base}/ answered {err.code}") from err
        if apps.ANALYTICS_TAG.encode() not in body:
            raise RuntimeError(f"{base}/ answered a page without the analytics tag")
        return True

    return ready


def serve_flask(kind: str, cookie: str) -> contextlib.AbstractContextManager[str]:
    """gunicorn (one sync worker) serving the Flask app ``kind``."""
    return gunicorn(f"bench.apps:create('{kind}')", _ready(cookie))


def serve_asgi(kind: str, cookie: str) -> contextlib.AbstractContextManager[str]:
    """uvicorn (one process) serving the Starlette app ``kind``."""
    return uvicorn(
        "bench.asgi_apps:create", _ready(cookie), env={"BENCH_ASGI_KIND": kind}
    )


def get_load(url: str, cookie: str, seconds: int) -> dict[str, t.Any]:
    """wrk sending GET requests with ``cookie`` to ``url``."""
    return wrk(url, seconds, "-H", f"Cookie: {cookie}", connections=CONNECTIONS)


def measure(
    label: str, serve: Serve, cookies: cabc.Mapping[str, str]
) -> dict[str, t.Any]:
    """Load the four contenders of one adapter, interleaved; their median
    requests per second and ratios of time per request to (a)."""
    letters = list(CONTENDERS)
    runs: dict[str, list[dict[str, t.Any]]] = {k: [] for k in letters}
    with contextlib.ExitStack() as stack:
        urls = {
            letter: stack.enter_context(serve(kind, cookies[letter])) + "/"
            for letter, (kind, _) in CONTENDERS.items()
        }
        for letter in letters:
            get_load(urls[letter], cookies[letter], WARMUP)
        for round_ in range(ROUNDS):
            shift = round_ % len(letters)
            for letter in letters[shift:] + letters[:shift]:
                result = get_load(urls[letter], cookies[letter], DURATION)
                if result["non_2xx_3xx"]:
                    raise RuntimeError(
                        f"{label} {CONTENDERS[letter][0]}:"
                        f" {result['non_2xx_3xx']} non-2xx responses"
                    )
                runs[letter].append(result)
            line = "  ".join(f"{k}={runs[k][-1]['rps']:7.1f}" for k in letters)
            print(f"  {label} round {round_ + 1}: req/s {line}")
    rps = {k: [r["rps"] for r in runs[k]] for k in letters}
    per_round = {k: round_ratios(rps, "a", k) for k in letters}
    ratios = {k: median(per_round[k]) for k in letters}
    for letter, (_kind, what) in CONTENDERS.items():
        per_request = 1e6 / median(rps[letter])
        print(
            f"  {label} ({letter}) {what:<38} {ratios[letter]:5.3f}×"
            f"   ({median(rps[letter]):7.1f} req/s, {per_request:6.0f} µs/req)"
        )
    spreads = round_spreads(label, rps)
    return {
        "runs": runs,
        "median_rps": {k: median(v) for k, v in rps.items()},
        "ratio_time_per_request": ratios,
        "round_ratios": per_round,
        "spreads": spreads,
    }


def _in_process(cookies: cabc.Mapping[str, str]) -> dict[str, list[float]]:
    """Seconds per in-process WSGI call of each Flask contender, per round."""

    def caller(kind: str, cookie: str) -> cabc.Callable[[], bytes]:
        call = apps.wsgi_call(apps.create(kind), cookie)
        assert apps.ANALYTICS_TAG.encode() in call()
        return call

    contenders = {
        letter: caller(kind, cookies[letter])
        for letter, (kind, _) in CONTENDERS.items()
    }
    return interleaved_timeit(contenders, rounds=IN_PROCESS_ROUNDS, target=0.1)


def _asgi_in_process(cookies: cabc.Mapping[str, str]) -> dict[str, list[float]]:
    """Seconds per in-process ASGI request of each contender and of the
    floor (``e``), per round."""
    loop = asyncio.new_event_loop()
    sent: list[t.Any] = []
    receive = asgi_apps.receive

    async def send(message: t.Any) -> None:
        sent.append(message)

    def caller(kind: str, cookie: str) -> cabc.Callable[[], object]:
        app = asgi_apps.app_of(kind)
        headers = asgi_apps.request_headers(cookie)

        async def batch() -> None:
            for _ in range(ASGI_BATCH):
                await app(asgi_apps.scope(headers), receive, send)
            sent.clear()

        def call() -> None:
            loop.run_until_complete(batch())

        loop.run_until_complete(app(asgi_apps.scope(headers), receive, send))
        body = b"".join(m.get("body", b"") for m in sent if "body" in m)
        sent.clear()
        assert apps.ANALYTICS_TAG.encode() in body, kind
        return call

    plain = cookies["a"]
    try:
        contenders = {
            letter: caller(kind, cookies.get(letter, plain))
            for letter, (kind, _) in IN_PROCESS.items()
        }
        samples = interleaved_timeit(contenders, rounds=IN_PROCESS_ROUNDS, target=0.1)
    finally:
        loop.close()
    return {k: [s / ASGI_BATCH for s in v] for k, v in samples.items()}


def _print_in_process(
    label: str, samples: cabc.Mapping[str, list[float]]
) -> dict[str, t.Any]:
    """Print the in-process context of one adapter; its figures."""
    micro = {k: median(v) * 1e6 for k, v in samples.items()}
    ratios = {k: paired_ratio(samples, k, "a") for k in samples}
    print(f"  context, {label} in process (no server), {IN_PROCESS_ROUNDS} rounds:")
    for letter in samples:
        what = IN_PROCESS[letter][1]
        added = micro[letter] - micro["a"]
        print(
            f"  ({letter}) {ratios[letter]:5.3f}×"
            f"   ({micro[letter]:6.1f} µs/req, {added:+6.1f} µs vs (a))  {what}"
        )
    return {
        "rounds": IN_PROCESS_ROUNDS,
        "median_microseconds": micro,
        "ratio_time_per_request": ratios,
        "samples_seconds": dict(samples),
    }


def _goals(label: str, measured: cabc.Mapping[str, t.Any]) -> list[Goal]:
    ratios = measured["ratio_time_per_request"]
    rounds = measured["round_ratios"]
    spreads = measured["spreads"]

    def worst(letters: str) -> float:
        return max(spreads[letter] for letter in letters)

    # The asking cost and its bound, Flask's session, are read together:
    # both are judged on the rounds of (a), (b) and (d).
    return [
        judged(
            goal(
                f"{label} (b)/(a), asking",
                ratios["b"],
                GOAL_ASKED,
                fmt=".3f",
                unit="×",
            ),
            worst("abd"),
            rounds["b"],
        ),
        judged(
            goal(
                f"{label} (b)/(a) within its session's",
                ratios["b"],
                ratios["d"],
                fmt=".3f",
                unit="×",
            ),
            worst("abd"),
        ),
        judged(
            goal(
                f"{label} (c)/(a), never asking",
                ratios["c"],
                GOAL_UNASKED,
                fmt=".3f",
                unit="×",
            ),
            worst("ac"),
            rounds["c"],
        ),
    ]


def run() -> dict[str, t.Any]:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    consent = f"consent={apps.consent_cookie()}"
    base = {"a": consent, "b": consent, "c": consent}
    flask_cookies = {**base, "d": f"{consent}; session={apps.session_cookie()}"}
    asgi_cookies = {**base, "d": f"{consent}; session={asgi_apps.session_cookie()}"}
    print(
        f"  {ROUNDS} rounds × 4 apps per adapter, wrk -t1 -c{CONNECTIONS}"
        f" -d{DURATION}s each (after a {WARMUP} s warm-up); gunicorn (1 sync"
        " worker) for Flask, uvicorn (1 process, uvloop, httptools) for ASGI"
    )
    flask = measure("flask", serve_flask, flask_cookies)
    asgi = measure("asgi", serve_asgi, asgi_cookies)

    flask_in_process = _print_in_process("Flask", _in_process(flask_cookies))
    asgi_in_process = _print_in_process("ASGI", _asgi_in_process(asgi_cookies))

    goals = [
        *_goals("flask", flask),
        *_goals("asgi", asgi),
    ]
    print_goals(goals)
    return {
        "rounds": ROUNDS,
        "seconds": DURATION,
        "connections": CONNECTIONS,
        "contenders": {k: {"app": v[0], "what": v[1]} for k, v in CONTENDERS.items()},
        "flask": flask,
        "asgi": asgi,
        "in_process": flask_in_process,
        "asgi_in_process": asgi_in_process,
        "goals": goals,
    }


if __name__ == "__main__":
    run()

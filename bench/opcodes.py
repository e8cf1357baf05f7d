"""Python bytecode per request, function by function, against the plain app.

:mod:`bench.instructions` says how much one request of each app of
benchmark 3 costs; this says where it goes. ``sys.settrace`` with opcode
events counts the bytecode instructions each Python function runs during
one request, served in process after a warm-up, and the app is compared
with the plain app of the same adapter function by function. The counts
are exact and repeatable, whatever else the machine is doing; work done in
C (regular expressions, hashing, dict operations) counts only as the
bytecode that calls it.

Run with ``python -m bench.opcodes [flask|asgi] [KIND]`` (the Flask page
that asks by default; KIND is one of the kinds of :mod:`bench.instructions`).
"""

from __future__ import annotations

import asyncio
import collections
import re
import sys
import types
import typing as t

from .common import ROOT
from .instructions import KINDS
from .instructions import asgi_request
from .instructions import flask_request

WARMUP = 200
#: Differences shown, largest first.
TOP = 40

Counts = collections.Counter[str]


#: What a file's path is shown without: the folder its package lives in.
_PREFIX = re.compile(r"^.*(?:/site-packages/|/src/|/lib/python3\.\d+/)")


def _where(frame: types.FrameType) -> str:
    path = frame.f_code.co_filename
    path = path.removeprefix(f"{ROOT}/") if path.startswith(f"{ROOT}/bench/") else path
    path = _PREFIX.sub("", path)
    return f"{path}:{frame.f_code.co_name}"


def _tracer(counts: Counts) -> t.Any:
    def enter(frame: types.FrameType, event: str, arg: object) -> t.Any:
        frame.f_trace_opcodes = True
        key = _where(frame)

        def step(frame: types.FrameType, event: str, arg: object) -> t.Any:
            if event == "opcode":
                counts[key] += 1
            return step

        return step

    return enter


def _flask(kind: str) -> Counts:
    call = flask_request(kind)
    for _ in range(WARMUP):
        call()
    counts: Counts = collections.Counter()
    sys.settrace(_tracer(counts))
    try:
        call()
    finally:
        sys.settrace(None)
    return counts


def _asgi(kind: str) -> Counts:
    one = asgi_request(kind)
    counts: Counts = collections.Counter()

    async def serve() -> None:
        for _ in range(WARMUP):
            await one()
        sys.settrace(_tracer(counts))
        try:
            await one()
        finally:
            sys.settrace(None)

    asyncio.run(serve())
    return counts


def per_function(adapter: str, kind: str) -> Counts:
    """Bytecode instructions each function runs in one request."""
    return _flask(kind) if adapter == "flask" else _asgi(kind)


def run(adapter: str = "flask", kind: str = "consent") -> Counts:
    if kind not in KINDS.get(adapter, ()):
        raise SystemExit(
            f"usage: python -m bench.opcodes [flask|asgi] [KIND]; {adapter}'s"
            f" kinds: {', '.join(KINDS.get(adapter, ()))}"
        )
    plain = per_function(adapter, "plain")
    counted = per_function(adapter, kind)
    total, base = sum(counted.values()), sum(plain.values())
    print(
        f"  {adapter} {kind}: {total:,d} bytecode instructions per request,"
        f" plain {base:,d} ({total - base:+,d}, {total / base:.3f}×)"
    )
    diff = collections.Counter(counted)
    diff.subtract(plain)
    changed = [(where, n) for where, n in diff.items() if n]
    changed.sort(key=lambda item: (-abs(item[1]), item[0]))
    for where, n in changed[:TOP]:
        print(f"  {n:+7,d}  {where}")
    if len(changed) > TOP:
        rest = sum(n for _, n in changed[TOP:])
        print(f"  {rest:+7,d}  ({len(changed) - TOP} more functions)")
    return diff


if __name__ == "__main__":
    run(*sys.argv[1:3])

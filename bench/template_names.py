"""What the template helpers cost a render that does not use them.

Renders the benchmark's page (:mod:`bench.apps`) from a Flask app's Jinja
environment three ways, interleaved: without the helpers, with them as Jinja
globals (which Jinja copies into the context of every render), and with
them as names templates look up when they use one
(:func:`consent.html.add_template_names`, what both adapters do). Prints
the fastest round of each and what it adds; run with
``python -m bench.template_names``.
"""

from __future__ import annotations

import collections.abc as cabc
import os
import timeit

import flask

from consent.flask import current_consent
from consent.flask.helpers import HELPERS

from .apps import CONTEXT
from .apps import page_source

ROUNDS = int(os.environ.get("BENCH_TEMPLATE_ROUNDS", "30"))
NUMBER = 300


def _render(mode: str) -> cabc.Callable[[], str]:
    env = flask.Flask(__name__).jinja_env
    if mode == "globals":
        env.globals.update(HELPERS.globals(), consent=current_consent)
    elif mode == "names":
        HELPERS.install(env, consent=current_consent)
    template = env.from_string(page_source("plain"))
    context = {"analytics": True, **CONTEXT}
    return lambda: template.render(context)


def run() -> dict[str, float]:
    """The fastest render of each way, in microseconds."""
    renders = {mode: _render(mode) for mode in ("none", "globals", "names")}
    fastest = dict.fromkeys(renders, float("inf"))
    for _ in range(ROUNDS):
        for mode, render in renders.items():
            best = min(timeit.repeat(render, number=NUMBER, repeat=3)) / NUMBER
            fastest[mode] = min(fastest[mode], best * 1e6)
    print(f"  the benchmark page rendered, fastest of {ROUNDS} interleaved rounds:")
    for mode, micro in fastest.items():
        added = micro - fastest["none"]
        print(f"  helpers {mode:8} {micro:6.1f} µs  ({added:+5.1f} µs)")
    return fastest


if __name__ == "__main__":
    run()

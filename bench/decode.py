"""One consent cookie decode against one Flask session load.

Both sides run inside one test request context whose request carries both
cookies, built once; ``request.cookies`` is parsed once and then read from
the request, as a real request does after its first access.

- consent: ``CookieCodec.decode(request.cookies.get("consent"), now)``, the
  codec built once, ``now`` taken once (the extension takes it once per
  request). The value grants 13 keys. The codec keeps the values it has
  verified (``VERIFIED_CACHE_SIZE``), so a returning visitor's value is
  checked once per process; the budget is measured on a first sight, the
  cache emptied before every decode, and the cached decode is printed as
  context.
- Flask session: ``app.session_interface.open_session(app, request)``,
  exactly what Flask runs at the start of every request: it builds the
  signing serializer, reads the cookie, verifies it (HMAC-SHA1, timestamp)
  and loads its JSON into a session. The cookie holds four keys, as a
  signed-in user with a CSRF token has.

Context, not goals: the consent decode plus ``needs_resign`` (the second
verification the extension runs when it writes the response of a request
that asked); Flask's serializer built once; itsdangerous'
``URLSafeTimedSerializer.loads`` of a JSON payload holding the same consent
state; and a bare HMAC-SHA256 of the consent payload checked with
``hmac.compare_digest``, the floor of any signed cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import typing as t
from datetime import datetime
from datetime import timezone

from flask import Flask
from itsdangerous import URLSafeTimedSerializer

from consent import CookieCodec
from consent import decide
from consent.codec import SALT

from .common import SECRET_KEY
from .common import bench_policy
from .common import goal
from .common import interleaved_timeit
from .common import median
from .common import paired_ratio
from .common import print_goals

ROUNDS = 21
TARGET_SECONDS = 0.04
GOAL_RATIO = 0.5

SESSION = {
    "_fresh": True,
    "_id": "9f2c" * 32,
    "_user_id": "4182",
    "csrf_token": "5b1e0c7d9a3f" * 3 + "a1b2",
}


def run() -> dict[str, t.Any]:
    policy = bench_policy()
    app = Flask(__name__)
    app.secret_key = SECRET_KEY
    now = datetime.now(timezone.utc)
    codec = CookieCodec([SECRET_KEY], policy)
    state = decide(policy, "accept_all", now=now)
    consent_value = codec.encode(state)
    interface = app.session_interface
    flask_serializer = interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    assert flask_serializer is not None
    session_value = flask_serializer.dumps(SESSION)
    max_age = int(app.permanent_session_lifetime.total_seconds())

    json_serializer = URLSafeTimedSerializer(SECRET_KEY, salt=SALT)
    json_value = json_serializer.dumps(
        {
            "revision": state.revision,
            "granted": sorted(state.granted),
            "consent_id": state.consent_id,
            "given_at": int(state.given_at.timestamp()),
            "method": state.method,
            "gpc": state.gpc,
        }
    )
    payload = consent_value.rpartition(".")[0].encode()
    hmac_key = hashlib.sha256(SECRET_KEY.encode()).digest()
    mac = hmac.new(hmac_key, payload, hashlib.sha256).digest()

    ctx = app.test_request_context(
        "/", headers={"Cookie": f"consent={consent_value}; session={session_value}"}
    )
    ctx.push()
    try:
        request = ctx.request
        decoded = codec.decode(request.cookies.get("consent"), now)
        assert decoded is not None and decoded.granted == state.granted
        assert dict(interface.open_session(app, request) or {}) == SESSION

        def consent_decode() -> object:
            # A first sight of the value: the codec's cache of values it has
            # already verified is emptied, so the signature is checked.
            codec._verified.clear()
            return codec.decode(request.cookies.get("consent"), now)

        def consent_decode_cached() -> object:
            return codec.decode(request.cookies.get("consent"), now)

        def consent_decode_and_resign_check() -> object:
            codec._verified.clear()
            value = request.cookies.get("consent")
            return codec.decode(value, now), codec.needs_resign(value)  # type: ignore[arg-type]

        def flask_open_session() -> object:
            return interface.open_session(app, request)

        def flask_serializer_once() -> object:
            return flask_serializer.loads(
                request.cookies.get("session"), max_age=max_age
            )

        def itsdangerous_json() -> object:
            return json_serializer.loads(json_value, max_age=max_age)

        def bare_hmac() -> object:
            expected = hmac.new(hmac_key, payload, hashlib.sha256).digest()
            return hmac.compare_digest(expected, mac)

        contenders = {
            "consent decode": consent_decode,
            "Flask open_session": flask_open_session,
            "consent decode + needs_resign": consent_decode_and_resign_check,
            "consent decode, value seen before": consent_decode_cached,
            "Flask serializer built once": flask_serializer_once,
            "itsdangerous JSON loads": itsdangerous_json,
            "bare HMAC-SHA256": bare_hmac,
        }
        samples = interleaved_timeit(contenders, rounds=ROUNDS, target=TARGET_SECONDS)
    finally:
        ctx.pop()

    base = "Flask open_session"
    micros = {name: median(values) * 1e6 for name, values in samples.items()}
    ratios = {name: paired_ratio(samples, name, base) for name in samples}
    print(f"  {ROUNDS} interleaved rounds; ratio to {base} (median of paired rounds)")
    for name in samples:
        print(f"  {name:<34} {ratios[name]:5.2f}×   ({micros[name]:6.2f} µs)")
    goals = [
        goal(
            "decode / Flask session load",
            ratios["consent decode"],
            GOAL_RATIO,
            fmt=".2f",
            unit="×",
        )
    ]
    print_goals(goals)
    return {
        "rounds": ROUNDS,
        "baseline": base,
        "ratio": ratios,
        "median_microseconds": micros,
        "samples_seconds": samples,
        "goals": goals,
    }


if __name__ == "__main__":
    run()

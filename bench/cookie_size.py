"""Size of the consent cookie: ``name=value``, as the browser sends it back.

The policy has four categories (one required) and ten services, all granted.
The reference figure is vanilla-cookieconsent's cookie for a comparable
setup: 444 bytes, unsigned (a constant, not measured here).
"""

from __future__ import annotations

import typing as t
from datetime import datetime
from datetime import timezone

from consent import CookieCodec
from consent import decide

from .common import SECRET_KEY
from .common import bench_policy
from .common import goal
from .common import print_goals

#: vanilla-cookieconsent's cookie for four categories and ten services, in
#: bytes (name and JSON value, unsigned): the reference, not measured here.
VANILLA_COOKIECONSENT_BYTES = 444

GOAL_BYTES = 120


def run() -> dict[str, t.Any]:
    policy = bench_policy()
    codec = CookieCodec([SECRET_KEY], policy)
    now = datetime.now(timezone.utc)
    accepted = codec.encode(decide(policy, "accept_all", now=now))
    rejected = codec.encode(decide(policy, "reject_all", now=now))
    sizes = {
        "consent": len(f"consent={accepted}".encode()),
        "__Host-consent": len(f"__Host-consent={accepted}".encode()),
        "consent, all refused": len(f"consent={rejected}".encode()),
    }
    ref = VANILLA_COOKIECONSENT_BYTES
    print(
        f"  policy: {len(policy.categories)} categories,"
        f" {len(policy.choice_keys)} choice keys; value {accepted}"
    )
    for name, size in sizes.items():
        print(f"  {name:<22} {size:4d} B   {size / ref:.2f}× vanilla-cookieconsent")
    print(f"  {'vanilla-cookieconsent':<22} {ref:4d} B   (reference figure, unsigned)")
    goals = [
        goal(
            "cookie size (consent=…)", sizes["consent"], GOAL_BYTES, fmt="d", unit=" B"
        ),
        goal(
            "cookie size (__Host-consent=…)",
            sizes["__Host-consent"],
            GOAL_BYTES,
            fmt="d",
            unit=" B",
        ),
    ]
    print_goals(goals)
    return {
        "bytes": sizes,
        "ratio_to_vanilla_cookieconsent": {
            name: size / ref for name, size in sizes.items()
        },
        "reference_vanilla_cookieconsent_bytes": ref,
        "value": accepted,
        "goals": goals,
    }


if __name__ == "__main__":
    run()

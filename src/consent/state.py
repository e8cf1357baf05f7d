"""A visitor's choice and the decisions taken from it.

The core never reads a clock: every decision takes ``now`` as an aware
:class:`~datetime.datetime`, so callers (and tests) control time.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import secrets
import string
import typing as t
from datetime import datetime
from datetime import timedelta

from .exceptions import UnknownCategoryError

if t.TYPE_CHECKING:
    from .gpc import Profile
    from .model import Policy

#: How a choice was made: on the banner, on the preferences page or dialog,
#: through the JSON API, by a Global Privacy Control signal, or from an
#: embed placeholder.
Method = t.Literal["banner", "preferences", "api", "gpc", "embed"]

METHODS: tuple[Method, ...] = ("banner", "preferences", "api", "gpc", "embed")

#: What a visitor asked for.
Action = t.Literal["accept_all", "reject_all", "save"]

ACTIONS: tuple[Action, ...] = ("accept_all", "reject_all", "save")


_ID_START = string.ascii_letters + string.digits


def new_consent_id() -> str:
    """Return a new random consent id (128 bits, URL-safe).

    It is never derived from anything about the visitor, so it is not personal
    data by itself; it only links a visitor's receipts together.
    """
    # An id starting with "-" would read as an option on a command line
    # (`flask consent show ID`): the first character is a letter or digit.
    return secrets.choice(_ID_START) + secrets.token_urlsafe(16)[1:]


@dataclasses.dataclass(frozen=True)
class ConsentState:
    """What one visitor chose, and when.

    :param granted: The categories and services the visitor allowed. Every
        other optional key of the policy was refused.
    :param given_at: When the choice was made (aware, UTC).
    :param revision: The policy revision the choice was made under.
    :param consent_id: A random id that links the visitor's receipts.
    :param method: How the choice was made.
    :param gpc: True when a Global Privacy Control signal was honoured; it
        stays set so that a later request without the signal is no opt-in.
    """

    granted: frozenset[str]
    given_at: datetime
    revision: str
    consent_id: str
    method: Method = "banner"
    gpc: bool = False

    def is_current(self, policy: Policy, now: datetime) -> bool:
        """True when the choice was made under this policy and has not expired."""
        return (
            self.revision == policy.revision
            and self.given_at <= now + _CLOCK_SKEW
            and now - self.given_at < policy.max_age
        )

    def needs_banner(self, policy: Policy, now: datetime) -> bool:
        """True when the visitor must be asked (again)."""
        return needs_banner(self, policy, now)

    def allows(
        self,
        policy: Policy,
        key: str,
        now: datetime,
        profile: Profile | None = None,
    ) -> bool:
        """True when the category or service ``key`` may run."""
        return allows(self, policy, key, now, profile)

    def choices(self, policy: Policy) -> dict[str, bool]:
        """Every optional key of ``policy`` mapped to whether it is granted."""
        return {key: key in self.granted for key in policy.choice_keys}


# A visitor's clock is not ours: a cookie "given" a little in the future is
# tolerated, one from far in the future is not trusted.
_CLOCK_SKEW = timedelta(minutes=5)


def needs_banner(
    state: ConsentState | None,
    policy: Policy,
    now: datetime,
) -> bool:
    """Tell whether the visitor must be asked.

    True with no state, with a state from another policy revision, with an
    expired state, and with a state that only records a privacy signal
    (method ``gpc``): a signal refuses, but it is not a choice.
    """
    return state is None or state.method == "gpc" or not state.is_current(policy, now)


def allows(
    state: ConsentState | None,
    policy: Policy,
    key: str,
    now: datetime,
    profile: Profile | None = None,
) -> bool:
    """Tell whether the category or service ``key`` may run now.

    Required categories and their services are always allowed. A current
    choice decides the rest. Without one, the mode decides: ``opt-in`` (the
    default) refuses everything optional, ``opt-out`` allows it, and a
    profile's exemptions (the UK's statistics) allow their categories until
    the visitor objects. A Global Privacy Control opt-out on record always
    refuses what is marked ``sale_or_sharing``, unless the visitor later
    chose it explicitly.

    :param profile: The regional profile of this request; ``None`` uses the
        policy's mode.
    :raises UnknownCategoryError: when ``key`` is not declared, so that a typo
        fails closed and loudly instead of silently refusing forever.
    """
    category = policy.category_of(key)
    if category.required:
        return True
    if state is not None and state.is_current(policy, now) and state.method != "gpc":
        return key in state.granted
    if state is not None and state.gpc and policy.is_sale_or_sharing(key):
        return False
    mode = profile.mode if profile is not None else policy.mode
    if mode == "opt-out":
        return True
    if profile is not None and category.exemption in profile.exemptions:
        return True
    return False


def gpc_state(
    policy: Policy, *, now: datetime, previous: ConsentState | None = None
) -> ConsentState:
    """The state that records a Global Privacy Control opt-out.

    A current choice keeps what it granted, less what is sold or shared; with
    no choice, the state only records the signal (method ``gpc``), so the
    banner still asks about the rest.
    """
    if previous is not None and previous.is_current(policy, now):
        if previous.method != "gpc":
            return dataclasses.replace(
                previous,
                granted=previous.granted - policy.sale_or_sharing_keys,
                gpc=True,
            )
    return ConsentState(
        granted=frozenset(),
        given_at=now,
        revision=policy.revision,
        consent_id=previous.consent_id if previous else new_consent_id(),
        method="gpc",
        gpc=True,
    )


def decide(
    policy: Policy,
    action: Action,
    *,
    now: datetime,
    chosen: cabc.Iterable[str] = (),
    previous: ConsentState | None = None,
    method: Method = "banner",
    services_explicit: bool = False,
) -> ConsentState:
    """Build the state that results from a visitor's action.

    ``accept_all`` grants every optional category and service, ``reject_all``
    grants none, and ``save`` grants exactly the ``chosen`` keys: a chosen
    category brings its services along unless some of its services are chosen
    one by one. With ``services_explicit`` (a form that shows a switch per
    service), services are granted only when chosen themselves. The consent
    id of ``previous`` is kept, so one visitor's receipts stay linked.

    :raises UnknownCategoryError: when ``chosen`` holds a key the policy does
        not declare or a required key.
    """
    if action == "accept_all":
        granted = frozenset(policy.choice_keys)
        if previous is not None and previous.gpc:
            # Under an opt-out signal, "Accept all" does not sell or share:
            # only an explicit switch can (CCPA regs. 7025(c)(3)).
            granted -= policy.sale_or_sharing_keys
    elif action == "reject_all":
        granted = frozenset()
    else:
        granted = _granted_by(policy, frozenset(chosen), services_explicit)
    return ConsentState(
        granted=granted,
        given_at=now,
        revision=policy.revision,
        consent_id=previous.consent_id if previous else new_consent_id(),
        method=method,
        gpc=previous.gpc if previous else False,
    )


def _granted_by(
    policy: Policy, chosen: frozenset[str], services_explicit: bool = False
) -> frozenset[str]:
    unknown = chosen - set(policy.choice_keys)
    if unknown:
        raise UnknownCategoryError(
            f"Cannot choose {', '.join(sorted(unknown))}: only the optional"
            f" categories and services of the policy can be chosen"
            f" ({', '.join(policy.choice_keys)})."
        )
    granted = set(chosen)
    for category in policy.optional_categories:
        services = {s.key for s in category.services}
        if category.key in chosen and not services & chosen and not services_explicit:
            granted |= services
        if services & chosen:
            # Allowing one service means allowing its category's purpose.
            granted.add(category.key)
    return frozenset(granted)

"""Privacy signals (Global Privacy Control) and regional profiles.

A profile says how consent works for a visitor: opt-in (EU, EEA, and the
default whenever the region is unknown), the UK variant with its 2026
exemption for statistics, or opt-out with GPC (US states). The app picks a
profile per request, for example from a country header its edge sets
(``CF-IPCountry``), so no visitor address goes to a geo-IP service.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import typing as t

from .model import Exemption
from .model import Mode


@dataclasses.dataclass(frozen=True)
class Profile:
    """How consent is asked in one kind of jurisdiction.

    :param name: A short name, stored in receipts (``"eu"``, ``"uk"``...).
    :param mode: ``"opt-in"``, ``"opt-out"`` or ``"notice"``.
    :param exemptions: Kinds of categories (``Category.exemption``) that may
        run by default until the visitor objects.
    :param honors_gpc: Treat ``Sec-GPC: 1`` as a refusal of categories and
        services marked ``sale_or_sharing``.
    """

    name: str
    mode: Mode
    exemptions: frozenset[Exemption] = frozenset()
    honors_gpc: bool = True


#: EU and EEA: prior consent for everything not strictly necessary
#: (ePrivacy Directive Art. 5(3)). Also the default for unknown regions.
EU = Profile("eu", "opt-in")

#: The UK after 5 February 2026: opt-in, except statistics (analytics) that
#: may run with clear information and a simple way to object (PECR Sched. A1).
UK = Profile("uk", "opt-in", exemptions=frozenset({"statistics"}))

#: US states with opt-out laws (California, Colorado...): optional
#: categories run until refused; GPC refuses sale and sharing.
US = Profile("us", "opt-out")

#: Sites that set strictly necessary cookies only: a notice, no choice.
NOTICE = Profile("notice", "notice")

#: Built-in profiles by name.
PROFILES: dict[str, Profile] = {p.name: p for p in (EU, UK, US, NOTICE)}

_EEA = frozenset(
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI"
    " ES SE IS LI NO CH".split()
)
_US_OPT_OUT = frozenset({"US"})


def profile_for_country(country: str | None, default: Profile = EU) -> Profile:
    """The built-in profile for an ISO 3166-1 alpha-2 country code.

    Unknown or missing countries get ``default`` (the EU profile: the
    strictest, so a visitor whose region is unknown is never under-protected).
    """
    code = (country or "").strip().upper()
    if code in _EEA:
        return EU
    if code in ("GB", "UK"):
        return UK
    if code in _US_OPT_OUT:
        return US
    return default


def has_gpc(header_values: cabc.Iterable[str]) -> bool:
    """True when any ``Sec-GPC`` header value is exactly ``"1"``.

    The GPC specification says to ignore every other value (``"0"``,
    ``"true"``, ``" 1 "``), and to honour the signal when one of several
    headers carries it. Servers join repeated headers with commas
    (``"0, 1"``), so a joined value is split first, dropping only the spaces
    and tabs around the commas.
    """
    for value in header_values:
        if value == "1":
            return True
        if "," in value and any(part.strip(" \t") == "1" for part in value.split(",")):
            return True
    return False


def gpc_support_resource(last_update: str) -> dict[str, t.Any]:
    """The body of ``/.well-known/gpc.json``.

    :param last_update: An RFC 3339 full date (``YYYY-MM-DD``).
    """
    return {"gpc": True, "lastUpdate": last_update}

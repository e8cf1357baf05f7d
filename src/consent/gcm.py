"""Google Consent Mode v2: what each consent type should say.

Google tags read seven consent types. ``gtag('consent', 'default', ...)``
must run before any tag on every page, and Consent Mode stores nothing, so the
visitor's stored choice is sent again as an ``update`` on every page.
"""

from __future__ import annotations

import collections.abc as cabc
import typing as t

if t.TYPE_CHECKING:
    from .model import Policy

#: The seven consent types of Consent Mode v2.
CONSENT_TYPES = (
    "ad_storage",
    "ad_user_data",
    "ad_personalization",
    "analytics_storage",
    "functionality_storage",
    "personalization_storage",
    "security_storage",
)

_ADS = ("ad_storage", "ad_user_data", "ad_personalization")
_PREFERENCES = ("functionality_storage", "personalization_storage")

#: Which consent types a category or service key grants, by common key.
#: ``security_storage`` is always granted: it only protects the visitor.
DEFAULT_MAPPING: dict[str, tuple[str, ...]] = {
    "analytics": ("analytics_storage",),
    "statistics": ("analytics_storage",),
    "marketing": _ADS,
    "advertising": _ADS,
    "ads": _ADS,
    "preferences": _PREFERENCES,
    "functional": _PREFERENCES,
    "functionality": ("functionality_storage",),
    "personalization": ("personalization_storage",),
}

ALWAYS_GRANTED = ("security_storage",)

Mapping = cabc.Mapping[str, cabc.Sequence[str]]


def effective_mapping(
    policy: Policy, mapping: Mapping | None = None
) -> dict[str, list[str]]:
    """The mapping restricted to the policy's optional keys.

    :param mapping: Your own mapping from keys to consent types; ``None`` uses
        :data:`DEFAULT_MAPPING`.
    :raises ValueError: when the mapping names an unknown consent type.
    """
    mapping = DEFAULT_MAPPING if mapping is None else mapping
    result: dict[str, list[str]] = {}
    for key in policy.choice_keys:
        types = list(mapping.get(key, ()))
        unknown = set(types) - set(CONSENT_TYPES)
        if unknown:
            raise ValueError(
                f"Unknown consent types for {key!r}: {', '.join(sorted(unknown))};"
                f" use {', '.join(CONSENT_TYPES)}."
            )
        if types:
            result[key] = types
    return result


def consent_types(
    mapping: cabc.Mapping[str, cabc.Sequence[str]],
    allows: cabc.Callable[[str], bool],
) -> dict[str, str]:
    """Every consent type as ``"granted"`` or ``"denied"``.

    A type is granted when any key that maps to it is allowed; types no key
    maps to stay denied, except ``security_storage``.
    """
    values = {name: "denied" for name in CONSENT_TYPES}
    for name in ALWAYS_GRANTED:
        values[name] = "granted"
    for key, types in mapping.items():
        if allows(key):
            for name in types:
                values[name] = "granted"
    return values


def default_command(
    *,
    wait_for_update: int = 500,
    region: cabc.Sequence[str] | None = None,
) -> dict[str, t.Any]:
    """The argument of ``gtag('consent', 'default', ...)``: all denied but
    security, with ``wait_for_update`` (ms) and an optional ``region`` list of
    ISO 3166 codes."""
    values: dict[str, t.Any] = consent_types({}, lambda key: False)
    values["wait_for_update"] = wait_for_update
    if region:
        values["region"] = list(region)
    return values

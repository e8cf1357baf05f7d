"""Declarations: categories, services, cookies and the policy that holds them.

Everything here is a frozen dataclass checked when it is built, so a policy
that exists is a policy that works: mistakes surface at import or app start,
with a message that says what to change, not on a visitor's request.
"""

from __future__ import annotations

import base64
import collections.abc as cabc
import dataclasses
import fnmatch
import functools
import hashlib
import json
import re
import typing as t
from datetime import timedelta

from .exceptions import ConfigurationError
from .exceptions import UnknownCategoryError

#: Who can read a cookie: the site itself or another party.
Party = t.Literal["first", "third"]

#: How consent is asked. ``opt-in`` is the default and the only mode that is
#: lawful for non-essential cookies in the EU and the UK.
Mode = t.Literal["opt-in", "opt-out", "notice"]

MODES: tuple[Mode, ...] = ("opt-in", "opt-out", "notice")

#: What the UK's Data (Use and Access) Act 2025 lets a site do without
#: consent, provided visitors are told and can object.
Exemption = t.Literal["statistics", "appearance", "security"]

EXEMPTIONS: tuple[Exemption, ...] = ("statistics", "appearance", "security")

#: The default lifetime of a choice: about six months, as the CNIL recommends.
DEFAULT_MAX_AGE = timedelta(days=182)

#: The longest lifetime a choice may have (13 months, EDPB and CNIL).
LONGEST_MAX_AGE = timedelta(days=395)

#: How long receipts are kept by default before
#: :meth:`consent.receipts.ReceiptStore.purge` may remove them: three years.
#:
#: A receipt is evidence. It must outlive the choice it proves (182 days by
#: default, at most 13 months), and then stay available for as long as a
#: visitor or a supervisory authority can still challenge that the site
#: honoured the choice: complaints and investigations commonly come years
#: after the facts. Storage limitation (GDPR Art. 5(1)(e)) forbids keeping it
#: forever. Three years covers the longest choice lifetime plus a common
#: limitation period; set your own value from your legal advice.
DEFAULT_RETENTION = timedelta(days=3 * 365)

_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_REVISION = re.compile(r"^[A-Za-z0-9_-]{1,16}$")
_COOKIE_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")

# Cookies of well-known trackers: declaring one as strictly necessary is a
# mistake regulators look for first (EDPB Cookie Banner Taskforce, type I).
_TRACKER_COOKIES = (
    "_ga",
    "_ga_*",
    "_gid",
    "_gat*",
    "_gcl_*",
    "_fbp",
    "_fbc",
    "fr",
    "IDE",
    "test_cookie",
    "_uetsid",
    "_uetvid",
    "_hjSession*",
    "_hjid",
    "__utm*",
    "NID",
    "DSID",
)


def _require_key(kind: str, key: str) -> None:
    if not _KEY.match(key):
        raise ConfigurationError(
            f"{kind} key {key!r} is not a valid key: use a lowercase slug of at most"
            " 32 characters that starts with a letter, such as 'analytics'."
            " Keys are stored in cookies and receipts, so keep them stable."
        )


def _require_text(kind: str, key: str, field: str, value: str) -> None:
    if not value.strip():
        raise ConfigurationError(
            f"{kind} {key!r} has an empty {field}: give it a short {field}"
            " that visitors can read."
        )


@dataclasses.dataclass(frozen=True)
class Cookie:
    """A cookie (or a family of cookies) that the site or a provider sets.

    Visitors must be told, for each cookie, who sets it, why and for how long
    (CJEU *Planet49*), so ``provider``, ``purpose`` and ``duration`` are
    required.

    :param name: The exact cookie name, such as ``"_hz_analytics"``.
    :param provider: Who sets and reads the cookie.
    :param purpose: What the cookie is for, in one plain sentence.
    :param duration: How long it lives, as shown to visitors ("1 year",
        "session").
    :param party: ``"first"`` when only this site reads it, ``"third"`` when
        another party can.
    :param pattern: A regular expression matched against the whole cookie
        name, for families such as ``r"_ga_[A-Z0-9]+"``. Give either ``name``
        or ``pattern``.
    :param domain: The domain the cookie is set for, used to expire it.
    :param path: The path the cookie is set for, used to expire it.
    """

    name: str = ""
    provider: str = ""
    purpose: str = ""
    duration: str = ""
    party: Party = "first"
    pattern: str = ""
    domain: str | None = None
    path: str = "/"

    def __post_init__(self) -> None:
        label = self.name or self.pattern or "(unnamed)"
        if bool(self.name) == bool(self.pattern):
            raise ConfigurationError(
                f"Cookie {label!r}: give exactly one of name='exact_name' or"
                " pattern=r'regular expression'."
            )
        if self.name and not _COOKIE_NAME.match(self.name):
            raise ConfigurationError(
                f"Cookie name {self.name!r} contains characters a cookie name"
                " cannot have; use the name exactly as the browser shows it."
            )
        if self.pattern:
            try:
                re.compile(self.pattern)
            except re.error as err:
                raise ConfigurationError(
                    f"Cookie pattern {self.pattern!r} is not a valid regular"
                    f" expression ({err}); fix it or declare the exact name."
                ) from err
        for field in ("provider", "purpose", "duration"):
            _require_text("Cookie", label, field, getattr(self, field))
        if self.party not in ("first", "third"):
            raise ConfigurationError(
                f"Cookie {label!r}: party must be 'first' or 'third',"
                f" not {self.party!r}."
            )

    @property
    def label(self) -> str:
        """The name, or the pattern for a family of cookies."""
        return self.name or self.pattern

    def matches(self, name: str) -> bool:
        """Tell whether a cookie called ``name`` is this declared cookie."""
        if self.name:
            return name == self.name
        return re.fullmatch(self.pattern, name) is not None


@dataclasses.dataclass(frozen=True, init=False)
class Service:
    """A tool or provider inside a category, that can be allowed on its own.

    :param key: A stable lowercase slug, unique across the whole policy.
    :param title: The name visitors see, such as "West Lake map".
    :param description: What it does, in one or two plain sentences.
    :param provider: Who runs it.
    :param cookies: The cookies it sets.
    :param sale_or_sharing: True when it sells or shares personal data in the
        sense of the CCPA; a Global Privacy Control signal refuses it.
    """

    key: str
    title: str
    description: str
    provider: str
    cookies: tuple[Cookie, ...]
    sale_or_sharing: bool

    def __init__(
        self,
        key: str,
        title: str,
        description: str = "",
        provider: str = "",
        cookies: cabc.Iterable[Cookie] = (),
        sale_or_sharing: bool = False,
    ) -> None:
        _set_fields(self, locals())
        _require_key("Service", self.key)
        _require_text("Service", self.key, "title", self.title)


@dataclasses.dataclass(frozen=True, init=False)
class Category:
    """A purpose visitors can allow or refuse as a whole.

    :param key: A stable lowercase slug such as ``"analytics"``.
    :param title: The short title shown on the banner.
    :param description: What the category is for, shown in the preferences.
    :param required: True for strictly necessary cookies: always allowed,
        shown as "always on" and never recorded as consent.
    :param cookies: Cookies of the category that belong to no service.
    :param services: Services that can be allowed one by one.
    :param sale_or_sharing: True when the whole category sells or shares
        personal data; a Global Privacy Control signal refuses it.
    :param exemption: For the UK profile: ``"statistics"``, ``"appearance"``
        or ``"security"`` when the category falls under a PECR exemption and
        may run until the visitor objects.
    """

    key: str
    title: str
    description: str
    required: bool
    cookies: tuple[Cookie, ...]
    services: tuple[Service, ...]
    sale_or_sharing: bool
    exemption: Exemption | None

    def __init__(
        self,
        key: str,
        title: str,
        description: str = "",
        required: bool = False,
        cookies: cabc.Iterable[Cookie] = (),
        services: cabc.Iterable[Service] = (),
        sale_or_sharing: bool = False,
        exemption: Exemption | None = None,
    ) -> None:
        _set_fields(self, locals())
        _require_key("Category", self.key)
        _require_text("Category", self.key, "title", self.title)
        if self.exemption is not None and self.exemption not in EXEMPTIONS:
            raise ConfigurationError(
                f"Category {self.key!r}: exemption must be one of"
                f" {', '.join(EXEMPTIONS)} or None, not {self.exemption!r}."
            )

    def all_cookies(self) -> tuple[Cookie, ...]:
        """Every cookie of the category, its services' included."""
        return self.cookies + tuple(c for s in self.services for c in s.cookies)


def _set_fields(instance: object, values: dict[str, t.Any]) -> None:
    """Set the fields of a frozen declaration from its ``__init__``
    arguments; sequences are kept as tuples, so a declaration never changes
    after it was checked."""
    for field in dataclasses.fields(instance):  # type: ignore[arg-type]
        value = values[field.name]
        if field.type.startswith("tuple[") and not isinstance(value, str):
            value = tuple(value)
        object.__setattr__(instance, field.name, value)


def _as_timedelta(value: timedelta | float) -> timedelta:
    if isinstance(value, timedelta):
        return value
    return timedelta(seconds=value)


@dataclasses.dataclass(frozen=True, init=False)
class Policy:
    """Everything a site declares: categories, services and cookies.

    The policy is checked when it is built. Its :attr:`revision` is stored in
    each visitor's choice; when it changes, visitors are asked again.

    :param categories: The categories, in the order visitors see them. At
        least one must be ``required`` (it holds the consent cookie itself).
    :param revision: A revision of your own (letters, digits, ``-`` and
        ``_``). Leave it out to derive it from the declarations, so that
        adding a cookie or a service re-asks visitors without anyone having
        to remember to bump a number.
    :param max_age: How long a choice lasts; 182 days by default, at most
        395 days (13 months). Seconds or a :class:`~datetime.timedelta`.
    :param mode: ``"opt-in"`` (default), ``"opt-out"`` or ``"notice"``.
    :param controller: Who runs the site, named on the banner.
    :param privacy_url: A link to the site's privacy policy, if any.
    """

    categories: tuple[Category, ...]
    revision: str
    max_age: timedelta
    mode: Mode
    controller: str
    privacy_url: str | None

    def __init__(
        self,
        categories: cabc.Iterable[Category],
        revision: str = "",
        max_age: timedelta | float = DEFAULT_MAX_AGE,
        mode: Mode = "opt-in",
        controller: str = "This site",
        privacy_url: str | None = None,
    ) -> None:
        _set_fields(self, locals())
        object.__setattr__(self, "max_age", _as_timedelta(max_age))
        self._validate()
        if not self.revision:
            object.__setattr__(self, "revision", self._derive_revision())

    def _validate(self) -> None:
        if not self.categories:
            raise ConfigurationError(
                "The policy declares no category: add at least"
                " Category('necessary', 'Strictly necessary', required=True)."
            )
        if not any(c.required for c in self.categories):
            raise ConfigurationError(
                "No category is required: mark the category of strictly necessary"
                " cookies with required=True; the consent cookie belongs to it."
            )
        seen: dict[str, str] = {}
        for category in self.categories:
            for kind, key in [("category", category.key)] + [
                ("service", s.key) for s in category.services
            ]:
                if key in seen:
                    raise ConfigurationError(
                        f"The key {key!r} is used twice (as a {seen[key]} and as a"
                        f" {kind}): give every category and service its own key."
                    )
                seen[key] = kind
            if category.required:
                self._check_necessary(category)
        if self.mode not in MODES:
            raise ConfigurationError(
                f"mode must be one of {', '.join(MODES)}; got {self.mode!r}."
            )
        if self.max_age <= timedelta(0) or self.max_age > LONGEST_MAX_AGE:
            raise ConfigurationError(
                f"max_age is {self.max_age.days} days: a choice must last between"
                " 1 second and 395 days (13 months); 182 days is the usual value."
            )
        if self.revision and not _REVISION.match(self.revision):
            raise ConfigurationError(
                f"revision {self.revision!r} must be 1 to 16 letters, digits, '-'"
                " or '_' (it is stored in the consent cookie); or leave it out to"
                " derive it from the declarations."
            )
        _require_text("Policy", "controller", "name", self.controller)
        if self.mode == "notice" and self.optional_categories:
            raise ConfigurationError(
                "mode='notice' informs only, so it suits sites whose cookies are"
                " all strictly necessary; this policy has optional categories"
                f" ({', '.join(c.key for c in self.optional_categories)}): use"
                " 'opt-in', or 'opt-out' where that is lawful."
            )

    @staticmethod
    def _check_necessary(category: Category) -> None:
        for cookie in category.all_cookies():
            for tracker in _TRACKER_COOKIES:
                probe = tracker.replace("*", "x")
                if fnmatch.fnmatchcase(cookie.label, tracker) or cookie.matches(probe):
                    raise ConfigurationError(
                        f"Cookie {cookie.label!r} is a well-known tracking cookie"
                        f" and cannot be strictly necessary: move it from"
                        f" {category.key!r} to an optional category such as"
                        " 'analytics' or 'marketing'."
                    )

    def _derive_revision(self) -> str:
        # What visitors consented to: keys, titles, descriptions, cookies.
        # Order matters too (it is the layout of the stored choices).
        declared = json.dumps(
            [dataclasses.asdict(c) for c in self.categories],
            sort_keys=True,
            ensure_ascii=False,
        )
        digest = hashlib.sha256(declared.encode()).digest()[:6]
        return base64.urlsafe_b64encode(digest).decode()

    # Derived views, computed once: a policy is immutable, and these are read
    # on every request.

    @functools.cached_property
    def choice_keys(self) -> tuple[str, ...]:
        """The keys a visitor can allow or refuse, in a stable order.

        Optional categories, each followed by its services. Services of a
        required category are always allowed and are not listed.
        """
        keys: list[str] = []
        for category in self.categories:
            if not category.required:
                keys.append(category.key)
                keys.extend(s.key for s in category.services)
        return tuple(keys)

    @functools.cached_property
    def optional_categories(self) -> tuple[Category, ...]:
        """The categories a visitor can refuse."""
        return tuple(c for c in self.categories if not c.required)

    def category(self, key: str) -> Category:
        """Return the category ``key``.

        :raises UnknownCategoryError: when the policy has no such category.
        """
        for category in self.categories:
            if category.key == key:
                return category
        raise UnknownCategoryError(
            f"{key!r} is not a category of this policy; declared categories:"
            f" {', '.join(c.key for c in self.categories)}."
        )

    def category_of(self, key: str) -> Category:
        """Return the category ``key`` or the category holding service ``key``.

        :raises UnknownCategoryError: when the key is neither.
        """
        try:
            return self._category_by_key[key]
        except KeyError:
            pass
        raise UnknownCategoryError(
            f"{key!r} is neither a category nor a service of this policy; declare"
            " it or check the spelling."
        )

    @functools.cached_property
    def _category_by_key(self) -> dict[str, Category]:
        index = {}
        for category in self.categories:
            index[category.key] = category
            for service in category.services:
                index[service.key] = category
        return index

    def is_sale_or_sharing(self, key: str) -> bool:
        """True when ``key`` (or its category) sells or shares personal data."""
        category = self.category_of(key)
        if category.sale_or_sharing:
            return True
        return any(s.key == key and s.sale_or_sharing for s in category.services)

    @functools.cached_property
    def sale_or_sharing_keys(self) -> frozenset[str]:
        """The optional keys a Global Privacy Control signal refuses."""
        return frozenset(k for k in self.choice_keys if self.is_sale_or_sharing(k))

    def is_required(self, key: str) -> bool:
        """True when ``key`` is a required category or one of its services."""
        return self.category_of(key).required

    def classify(self, cookie_name: str) -> tuple[Category, Service | None] | None:
        """Find the declaration of a cookie by its name.

        :return: the category and the service (or ``None``) that declare it,
            or ``None`` when the cookie is not declared.
        """
        for category in self.categories:
            for service in category.services:
                if any(c.matches(cookie_name) for c in service.cookies):
                    return category, service
            if any(c.matches(cookie_name) for c in category.cookies):
                return category, None
        return None

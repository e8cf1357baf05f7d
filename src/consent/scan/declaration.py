"""The site's own cookie declaration, as published at
``/consent/declaration.json``.

The declaration lists categories (``key``, ``required``) and, in each, the
cookies and services' cookies by ``name`` (an exact name, or a regular
expression matched against the whole name when ``pattern`` is true). The
scan checks what it records against it: a cookie or storage key is
*declared* when one entry matches its name, and *strictly necessary* when
an entry of a required category does.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import re
import typing as t

from .errors import DeclarationError

#: Where the declaration is published, relative to the site's root.
DECLARATION_PATH = "/consent/declaration.json"

#: Longest regular expression accepted from a declaration.
MAX_PATTERN_LENGTH = 256


@dataclasses.dataclass(frozen=True)
class DeclaredCookie:
    """One cookie (or family of cookies) of the declaration.

    :param name: The exact name, or the regular expression.
    :param category: The key of the category it belongs to.
    :param required: True when that category is strictly necessary.
    :param is_pattern: True when ``name`` is a regular expression.
    :param service: The key of the service that sets it, if any.
    """

    name: str
    category: str
    required: bool
    is_pattern: bool = False
    service: str | None = None

    def matches(self, name: str) -> bool:
        """Whether a recorded cookie or storage key called ``name`` is this one."""
        if self.is_pattern:
            return re.fullmatch(self.name, name) is not None
        return self.name == name


@dataclasses.dataclass(frozen=True)
class Declaration:
    """What a site declares: its categories and their cookies.

    :param categories: Every category key, required ones included.
    :param required: The keys of the strictly necessary categories.
    :param cookies: Every declared cookie.
    :param revision: The policy revision, when the declaration gives one.
    """

    categories: tuple[str, ...]
    required: frozenset[str]
    cookies: tuple[DeclaredCookie, ...]
    revision: str | None = None

    @property
    def optional(self) -> tuple[str, ...]:
        """The keys of the categories a visitor may refuse."""
        return tuple(c for c in self.categories if c not in self.required)

    def lookup(self, name: str) -> tuple[DeclaredCookie, ...]:
        """Every declared entry that ``name`` matches."""
        return tuple(c for c in self.cookies if c.matches(name))

    def is_declared(self, name: str) -> bool:
        """Whether any category declares ``name``."""
        return bool(self.lookup(name))

    def is_necessary(self, name: str) -> bool:
        """Whether a strictly necessary category declares ``name``."""
        return any(c.required for c in self.lookup(name))

    def categories_of(self, name: str) -> tuple[str, ...]:
        """The keys of the categories that declare ``name``, in order."""
        return tuple(dict.fromkeys(c.category for c in self.lookup(name)))

    @classmethod
    def from_json(cls, data: object) -> Declaration:
        """Read a parsed ``declaration.json``.

        :param data: The JSON document, as :func:`json.loads` returns it.
        :raises DeclarationError: When it is not a declaration; the message
            says which part is wrong.
        """
        document = _mapping(data, "the declaration")
        categories: list[str] = []
        required: set[str] = set()
        cookies: list[DeclaredCookie] = []
        raw_categories = _sequence(document.get("categories"), "categories")
        for index, raw in enumerate(raw_categories):
            where = f"categories[{index}]"
            category = _mapping(raw, where)
            key = _text(category.get("key"), f"{where}.key")
            is_required = category.get("required", False)
            if not isinstance(is_required, bool):
                raise DeclarationError(f"{where}.required must be true or false.")
            categories.append(key)
            if is_required:
                required.add(key)
            entries = _cookie_entries(category.get("cookies", []), f"{where}.cookies")
            for name, is_pattern in entries:
                cookies.append(DeclaredCookie(name, key, is_required, is_pattern))
            services = _sequence(category.get("services", []), f"{where}.services")
            for s_index, raw_service in enumerate(services):
                s_where = f"{where}.services[{s_index}]"
                service = _mapping(raw_service, s_where)
                service_key = _text(service.get("key"), f"{s_where}.key")
                entries = _cookie_entries(
                    service.get("cookies", []), f"{s_where}.cookies"
                )
                for name, is_pattern in entries:
                    cookies.append(
                        DeclaredCookie(
                            name, key, is_required, is_pattern, service=service_key
                        )
                    )
        revision = document.get("revision")
        return cls(
            categories=tuple(categories),
            required=frozenset(required),
            cookies=tuple(dict.fromkeys(cookies)),
            revision=str(revision) if isinstance(revision, str | int) else None,
        )


def _mapping(value: object, where: str) -> cabc.Mapping[str, t.Any]:
    if not isinstance(value, dict):
        raise DeclarationError(f"{where} must be a JSON object.")
    return value


def _sequence(value: object, where: str) -> list[t.Any]:
    if not isinstance(value, list):
        raise DeclarationError(f"{where} must be a JSON array.")
    return value


def _text(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise DeclarationError(f"{where} must be a non-empty string.")
    return value


def _cookie_entries(value: object, where: str) -> list[tuple[str, bool]]:
    entries = []
    for index, raw in enumerate(_sequence(value, where)):
        entry = _mapping(raw, f"{where}[{index}]")
        name = _text(entry.get("name"), f"{where}[{index}].name")
        is_pattern = entry.get("pattern", False)
        if not isinstance(is_pattern, bool):
            raise DeclarationError(f"{where}[{index}].pattern must be true or false.")
        if is_pattern:
            if len(name) > MAX_PATTERN_LENGTH:
                raise DeclarationError(
                    f"{where}[{index}].name is a pattern longer than"
                    f" {MAX_PATTERN_LENGTH} characters."
                )
            try:
                re.compile(name)
            except re.error as err:
                raise DeclarationError(
                    f"{where}[{index}].name is not a valid regular expression ({err})."
                ) from err
        entries.append((name, is_pattern))
    return entries

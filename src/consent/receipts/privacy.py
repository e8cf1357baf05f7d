"""What a receipt keeps of the visitor: as little as proof needs.

Receipts are personal data too (GDPR Art. 5(1)(c) and Art. 25), so the
network address is truncated or keyed-hashed by :func:`anonymize_ip`, the
User-Agent header is reduced to a browser family and major version and an
operating system family by :func:`reduce_user_agent`, and any text that came
from the visitor is cleaned by :func:`clean_text` so that it can be stored.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import re
import socket
import typing as t

from ..exceptions import ConfigurationError

#: How an IP address is reduced before it is stored: truncated to its network
#: (IPv4 /24, IPv6 /48), replaced by a keyed hash, or not stored at all.
IPMode = t.Literal["truncate", "hash", "none"]

IP_MODES: tuple[IPMode, ...] = ("truncate", "hash", "none")

#: The browser families a User-Agent header is reduced to, tried in this
#: order; the first pattern found gives the family, and its first number the
#: major version. The order matters: Edge, Opera, Samsung Internet, Yandex
#: Browser and Vivaldi also announce Chrome, and Chrome also announces Safari.
#: Any other agent (bots, command-line tools, rare browsers) is ``"Other"``.
BROWSER_FAMILIES: tuple[tuple[str, str], ...] = (
    ("Edge", r"\b(?:Edg|Edge|EdgA|EdgiOS)/(\d+)"),
    ("Opera", r"\b(?:OPR|OPiOS|OPT)/(\d+)"),
    ("Samsung Internet", r"\bSamsungBrowser/(\d+)"),
    ("Yandex Browser", r"\bYaBrowser/(\d+)"),
    ("Vivaldi", r"\bVivaldi/(\d+)"),
    ("UC Browser", r"\bUCBrowser/(\d+)"),
    ("Firefox", r"\b(?:Firefox|FxiOS)/(\d+)"),
    ("Chrome", r"\b(?:Chrome|CriOS|Chromium)/(\d+)"),
    ("Internet Explorer", r"\bMSIE (\d+)|\bTrident/.*\brv:(\d+)"),
    ("Safari", r"\bVersion/(\d+)\S* (?:Mobile/\S+ )?Safari/"),
)

#: The operating system families, tried in this order: iPads and iPhones
#: say "like Mac OS X", and Android says "Linux". Any other system is
#: ``"Other"``.
OS_FAMILIES: tuple[tuple[str, str], ...] = (
    ("iOS", r"\b(?:iPhone|iPad|iPod)\b"),
    ("Android", r"\bAndroid\b"),
    ("Chrome OS", r"\bCrOS\b"),
    ("Windows", r"\bWindows\b"),
    ("macOS", r"\b(?:Macintosh|Mac OS X)\b"),
    ("Linux", r"\b(?:Linux|X11)\b"),
)

# Browsers put what identifies them in the first few hundred characters; a
# longer header is cut first, so that a hostile one costs no more to read.
_MAX_READ = 512
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean_text(value: str, limit: int) -> str:
    """Make visitor-supplied text storable: control characters and lone
    surrogates removed, at most ``limit`` characters.

    NUL cannot be stored in PostgreSQL and a lone surrogate cannot be
    encoded, so cleaning them out means a receipt can always be written and a
    spooled one never blocks a replay.

    :param value: The text as received.
    :param limit: The most characters kept.
    """
    if value.isascii() and value.isprintable():
        return value[:limit]
    value = value.encode("utf-8", "replace").decode("utf-8")
    return _CONTROL.sub("", value)[:limit]


def reduce_user_agent(user_agent: str | None) -> str:
    """Reduce a User-Agent header to what a receipt needs.

    A receipt shows which browser made a choice, which helps when a choice
    is disputed; the full header helps fingerprinting instead, so only the
    browser family and major version and the operating system family are
    kept (GDPR Art. 5(1)(c)): ``"Chrome 156 / Windows"``,
    ``"Safari 17 / iOS"``. The families are listed in
    :data:`BROWSER_FAMILIES` and :data:`OS_FAMILIES`; anything else is
    ``"Other"``, and an agent of which nothing is known is ``"Other"`` alone.

    :param user_agent: The raw header, or ``None`` when the request had none
        (which gives ``""``).
    """
    if not user_agent:
        return ""
    return _reduce(user_agent[:_MAX_READ])


@functools.cache
def _patterns() -> tuple[tuple[tuple[str, re.Pattern[str]], ...], ...]:
    # Compiled on the first receipt, not at import.
    return tuple(
        tuple((name, re.compile(pattern)) for name, pattern in families)
        for families in (BROWSER_FAMILIES, OS_FAMILIES)
    )


@functools.lru_cache(maxsize=1024)
def _reduce(text: str) -> str:
    # Most visitors come with one of a few hundred agents: each is read once.
    browsers, systems = _patterns()
    browser = "Other"
    for name, pattern in browsers:
        match = pattern.search(text)
        if match is not None:
            major = next(group for group in match.groups() if group is not None)
            browser = f"{name} {int(major[:4])}"
            break
    system = next(
        (name for name, pattern in systems if pattern.search(text) is not None),
        "Other",
    )
    if browser == system == "Other":
        return "Other"
    return f"{browser} / {system}"


def anonymize_ip(
    ip: str | None, mode: IPMode, *, pepper: bytes | None = None
) -> str | None:
    """Reduce an IP address before it is stored in a receipt.

    A receipt needs network data only to tell visitors apart when a choice is
    disputed, so the full address is never kept. ``"truncate"`` keeps the
    network (``"203.0.113.0/24"``, ``"2001:db8:1::/48"``). ``"hash"`` keeps
    ``HMAC-SHA256(pepper, ip)``: a plain hash of an IPv4 address is reversed
    by trying all 2**32 addresses, a keyed one is not while the pepper stays
    secret, and rotating the pepper unlinks old receipts from new ones.
    ``"none"`` keeps nothing.

    :param ip: The client address, as text. Anything that is not an IP
        address gives ``None``.
    :param mode: ``"truncate"``, ``"hash"`` or ``"none"``.
    :param pepper: The secret key for ``"hash"``, at least 32 random bytes,
        kept out of the database.
    :raises ConfigurationError: for ``"hash"`` without a pepper, or an
        unknown mode.
    """
    if mode not in IP_MODES:
        raise ConfigurationError(
            f"Unknown IP mode {mode!r}: use 'truncate', 'hash' or 'none'."
        )
    if mode == "hash" and not pepper:
        raise ConfigurationError(
            "Hashing IP addresses needs a pepper: pass pepper= with at least 32"
            " secret random bytes, or use mode 'truncate'."
        )
    if mode == "none" or not ip:
        return None
    if mode == "truncate":
        try:
            # The common case, a plain IPv4 address, without building an
            # ipaddress object: four bytes, the last one dropped.
            a, b, c, _ = socket.inet_pton(socket.AF_INET, ip.strip())
        except (OSError, ValueError):  # not IPv4, or a NUL in the text
            pass
        else:
            return f"{a}.{b}.{c}.0/24"
    address = _parse_ip(ip)
    if address is None:
        return None
    if mode == "hash":
        assert pepper is not None
        digest = hmac.new(pepper, str(address).encode(), hashlib.sha256)
        return digest.hexdigest()
    prefix = 24 if address.version == 4 else 48
    host_bits = address.max_prefixlen - prefix
    network = type(address)(int(address) >> host_bits << host_bits)
    return f"{network}/{prefix}"


def _parse_ip(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(ip.strip().split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        # An IPv4 client seen through a dual-stack socket is still an IPv4
        # client; its /48 would keep nothing useful and its /24 is the rule.
        return address.ipv4_mapped
    return address

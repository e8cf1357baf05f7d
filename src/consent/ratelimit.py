"""Per-client limits on the consent endpoint, built on ``limits``.

One client posting choices in a loop could otherwise write thousands of
receipts a second (requirement R43). :class:`RateLimiter` counts posts per
client in a moving window with the ``limits`` package, the same that
Flask-Limiter and slowapi use: in memory by default, or in Redis or
Memcached when a site runs on several machines (one setting,
``CONSENT_RATE_LIMIT_STORAGE``). Clients are keyed by a keyed hash of their
network (an IPv4 address, an IPv6 /64), so no address is stored in the
counters.

It also bounds the receipts a ``Sec-GPC`` signal writes for clients whose
browser keeps no cookie: the opt-out is honoured on every request, but only
the first few are recorded.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import time
import typing as t

from .exceptions import ConfigurationError
from .exceptions import RateLimitedError

if t.TYPE_CHECKING:
    from limits import RateLimitItem
    from limits.strategies import RateLimiter as Strategy

logger = logging.getLogger(__name__)

#: The default limit: far above what a person does, far below a script.
DEFAULT_LIMIT = "30/minute;300/hour"

#: Receipts of a GPC opt-out written per client without a consent cookie.
GPC_RECEIPTS = "10/hour"

_NAMESPACE = "consent"


def client_network(remote_addr: str | None) -> str:
    """The part of a client address that identifies one client: the IPv4
    address, or the /64 of an IPv6 address (one household or device can
    hold a whole /64). Unknown clients share one key."""
    if not remote_addr:
        return "unknown"
    try:
        address = ipaddress.ip_address(remote_addr.strip().split("%", 1)[0])
    except ValueError:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _items(value: str, setting: str) -> list[RateLimitItem]:
    from limits import parse_many

    try:
        return parse_many(value)
    except ValueError as err:
        raise ConfigurationError(
            f"{setting} {value!r} is not a rate limit: write it like"
            " '30/minute;300/hour'."
        ) from err


class RateLimiter:
    """Count consent posts per client.

    :param limit: The limits, such as ``"30/minute;300/hour"``; ``None``
        counts no posts (GPC receipts are still bounded).
    :param storage: A ``limits`` storage URI: ``"memory://"``,
        ``"redis://host:6379"``, ``"memcached://host:11211"``...
    :param secret: The key of the client hashes.
    :raises ConfigurationError: for a limit or storage that cannot work.
    """

    def __init__(self, limit: str | None, storage: str, secret: bytes) -> None:
        from limits.errors import ConfigurationError as LimitsConfigurationError
        from limits.storage import storage_from_string
        from limits.strategies import MovingWindowRateLimiter

        self._items = _items(limit, "CONSENT_RATE_LIMIT") if limit else []
        self._gpc = _items(GPC_RECEIPTS, "GPC_RECEIPTS")
        try:
            backend = storage_from_string(storage)
        except (LimitsConfigurationError, ValueError) as err:
            raise ConfigurationError(
                f"CONSENT_RATE_LIMIT_STORAGE {storage!r} cannot be used ({err}):"
                " use 'memory://', or 'redis://host:6379' with"
                ' pip install "limits[redis]".'
            ) from err
        self._strategy: Strategy = MovingWindowRateLimiter(backend)
        self._secret = secret
        #: True for a storage in this process's memory.
        self.is_local = storage.startswith("memory://")

    def _key(self, remote_addr: str | None) -> str:
        network = client_network(remote_addr).encode()
        return hmac.new(self._secret, network, hashlib.sha256).hexdigest()[:32]

    def check(self, remote_addr: str | None) -> None:
        """Count one post of the client at ``remote_addr``.

        A storage that cannot be reached counts nothing (the limit protects
        the site, it decides nothing about consent) and logs an error.

        :raises RateLimitedError: when the client is over a limit, with the
            seconds until it may post again.
        """
        if not self._items:
            return
        key = self._key(remote_addr)
        try:
            for item in self._items:
                if not self._strategy.hit(item, _NAMESPACE, "post", key):
                    stats = self._strategy.get_window_stats(
                        item, _NAMESPACE, "post", key
                    )
                    wait = max(1, math.ceil(stats.reset_time - time.time()))
                    raise RateLimitedError(
                        "Too many choices from your connection in a short time:"
                        f" try again in {wait} seconds.",
                        retry_after=wait,
                    )
        except RateLimitedError:
            raise
        except Exception as err:
            logger.error("The rate limit storage failed (%s): not counted.", err)

    def allows_gpc_receipt(self, remote_addr: str | None) -> bool:
        """True while the client at ``remote_addr`` is within the receipts a
        GPC signal may write for it (:data:`GPC_RECEIPTS`)."""
        key = self._key(remote_addr)
        try:
            return all(
                self._strategy.hit(item, _NAMESPACE, "gpc", key) for item in self._gpc
            )
        except Exception as err:
            logger.error("The rate limit storage failed (%s): not counted.", err)
            return True

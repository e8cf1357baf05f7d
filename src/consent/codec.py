"""ConsentState <-> a compact, signed cookie value.

The value is a short dotted payload signed with :class:`itsdangerous.Signer`
(HMAC-SHA256, its own salt), for example::

    1.Xk3v_a9Q.Tq.1b.ZcPe0WJmZ2tHwq9Wd3QPAA.aVmqgA.b0.<signature>

format, revision, layout check, granted bits, consent id, time, method and
flags. Signing a few dozen ASCII bytes is several times cheaper than a JSON
serializer, and the whole cookie stays near 100 bytes.

Anything that is not a value this codec wrote with a key it still holds,
under the current policy layout, decodes to ``None``: "no consent". Nothing
raises to the caller.
"""

from __future__ import annotations

import collections.abc as cabc
import hashlib
import hmac
import logging
import re
import struct
import typing as t
from datetime import datetime
from datetime import timezone

from itsdangerous import BadData
from itsdangerous import BadSignature
from itsdangerous import Signer
from itsdangerous.encoding import base64_decode
from itsdangerous.encoding import base64_encode
from itsdangerous.encoding import bytes_to_int
from itsdangerous.encoding import int_to_bytes
from itsdangerous.signer import HMACAlgorithm

from .state import METHODS
from .state import ConsentState

if t.TYPE_CHECKING:
    from .model import Policy

logger = logging.getLogger(__name__)

#: How many verified values a codec remembers.
VERIFIED_CACHE_SIZE = 4096

#: The format number written first in every value.
FORMAT = "1"

#: The salt that keeps consent signatures apart from every other use of the
#: same secret key (sessions, CSRF tokens).
SALT = "consent.cookie"

#: Values longer than this are refused before any parsing (browsers keep at
#: most 4096 bytes per cookie).
MAX_SIZE = 4096

_METHOD_CODES = {m: m[0] for m in METHODS}
_METHODS_BY_CODE = {code: m for m, code in _METHOD_CODES.items()}
_FLAG_GPC = 1


SecretKey = str | bytes


def layout_check(policy: Policy) -> str:
    """A two-character check of the order of ``policy.choice_keys``.

    The granted bits are positional. If a policy with a hand-written revision
    gains or reorders a category without a new revision, this check no longer
    matches and the old value means "no consent" instead of granting the
    wrong keys.
    """
    digest = hashlib.sha256(",".join(policy.choice_keys).encode()).digest()
    return base64_encode(digest[:2]).decode()[:2]


#: Length of a base64 SHA-256 signature without padding.
_SIGNATURE_LENGTH = 43


# The last of 43 base64 characters of a SHA-256 signature carries 4 bits and
# 2 unused ones: the codec always writes those as zero.
_CANONICAL_LAST = frozenset("AEIMQUYcgkosw048")

_PAYLOAD = re.compile(
    r"1\.([A-Za-z0-9_-]{1,16})\.([A-Za-z0-9_-]{2})\.([0-9a-f]{1,64})"
    r"\.([A-Za-z0-9_-]{16,32})\.([A-Za-z0-9_-]{1,11})\.([a-z])([0-9])"
)


def _is_canonical(value: str) -> bool:
    """True when the signature is spelled exactly as this codec writes it.

    Base64 has several spellings of the same bytes (padding, unused low bits);
    only the one the codec writes is accepted, so that "anything the codec
    did not write means no consent" holds to the letter.
    """
    dot = value.rfind(".")
    return len(value) - dot - 1 == _SIGNATURE_LENGTH and value[-1] in _CANONICAL_LAST


class _HMACSHA256(HMACAlgorithm):
    """HMAC-SHA256 through :func:`hmac.digest`, the one-shot C function:
    the same signature as itsdangerous' HMACAlgorithm, a few times faster."""

    def __init__(self) -> None:
        super().__init__(hashlib.sha256)

    def get_signature(self, key: bytes, value: bytes) -> bytes:
        return hmac.digest(key, value, "sha256")


class _Signer(Signer):
    """itsdangerous' Signer, deriving each key once instead of on every call."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._derived: dict[str | bytes | None, bytes] = {}

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        try:
            return self._derived[secret_key]
        except KeyError:
            key = self._derived[secret_key] = super().derive_key(secret_key)
            return key


class CookieCodec:
    """Encode and decode consent cookie values for one policy.

    Build it once per app: the signer and the key order are prepared here,
    not per request.

    :param secret_keys: Signing keys, oldest first. The newest (last) key
        signs; every key verifies, so keys can be rotated without asking
        visitors again. Drop a key to invalidate the cookies it signed.
    :param policy: The policy whose revision and layout values must match.
    :param salt: Keeps these signatures apart from other uses of the keys.
    """

    def __init__(
        self,
        secret_keys: cabc.Sequence[SecretKey],
        policy: Policy,
        *,
        salt: str = SALT,
    ) -> None:
        keys: list[t.Any] = [k for k in secret_keys if k]
        if not keys:
            from .exceptions import ConfigurationError

            raise ConfigurationError("CookieCodec needs at least one secret key.")
        self.policy = policy
        algorithm = _HMACSHA256()
        self._signer = _Signer(
            keys, salt=salt, digest_method=hashlib.sha256, algorithm=algorithm
        )
        self._newest = _Signer(
            keys[-1], salt=salt, digest_method=hashlib.sha256, algorithm=algorithm
        )
        self._has_old_keys = len(keys) > 1
        self._layout = layout_check(policy)
        self._keys = policy.choice_keys
        # Visitors share few distinct choices: build each granted set once.
        self._granted: dict[int, frozenset[str]] = {}
        # A visitor sends the same value on every page for months: values
        # verified recently are not verified and parsed again. Keyed by the
        # exact value; only values that verified go in; bounded.
        self._verified: dict[str, ConsentState] = {}

    def encode(self, state: ConsentState) -> str:
        """Return the signed cookie value for ``state``."""
        bits = 0
        for index, key in enumerate(self._keys):
            if key in state.granted:
                bits |= 1 << index
        seconds = int(state.given_at.timestamp())
        flags = _FLAG_GPC if state.gpc else 0
        payload = ".".join(
            (
                FORMAT,
                state.revision,
                self._layout,
                format(bits, "x"),
                state.consent_id,
                base64_encode(int_to_bytes(seconds)).decode(),
                _METHOD_CODES[state.method] + str(flags),
            )
        )
        return self._newest.sign(payload).decode("ascii")

    def decode(self, value: str | None, now: datetime) -> ConsentState | None:
        """Return the state in ``value``, or ``None`` for "no consent".

        ``None`` for a missing, oversized, non-ASCII, forged, truncated or
        unknown-format value, one signed by a key that was dropped, one made
        under another policy layout, and one older than the policy's
        ``max_age``. A value from another policy revision decodes to a state
        that grants nothing, so the visitor keeps their consent id.
        """
        if not value:
            return None
        state = self._verified.get(value)
        if state is None:
            state = self._verify(value)
            if state is None:
                return None
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                # The oldest entry goes (dicts keep insertion order).
                self._verified.pop(next(iter(self._verified)), None)
            self._verified[value] = state
        if now - state.given_at >= self.policy.max_age:
            return None
        return state

    def _verify(self, value: str) -> ConsentState | None:
        """The state a value holds if its signature verifies, whatever its
        age."""
        if len(value) > MAX_SIZE or not value.isascii():
            return None
        if not _is_canonical(value):
            return None
        try:
            payload = self._signer.unsign(value).decode("ascii")
        except BadSignature:
            logger.info("Ignoring a consent cookie with a bad signature.")
            return None
        try:
            return self._parse(payload)
        except (BadData, ValueError, KeyError, OverflowError, OSError, struct.error):
            logger.info("Ignoring a consent cookie with an unreadable payload.")
            return None

    def _granted_by_bits(self, bits: int) -> frozenset[str]:
        try:
            return self._granted[bits]
        except KeyError:
            granted = frozenset(
                key for i, key in enumerate(self._keys) if bits >> i & 1
            )
            if len(self._granted) < 1024:
                self._granted[bits] = granted
            return granted

    def needs_resign(self, value: str) -> bool:
        """True when ``value`` verifies, but not with the newest key.

        The caller can then write the same state again, signed with the newest
        key, so that the old key can be dropped soon. ``given_at`` is kept:
        re-signing never extends a choice.
        """
        return self._has_old_keys and not self._newest.validate(value)

    def _parse(self, payload: str) -> ConsentState | None:
        match = _PAYLOAD.fullmatch(payload)
        if match is None:
            return None
        revision, layout, bits_hex, consent_id, stamp, code, flag = match.groups()
        method = _METHODS_BY_CODE[code]
        flags = int(flag)
        given_at = datetime.fromtimestamp(
            bytes_to_int(base64_decode(stamp)), tz=timezone.utc
        )
        bits = int(bits_hex, 16)
        if revision == self.policy.revision:
            if layout != self._layout or bits >> len(self._keys):
                logger.warning(
                    "A consent cookie has revision %r but another layout of"
                    " categories and services: change the policy revision"
                    " whenever you add, remove or reorder them.",
                    revision,
                )
                return None
            granted = self._granted_by_bits(bits)
        else:
            granted = frozenset()
        return ConsentState(
            granted=granted,
            given_at=given_at,
            revision=revision,
            consent_id=consent_id,
            method=method,
            gpc=bool(flags & _FLAG_GPC),
        )

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import hashlib
import logging
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import pytest
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st
from itsdangerous import Signer
from itsdangerous.encoding import base64_decode
from itsdangerous.encoding import base64_encode

from consent import Category
from consent import ConfigurationError
from consent import ConsentState
from consent import Cookie
from consent import CookieCodec
from consent import Policy
from consent import Service
from consent import decide
from consent.codec import MAX_SIZE
from consent.codec import SALT
from consent.codec import layout_check
from consent.state import METHODS

KEY = "codec test key, long enough for sha256 signing"
OLD_KEY = "an older codec key that is being rotated out"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
CONSENT_ID = "kc7gGIfk3ZKWwFDSM0a4Qw"


@pytest.fixture(scope="module")
def codec(policy: Policy) -> CookieCodec:
    return CookieCodec([KEY], policy)


@pytest.fixture(scope="module")
def accepted(policy: Policy) -> ConsentState:
    return ConsentState(
        granted=frozenset(policy.choice_keys),
        given_at=NOW,
        revision=policy.revision,
        consent_id=CONSENT_ID,
    )


@pytest.fixture(scope="module")
def valid_value(codec: CookieCodec, accepted: ConsentState) -> str:
    return codec.encode(accepted)


def signer(key: str = KEY, salt: str = SALT) -> Signer:
    return Signer(key, salt=salt, digest_method=hashlib.sha256)


def payload_of(value: str) -> str:
    return value.rsplit(".", 1)[0]


def signature_of(value: str) -> str:
    return value.rsplit(".", 1)[1]


def test_round_trip(codec: CookieCodec, accepted: ConsentState) -> None:
    value = codec.encode(accepted)
    assert codec.decode(value, NOW) == accepted
    assert value.isascii()
    assert value.startswith(f"1.{accepted.revision}.")


@given(
    granted=st.frozensets(st.sampled_from(("analytics", "media", "westlake_map"))),
    given_at=st.datetimes(
        min_value=datetime(2001, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.just(timezone.utc),
    ),
    method=st.sampled_from(METHODS),
    gpc=st.booleans(),
    consent_id=st.from_regex(r"\A[A-Za-z0-9_-]{16,32}\Z"),
    age=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=181)),
)
def test_round_trip_property(
    codec: CookieCodec,
    granted: frozenset[str],
    given_at: datetime,
    method: str,
    gpc: bool,
    consent_id: str,
    age: timedelta,
) -> None:
    state = ConsentState(
        granted=granted,
        given_at=given_at,
        revision=codec.policy.revision,
        consent_id=consent_id,
        method=method,  # type: ignore[arg-type]
        gpc=gpc,
    )
    decoded = codec.decode(codec.encode(state), given_at + age)
    assert decoded == ConsentState(
        granted=granted,
        given_at=given_at.replace(microsecond=0),
        revision=state.revision,
        consent_id=consent_id,
        method=state.method,
        gpc=gpc,
    )


def test_cookie_of_a_large_policy_stays_small() -> None:
    def service(key: str) -> Service:
        return Service(
            key,
            key.title(),
            cookies=(
                Cookie(name=f"{key}_id", provider="P", purpose="X", duration="1y"),
            ),
        )

    policy = Policy(
        (
            Category("necessary", "Necessary", required=True),
            Category("analytics", "Analytics", services=tuple(map(service, "abcd"))),
            Category("marketing", "Marketing", services=tuple(map(service, "efg"))),
            Category("media", "Media", services=tuple(map(service, "hij"))),
        )
    )
    assert len(policy.choice_keys) == 13
    state = decide(policy, "accept_all", now=NOW, method="preferences")
    state = dataclasses.replace(state, gpc=True)
    value = CookieCodec([KEY], policy).encode(state)
    assert len(("consent=" + value).encode()) <= 120


def flip_signature_byte(value: str) -> str:
    raw = bytearray(base64_decode(signature_of(value)))
    raw[5] ^= 0x01
    return f"{payload_of(value)}.{base64_encode(bytes(raw)).decode()}"


def other_payload_old_signature(value: str) -> str:
    fields = payload_of(value).split(".")
    fields[3] = "1"  # analytics only, instead of everything
    return ".".join(fields) + "." + signature_of(value)


def wrong_format(value: str) -> str:
    return signer().sign("2" + payload_of(value)[1:]).decode()


def other_salt(value: str) -> str:
    return signer(salt="consent.other").sign(payload_of(value)).decode()


def dropped_key(value: str) -> str:
    return signer(key=OLD_KEY).sign(payload_of(value)).decode()


def session_cookie(value: str) -> str:
    app = Flask("test")
    app.secret_key = KEY
    serializer = app.session_interface.get_signing_serializer(app)
    assert serializer is not None
    return serializer.dumps({"granted": ["analytics", "media"]})


def session_cookie_with_payload(value: str) -> str:
    """The consent payload itself, signed as a Flask session with the same key."""
    app = Flask("test")
    app.secret_key = KEY
    serializer = app.session_interface.get_signing_serializer(app)
    assert serializer is not None
    return serializer.dumps(payload_of(value))


BAD_VALUES: dict[str, cabc.Callable[[str], str]] = {
    "empty": lambda v: "",
    "dot": lambda v: ".",
    "dots": lambda v: "." * 8,
    "flipped signature byte": flip_signature_byte,
    "changed payload, old signature": other_payload_old_signature,
    "truncated by one": lambda v: v[:-1],
    "truncated to half": lambda v: v[: len(v) // 2],
    "payload only": payload_of,
    "signature only": signature_of,
    "extra char": lambda v: v + "x",
    "extra field": lambda v: payload_of(v) + ".x." + signature_of(v),
    "upper-cased": str.upper,
    "lower-cased": str.lower,
    "wrong format version": wrong_format,
    "non-ASCII": lambda v: v[:-1] + "é",
    "non-ASCII payload": lambda v: v.replace(".", "\u2024", 1),
    "signed non-ASCII payload": lambda v: signer().sign(payload_of(v) + "é").decode(),
    "over 4 KB": lambda v: v + "A" * MAX_SIZE,
    "signed with a dropped key": dropped_key,
    "signed with another salt": other_salt,
    "Flask session cookie": session_cookie,
    "Flask session cookie of the payload": session_cookie_with_payload,
}


def test_signer_of_these_tests_signs_like_the_codec(valid_value: str) -> None:
    # So "wrong format" and "another salt" differ from a real value in
    # exactly that one respect.
    assert signer().sign(payload_of(valid_value)).decode() == valid_value


@pytest.mark.parametrize("tamper", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_bad_value_decodes_to_none(codec: CookieCodec, valid_value: str, tamper):
    bad = tamper(valid_value)
    assert bad != valid_value
    assert codec.decode(bad, NOW) is None


def test_bad_value_is_logged_without_the_value(
    codec: CookieCodec, valid_value: str, caplog: pytest.LogCaptureFixture
) -> None:
    forged = flip_signature_byte(valid_value)
    with caplog.at_level(logging.INFO, logger="consent.codec"):
        assert codec.decode(forged, NOW) is None
    assert [r.levelno for r in caplog.records] == [logging.INFO]
    assert signature_of(forged) not in caplog.text
    assert payload_of(forged) not in caplog.text


def test_none_decodes_to_none(codec: CookieCodec) -> None:
    assert codec.decode(None, NOW) is None


def test_expired_value_decodes_to_none(codec: CookieCodec, valid_value: str) -> None:
    max_age = codec.policy.max_age
    assert codec.decode(valid_value, NOW + max_age - timedelta(seconds=1)) is not None
    assert codec.decode(valid_value, NOW + max_age) is None
    assert codec.decode(valid_value, NOW + timedelta(days=3650)) is None


def test_other_layout_with_the_same_manual_revision_decodes_to_none(
    policy: Policy, accepted: ConsentState
) -> None:
    before = Policy(policy.categories, revision="7")
    marketing = Category("marketing", "Marketing")
    after = Policy((*policy.categories[:2], marketing, *policy.categories[2:]), "7")
    assert before.revision == after.revision
    assert layout_check(before) != layout_check(after)
    value = CookieCodec([KEY], before).encode(
        dataclasses.replace(accepted, revision="7")
    )
    assert CookieCodec([KEY], before).decode(value, NOW) is not None
    assert CookieCodec([KEY], after).decode(value, NOW) is None


def test_reordered_layout_with_the_same_manual_revision_decodes_to_none(
    policy: Policy,
) -> None:
    necessary, analytics, media = policy.categories
    before = Policy((necessary, analytics, media), revision="7")
    after = Policy((necessary, media, analytics), revision="7")
    state = decide(before, "save", now=NOW, chosen=["analytics"])
    value = CookieCodec([KEY], before).encode(state)
    assert CookieCodec([KEY], after).decode(value, NOW) is None


def test_value_from_another_revision_grants_nothing_but_keeps_the_id(
    policy_factory, accepted: ConsentState
) -> None:
    old_policy = policy_factory()
    new_policy = policy_factory(
        Cookie(name="_hz_visit", provider="This site", purpose="X", duration="1 day")
    )
    assert old_policy.revision != new_policy.revision
    value = CookieCodec([KEY], old_policy).encode(accepted)
    state = CookieCodec([KEY], new_policy).decode(value, NOW)
    assert state is not None
    assert state.granted == frozenset()
    assert state.consent_id == CONSENT_ID
    assert state.revision == old_policy.revision
    assert state.given_at == NOW
    assert state.needs_banner(new_policy, NOW)
    assert not state.allows(new_policy, "analytics", NOW)


def test_key_rotation(policy: Policy, accepted: ConsentState) -> None:
    k1, k2 = OLD_KEY, KEY
    old_value = CookieCodec([k1], policy).encode(accepted)
    rotating = CookieCodec([k1, k2], policy)
    assert rotating.decode(old_value, NOW) == accepted
    assert rotating.needs_resign(old_value)
    new_value = rotating.encode(accepted)
    assert not rotating.needs_resign(new_value)
    # The newest key signs: the new value verifies without the old key.
    assert CookieCodec([k2], policy).decode(new_value, NOW) == accepted
    assert CookieCodec([k2], policy).decode(old_value, NOW) is None


def test_empty_keys_are_ignored_and_one_is_needed(policy: Policy) -> None:
    assert CookieCodec(["", KEY], policy).decode(
        CookieCodec([KEY], policy).encode(decide(policy, "reject_all", now=NOW)),
        NOW,
    )
    with pytest.raises(ConfigurationError, match="at least one secret key"):
        CookieCodec(["", None], policy)  # type: ignore[list-item]


def test_value_holds_no_personal_data(codec: CookieCodec, accepted) -> None:
    value = codec.encode(accepted)
    assert set(value) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
    )
    assert len(value.split(".")) == 8


@given(st.text(max_size=300))
def test_decode_never_raises_on_text(codec: CookieCodec, value: str) -> None:
    assert codec.decode(value, NOW) is None


@given(
    st.lists(
        st.text(
            alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
            max_size=24,
        ),
        min_size=0,
        max_size=9,
    )
)
def test_decode_never_raises_on_signed_dotted_values(
    codec: CookieCodec, fields: list[str]
) -> None:
    value = signer().sign(".".join(fields)).decode()
    result = codec.decode(value, NOW)
    assert result is None or isinstance(result, ConsentState)


@pytest.mark.parametrize(
    "stamp",
    [
        pytest.param("A", id="stamp not base64"),
        pytest.param("AAAAAAAAAAAA", id="stamp over 8 bytes"),
    ],
)
def test_signed_payload_with_a_bad_stamp_decodes_to_none(
    codec: CookieCodec, stamp: str
) -> None:
    policy = codec.policy
    payload = ".".join(
        ("1", policy.revision, layout_check(policy), "1", CONSENT_ID, stamp, "b0")
    )
    assert codec.decode(signer().sign(payload).decode(), NOW) is None


@given(
    revision_matches=st.booleans(),
    bits=st.from_regex(r"\A[0-9a-fA-F_-]{1,66}\Z"),
    consent_id=st.from_regex(r"\A[A-Za-z0-9_-]{16,32}\Z")
    | st.from_regex(r"\A[A-Za-z0-9_-]{1,40}\Z"),
    stamp=st.from_regex(r"\A[A-Za-z0-9_-]{0,14}\Z"),
    tail=st.tuples(st.sampled_from("bpageq"), st.sampled_from("0123456789a_-")).map(
        "".join
    )
    | st.from_regex(r"\A[A-Za-z0-9_-]{1,3}\Z"),
)
def test_decode_never_raises_on_signed_payloads_of_the_right_shape(
    codec: CookieCodec,
    revision_matches: bool,
    bits: str,
    consent_id: str,
    stamp: str,
    tail: str,
) -> None:
    policy = codec.policy
    revision = policy.revision if revision_matches else "other"
    payload = ".".join(
        ("1", revision, layout_check(policy), bits, consent_id, stamp, tail)
    )
    result = codec.decode(signer().sign(payload).decode(), NOW)
    assert result is None or isinstance(result, ConsentState)
    if result is not None:
        assert result.granted <= set(policy.choice_keys)


@pytest.mark.parametrize(
    "respell",
    [
        lambda s: s + "=",
        # The last of 43 characters carries 2 unused bits: flip one of them.
        lambda s: (
            s[:-1]
            + base64_encode(bytes([base64_decode(s[-1] + "A")[0] ^ 4])).decode()[0]
        ),
    ],
    ids=["padding", "unused low bits"],
)
def test_only_the_canonical_signature_spelling_verifies(
    codec: CookieCodec, valid_value: str, respell: cabc.Callable[[str], str]
) -> None:
    # Base64 spells the same bytes several ways; only the codec's own counts.
    assert codec.decode(valid_value, NOW) is not None
    assert codec.decode(respell(valid_value), NOW) is None

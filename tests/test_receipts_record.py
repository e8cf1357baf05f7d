from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consent.model import Category
from consent.model import Policy
from consent.model import Service
from consent.receipts import Receipt
from consent.receipts import ShownTexts
from consent.receipts.record import MAX_PATH
from consent.receipts.record import cut_path
from consent.receipts.record import is_texts_line
from consent.state import METHODS
from consent.state import ConsentState
from tests.factories import T0
from tests.factories import receipt_n


@pytest.fixture
def policy():
    return Policy(
        categories=(
            Category("necessary", "Strictly necessary", required=True),
            Category(
                "analytics",
                "Analytics",
                services=(Service("matomo", "Matomo"),),
            ),
            Category("marketing", "Marketing"),
        )
    )


def test_from_state_records_the_decision(policy):
    state = ConsentState(
        granted=frozenset({"analytics", "matomo"}),
        given_at=T0,
        revision=policy.revision,
        consent_id="k3v-a9QTq1bZcPe0WJmZ2t",
        method="preferences",
    )
    receipt = Receipt.from_state(
        state,
        policy,
        texts_hash="cd" * 32,
        language="zh-Hans",
        path="/consent/preferences?next=/map&token=secret",
        user_agent="Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Firefox/133.0"
        + " x" * 500,
        ip="203.0.113.0/24",
    )
    assert uuid.UUID(hex=receipt.receipt_id).version == 4
    assert receipt.receipt_id == uuid.UUID(receipt.receipt_id).hex
    assert receipt.consent_id == state.consent_id
    assert receipt.created_at == T0
    assert receipt.revision == policy.revision
    assert receipt.choices_dict() == {
        "analytics": True,
        "matomo": True,
        "marketing": False,
    }
    assert [key for key, _ in receipt.choices] == list(policy.choice_keys)
    assert receipt.method == "preferences"
    assert receipt.language == "zh-Hans"
    assert receipt.path == "/consent/preferences"
    assert receipt.user_agent == "Firefox 133 / Linux"
    assert receipt.ip == "203.0.113.0/24"


def test_from_state_takes_an_explicit_time_and_makes_new_ids(policy):
    state = ConsentState(
        granted=frozenset(), given_at=T0, revision="r1", consent_id="visitor-1"
    )
    later = T0 + timedelta(seconds=3)
    kwargs = dict(texts_hash="h", language="en", path="/", user_agent=None, ip=None)
    first = Receipt.from_state(state, policy, now=later, **kwargs)
    second = Receipt.from_state(state, policy, **kwargs)
    assert first.created_at == later
    assert second.created_at == T0
    assert first.receipt_id != second.receipt_id
    assert first.user_agent == ""
    assert not any(first.choices_dict().values())


def test_receipt_cleans_visitor_text():
    receipt = Receipt(
        receipt_id="a" * 32,
        consent_id="visitor-1",
        created_at=datetime(2025, 3, 1, 20, 0, tzinfo=timezone(timedelta(hours=8))),
        revision="r1",
        texts_hash="h",
        choices={"analytics": 1},
        method="api",
        language="en\r\nX-Injected: 1",
        path="/a\x00b?q=1#frag",
        user_agent="Agent\x00\x1b[31m\ud800",
        ip="203.0.113.0/24",
    )
    assert receipt.created_at == datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
    assert receipt.created_at.utcoffset() == timedelta(0)
    assert receipt.choices == (("analytics", True),)
    assert receipt.language == "enX-Injected: 1"
    assert receipt.path == "/ab"
    assert receipt.user_agent == "Agent[31m?"


@pytest.mark.parametrize(
    "field, value",
    [
        ("created_at", datetime(2025, 3, 1)),
        ("method", "cookie-wall"),
        ("receipt_id", ""),
        ("receipt_id", "x" * 65),
        ("consent_id", "bad\nid"),
    ],
)
def test_receipt_refuses_invalid_fields(field, value):
    fields = {
        "receipt_id": "a" * 32,
        "consent_id": "visitor-1",
        "created_at": T0,
        "revision": "r1",
        "texts_hash": "h",
        "choices": (),
        "method": "banner",
        "language": "en",
        "path": "/",
        "user_agent": "",
        "ip": None,
    }
    fields[field] = value
    with pytest.raises(ValueError):
        Receipt(**fields)


_text = st.text(max_size=60)


@given(
    consent_id=st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=126),
        min_size=1,
        max_size=64,
    ),
    created_at=st.datetimes(
        min_value=datetime(1970, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.just(timezone.utc),
    ),
    revision=_text,
    choices=st.dictionaries(st.text(min_size=1, max_size=20), st.booleans()),
    method=st.sampled_from(METHODS),
    language=_text,
    path=st.text(max_size=300),
    user_agent=st.text(max_size=300),
    ip=st.none() | _text,
)
def test_json_round_trip(
    consent_id, created_at, revision, choices, method, language, path, user_agent, ip
):
    receipt = Receipt(
        receipt_id=uuid.uuid4().hex,
        consent_id=consent_id,
        created_at=created_at,
        revision=revision,
        texts_hash="ab" * 32,
        choices=tuple(choices.items()),
        method=method,
        language=language,
        path=path,
        user_agent=user_agent,
        ip=ip,
    )
    line = receipt.to_json()
    assert "\n" not in line
    assert Receipt.from_json(line) == receipt
    assert Receipt.from_json(line.encode()) == receipt


@pytest.mark.parametrize(
    "text",
    [
        "{",
        "[]",
        '{"v": 2}',
        receipt_n().to_json().replace('"v":1', '"v":2'),
        receipt_n().to_json().replace('"maps":true', '"maps":"yes"'),
        receipt_n().to_json().replace('"language":"de"', '"language":3'),
        receipt_n().to_json().replace('"ip":"203.0.113.0/24"', '"ip":4'),
        receipt_n().to_json().replace("+00:00", ""),
    ],
)
def test_from_json_refuses_what_is_not_a_receipt(text):
    with pytest.raises(ValueError):
        Receipt.from_json(text)


def test_a_receipt_read_back_keeps_its_user_agent():
    # Receipts written before user agents were reduced are read back as they
    # were stored: the constructor cleans text, it does not reduce it again.
    full = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
    kept = Receipt.from_json(
        receipt_n()
        .to_json()
        .replace('"user_agent":"Mozilla/5.0"', json.dumps({"user_agent": full})[1:-1])
    )
    assert kept.user_agent == full


@pytest.mark.parametrize(
    "path, expected",
    [
        ("/visit?token=secret", "/visit"),
        ("/visit#top?x", "/visit"),
        ("/a?b#c", "/a"),
        ("/" + "p" * 5000, "/" + "p" * (MAX_PATH - 1)),
        ("/" + "p" * 5000 + "?" + "q" * 5000, "/" + "p" * (MAX_PATH - 1)),
    ],
)
def test_paths_are_cut_at_the_query_and_bounded(path, expected):
    assert cut_path(path) == expected
    made = Receipt(**{**receipt_n().__dict__, "path": path})
    assert made.path == expected
    assert len(made.path) <= 2048


# What was shown


def test_shown_texts_hash_their_canonical_json():
    content = {"texts": {"banner.title": "Cookies? 饼干?"}, "revision": "r1"}
    texts = ShownTexts.from_content(content, first_seen=T0)
    assert texts.canonical == json.dumps(content, sort_keys=True, ensure_ascii=False)
    assert texts.texts_hash == hashlib.sha256(texts.canonical.encode()).hexdigest()
    assert texts.is_intact
    assert texts.content() == content
    # The same content in another key order is the same version.
    again = ShownTexts.from_content(dict(reversed(content.items())), first_seen=T0)
    assert again.texts_hash == texts.texts_hash
    changed = ShownTexts.from_content(
        {**content, "texts": {"banner.title": "Cookies?"}}, first_seen=T0
    )
    assert changed.texts_hash != texts.texts_hash


def test_shown_texts_json_round_trip():
    texts = ShownTexts.from_content(
        {"texts": {"a": '\u00e9\n"quoted"'}}, first_seen=T0 + timedelta(hours=1)
    )
    line = texts.to_json()
    assert "\n" not in line
    assert is_texts_line(line.encode())
    assert not is_texts_line(receipt_n().to_json().encode())
    assert ShownTexts.from_json(line) == texts
    assert ShownTexts.from_json(line.encode()) == texts


@pytest.mark.parametrize(
    "change",
    [
        lambda d: {**d, "canonical": d["canonical"] + " "},
        lambda d: {**d, "kind": "receipt"},
        lambda d: {**d, "v": 2},
        lambda d: {**d, "first_seen": None},
        lambda d: {**d, "texts_hash": "x" * 65},
    ],
)
def test_shown_texts_refuse_what_does_not_match(change):
    texts = ShownTexts.from_content({"texts": {}}, first_seen=T0)
    data = change(json.loads(texts.to_json()))
    with pytest.raises(ValueError):
        ShownTexts.from_json(json.dumps(data))


def test_shown_texts_need_an_aware_time():
    with pytest.raises(ValueError, match="timezone-aware"):
        ShownTexts.from_content({}, first_seen=datetime(2025, 1, 1))
    texts = ShownTexts.from_content(
        {}, first_seen=datetime(2025, 1, 1, 8, tzinfo=timezone(timedelta(hours=8)))
    )
    assert texts.first_seen == datetime(2025, 1, 1, tzinfo=timezone.utc)

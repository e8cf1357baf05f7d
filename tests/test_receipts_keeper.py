from __future__ import annotations

import gc
import json
import logging
import typing as t
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from consent.exceptions import ConfigurationError
from consent.model import Policy
from consent.receipts import RECEIPT_DEFAULTS
from consent.receipts import DurableRecorder
from consent.receipts import ReceiptKeeper
from consent.receipts import ReceiptNotKeptError
from consent.receipts import SQLiteReceiptStore
from consent.receipts import keeper as keeper_module
from consent.receipts.spoolfile import spool_paths
from consent.state import ConsentState
from tests.factories import T0
from tests.isolated import run_isolated

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


def decision(
    policy: Policy,
    *,
    granted: t.Iterable[str] = ("analytics",),
    seconds: float = 0,
    consent_id: str = "visitor-1",
    method: str = "banner",
) -> ConsentState:
    return ConsentState(
        granted=frozenset(granted),
        given_at=T0 + timedelta(seconds=seconds),
        revision=policy.revision,
        consent_id=consent_id,
        method=t.cast(t.Any, method),
    )


def keep(keeper: ReceiptKeeper, state: ConsentState, **request: t.Any) -> t.Any:
    values = {
        "language": "en",
        "path": "/",
        "user_agent": FIREFOX,
        "remote_addr": "203.0.113.77",
        **request,
    }
    return keeper.keep(state, **values)


@pytest.fixture
def keepers(policy: Policy, tmp_path: Path) -> t.Iterator[t.Callable[..., t.Any]]:
    made: list[ReceiptKeeper] = []

    def make(**settings: t.Any) -> ReceiptKeeper:
        settings.setdefault("folder", tmp_path / "instance")
        keeper = ReceiptKeeper(policy, **settings)
        made.append(keeper)
        return keeper

    yield make
    for keeper in made:
        keeper.close()


def test_keep_records_what_the_request_showed(keepers, policy: Policy) -> None:
    keeper = keepers()
    receipt = keep(
        keeper,
        decision(policy),
        language="de",
        path="/besuch?token=secret#top",
    )
    assert receipt.consent_id == "visitor-1"
    assert receipt.user_agent == "Firefox 133 / Linux"
    assert receipt.ip == "203.0.113.0/24"
    assert receipt.path == "/besuch"
    assert receipt.language == "de"
    assert receipt.choices_dict() == {
        "analytics": True,
        "media": False,
        "westlake_map": False,
    }
    store = keeper.store()
    assert store.get(receipt.receipt_id) == receipt
    texts = store.get_texts(receipt.texts_hash)
    assert texts is not None and texts.is_intact
    assert texts.first_seen == receipt.created_at
    shown = texts.content()
    assert shown["revision"] == policy.revision
    assert [c["key"] for c in shown["declarations"]] == [
        "necessary",
        "analytics",
        "media",
    ]
    assert shown["texts"]["button.accept_all"] == "Alle akzeptieren"


def test_a_long_path_is_bounded(keepers, policy: Policy) -> None:
    receipt = keep(keepers(), decision(policy), path="/" + "a" * 10_000 + "?q")
    assert len(receipt.path) == 2048


def test_the_texts_hash_follows_every_word(keepers, policy: Policy) -> None:
    # R19: the same texts give the same hash; one word changed in one
    # language gives a new hash and a new row, which the next receipts name.
    plain = keepers()
    assert plain.texts_hash("en") == keepers().texts_hash("en")
    assert plain.texts_hash("en") != plain.texts_hash("fr")
    first = keep(plain, decision(policy))
    plain.close()
    edited = keepers(texts={"en": {"banner.title": "We use a few cookies"}})
    assert edited.texts_hash("fr") == plain.texts_hash("fr")
    second = keep(edited, decision(policy, granted=(), seconds=1))
    assert second.texts_hash != first.texts_hash
    store = edited.store()
    old, new = store.get_texts(first.texts_hash), store.get_texts(second.texts_hash)
    assert old is not None and new is not None
    assert new.content()["texts"]["banner.title"] == "We use a few cookies"
    assert old.content()["texts"]["banner.title"] != "We use a few cookies"


def test_identical_repeats_are_kept_once(keepers, policy: Policy) -> None:
    keeper = keepers(duplicate_window=60)
    first = keep(keeper, decision(policy))
    # The same client posting the same choice again and again.
    repeats = [keep(keeper, decision(policy, seconds=n / 10)) for n in range(1, 200)]
    assert all(repeat == first for repeat in repeats)
    store = keeper.store()
    assert store.count() == 1
    # Another visitor, another choice, another method: receipts of their own.
    other = keep(keeper, decision(policy, consent_id="visitor-2", seconds=1))
    changed = keep(keeper, decision(policy, granted=(), seconds=2))
    assert keep(keeper, decision(policy, seconds=3)) != first
    by_form = keep(keeper, decision(policy, method="preferences", seconds=4))
    assert len({r.receipt_id for r in (first, other, changed, by_form)}) == 4
    # Once the window has passed, the same choice is receipted again.
    later = keep(keeper, decision(policy, method="preferences", seconds=70))
    assert later != by_form
    assert keeper.store().count() == 6


def test_repeats_are_receipted_when_the_window_is_off(keepers, policy) -> None:
    keeper = keepers(duplicate_window=0)
    for n in range(3):
        keep(keeper, decision(policy, seconds=n))
    assert keeper.store().count() == 3


def test_the_memory_of_repeats_is_bounded(keepers, policy, monkeypatch) -> None:
    monkeypatch.setattr(keeper_module, "DUPLICATE_MEMORY", 3)
    keeper = keepers()
    for n in range(5):
        keep(keeper, decision(policy, consent_id=f"visitor-{n}"))
    assert len(keeper._last) == 3
    # The oldest was forgotten, so its repeat is receipted once more.
    keep(keeper, decision(policy, consent_id="visitor-0", seconds=1))
    keep(keeper, decision(policy, consent_id="visitor-4", seconds=1))
    assert keeper.store().count() == 6


def test_the_memory_of_repeats_adds_no_work_for_the_garbage_collector(
    keepers, policy
) -> None:
    # Thousands of receipts alive in a server's memory would lengthen every
    # pass of the collector: what is remembered are plain values, which
    # it does not track.
    keeper = keepers()
    keep(keeper, decision(policy, consent_id="visitor-warm"))
    assert keeper.store().count() == 1
    gc.collect()
    before = len(gc.get_objects())
    for n in range(5_000):
        keep(keeper, decision(policy, consent_id=f"visitor-{n}"))
    assert keeper.store().count() == 5_001
    gc.collect()
    # What is left does not grow with the receipts (the shipper's last
    # batches, statement caches); two tracked objects per remembered receipt
    # would be 10,000.
    assert len(gc.get_objects()) - before < 1_500
    # A repeat still gets the earlier receipt back.
    first = keep(keeper, decision(policy, consent_id="visitor-7", seconds=1))
    assert first.consent_id == "visitor-7"
    assert first.created_at == T0
    assert keeper.store().count() == 5_001


def test_a_keeper_of_no_receipts(keepers, policy: Policy, tmp_path: Path) -> None:
    keeper = keepers(url=None)
    assert not keeper.is_enabled
    assert keep(keeper, decision(policy)) is None
    with pytest.raises(ConfigurationError, match="off"):
        keeper.store()
    assert not (tmp_path / "instance").exists()


def test_a_keeper_without_a_policy_manages_but_cannot_keep(
    policy: Policy, tmp_path: Path
) -> None:
    keeper = ReceiptKeeper(None, url="sqlite", folder=tmp_path)
    assert keeper.store().count() == 0
    with pytest.raises(ConfigurationError, match="no policy"):
        keep(keeper, decision(policy))
    keeper.close()


def test_an_engine_is_used_and_left_open(keepers, policy, tmp_path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'engine.db'}")
    pool = engine.pool
    keeper = keepers(url=engine)
    receipt = keep(keeper, decision(policy))
    keeper.close()
    assert engine.pool is pool
    with engine.connect() as conn:
        ids = conn.execute(sa.text("SELECT receipt_id FROM consent_receipts"))
        assert list(ids.scalars()) == [receipt.receipt_id]
    engine.dispose()


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"ip_mode": "sha256"}, "CONSENT_RECEIPTS_IP"),
        ({"ip_mode": "hash"}, "CONSENT_RECEIPTS_PEPPER"),
        ({"retention": 0}, "CONSENT_RECEIPTS_RETENTION"),
        ({"retention": timedelta(days=-1)}, "CONSENT_RECEIPTS_RETENTION"),
        ({"timeout": 0}, "CONSENT_RECEIPTS_TIMEOUT"),
        ({"schema": "consent"}, "schema"),
        ({"url": "sqlite:///:memory:"}, "in-memory"),
        ({"url": "no url at all"}, "not a database URL"),
    ],
)
def test_settings_that_cannot_work_are_refused_at_once(
    keepers, settings: dict[str, t.Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        keepers(**settings)


@pytest.mark.parametrize(
    "blocked, expected",
    [
        ("sqlalchemy", 'pip install "cookie-consent[sql]"'),
        ("psycopg", "driver for 'postgresql+psycopg' is not installed"),
    ],
)
def test_a_missing_extra_is_found_when_the_keeper_is_built(
    tmp_path: Path, blocked: str, expected: str
) -> None:
    result = run_isolated(
        f"""
        from consent.exceptions import ConfigurationError
        from consent.receipts import ReceiptKeeper
        from tests.factories import gpc_policy
        try:
            ReceiptKeeper(
                gpc_policy(),
                url="postgresql+psycopg://nobody@127.0.0.1:1/none",
                folder={str(tmp_path)!r},
            )
        except ConfigurationError as err:
            print("refused:", err)
        """,
        blocked=(blocked,),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("refused:")
    assert expected in result.stdout


def test_from_config_reads_the_settings(policy: Policy, tmp_path: Path) -> None:
    config = {
        **RECEIPT_DEFAULTS,
        "CONSENT_RECEIPTS_IP": "hash",
        "CONSENT_RECEIPTS_PEPPER": "p" * 32,
        "CONSENT_RECEIPTS_RETENTION": 30,
        "CONSENT_RECEIPTS_SPOOL_DIR": str(tmp_path / "spool"),
        "CONSENT_RECEIPTS_TIMEOUT": "1.5",
        "CONSENT_TEXTS": {"en": {"banner.title": "Hello"}},
    }
    keeper = ReceiptKeeper.from_config(policy, config, folder=tmp_path)
    assert keeper.pepper == b"p" * 32
    assert keeper.retention == timedelta(days=30)
    assert keeper.spool_dir == str(tmp_path / "spool")
    assert keeper.timeout == 1.5
    assert keeper.texts == {"en": {"banner.title": "Hello"}}
    # Missing keys take their defaults.
    default = ReceiptKeeper.from_config(policy, {}, folder=tmp_path)
    assert default.url == "sqlite"
    assert default.ip_mode == "truncate"
    assert default.spool_dir == str(tmp_path)
    assert default.schema is None


# Folders that cannot be used


@pytest.fixture
def file_in_the_way(tmp_path: Path) -> Path:
    """A regular file where a folder would go: creating a folder under it
    fails as on a read-only file system, even for root."""
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    return blocker


def test_an_instance_folder_that_cannot_be_made(
    keepers, policy, file_in_the_way: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="consent")
    folder = file_in_the_way / "instance"
    keeper = keepers(folder=folder)
    for n in range(3):
        with pytest.raises(ReceiptNotKeptError) as caught:
            keep(keeper, decision(policy, seconds=n))
        assert isinstance(caught.value.__cause__, OSError)
    # Logged once, with the folder and the reason.
    (record,) = caplog.records
    assert str(folder) in record.getMessage()
    assert "Not a directory" in record.getMessage()
    assert "203.0.113" not in caplog.text


def test_a_spool_folder_that_cannot_be_made_while_the_store_answers(
    keepers, policy, file_in_the_way: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="consent")
    spool_dir = file_in_the_way / "spool"
    keeper = keepers(spool_dir=spool_dir)
    first = keep(keeper, decision(policy))
    keep(keeper, decision(policy, granted=(), seconds=1))
    assert keeper.store().count() == 2
    assert keeper.store().get(first.receipt_id) == first
    (record,) = caplog.records
    assert str(spool_dir) in record.getMessage()
    assert "only while the database answers" in record.getMessage()


def test_a_spool_folder_that_cannot_be_made_while_the_store_fails(
    keepers, policy, tmp_path: Path, file_in_the_way: Path, caplog
) -> None:
    caplog.set_level(logging.ERROR, logger="consent")
    spool_dir = file_in_the_way / "spool"
    keeper = keepers(
        url=f"sqlite:///{file_in_the_way}/receipts.db",
        spool_dir=spool_dir,
        timeout=0.5,
    )
    for n in range(2):
        with pytest.raises(ReceiptNotKeptError):
            keep(keeper, decision(policy, seconds=n))
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2  # the folder, then why nothing could be kept
    assert all(str(spool_dir) in message for message in messages)
    assert "grants are refused" in messages[1]


def test_logs_hold_no_address_and_no_agent(keepers, policy, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="consent")
    keep(keepers(), decision(policy), remote_addr="198.51.100.23")
    assert "198.51.100" not in caplog.text
    assert "Firefox" not in caplog.text


def test_texts_are_kept_with_the_spool_when_the_store_is_down(
    keepers, policy, tmp_path: Path, file_in_the_way: Path
) -> None:
    spool_dir = tmp_path / "spool"
    keeper = keepers(url=f"sqlite:///{file_in_the_way}/r.db", spool_dir=spool_dir)
    receipt = keep(keeper, decision(policy))
    keeper.close()
    # The background replay may have taken the spool aside, and failed.
    (spool,) = spool_paths(str(spool_dir))
    (taken,) = [p for p in (spool, f"{spool}.replaying") if Path(p).exists()]
    first, second = Path(taken).read_text().splitlines()
    assert json.loads(first)["kind"] == "texts"
    assert json.loads(first)["texts_hash"] == receipt.texts_hash
    assert json.loads(second)["receipt_id"] == receipt.receipt_id
    file_in_the_way.unlink()
    file_in_the_way.mkdir()
    store = SQLiteReceiptStore(file_in_the_way / "r.db")
    recorder = DurableRecorder(store, spool, background=False)
    assert recorder.flush() == 1
    recorder.close()
    assert store.get_texts(receipt.texts_hash) is not None
    assert store.get(receipt.receipt_id) == receipt
    store.close()

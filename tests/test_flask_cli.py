from __future__ import annotations

import csv
import io
import json
import os
import pty
import re
import select
import stat
import subprocess
import sys
import textwrap
import typing as t
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from pathlib import Path

import pytest
from flask import Flask

from consent import Policy
from consent.flask import Consent
from consent.flask.testing import choose
from consent.receipts import CSV_COLUMNS
from consent.receipts import DurableRecorder
from consent.receipts import Receipt
from consent.receipts import ReceiptStore
from consent.receipts import SQLiteReceiptStore
from consent.receipts import parse_utc
from tests.factories import receipt

SECRET_KEY = "test secret key, long enough to sign consent cookies"
PAGE = "<!doctype html><html><head><title>Home</title></head><body>Hi</body></html>"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


def make_app(policy: Policy, instance: Path, **config: t.Any) -> Flask:
    app = Flask("test", instance_path=str(instance))
    app.config.update(
        TESTING=True, SECRET_KEY=SECRET_KEY, CONSENT_RECEIPTS_URL="sqlite"
    )
    app.config.update(config)
    Consent(app, policy)

    @app.get("/")
    def index() -> str:
        return PAGE

    return app


def keeper_of(app: Flask) -> t.Any:
    keeper = app.extensions["consent"].site(app).receipts
    assert keeper is not None
    return keeper


def store_of(app: Flask) -> ReceiptStore:
    store: ReceiptStore = keeper_of(app).store()
    return store


def make_receipt(at: datetime, **fields: t.Any) -> Receipt:
    return receipt(at, path="/besuch", ip="203.0.113.0/24", **fields)


@pytest.fixture
def app(policy: Policy, tmp_path: Path) -> t.Iterator[Flask]:
    app = make_app(policy, tmp_path)
    yield app
    keeper_of(app).close()


@pytest.fixture
def runner(app: Flask) -> t.Any:
    return app.test_cli_runner()


@pytest.fixture
def days(app: Flask) -> list[Receipt]:
    """One receipt a day for five days from T0, oldest first."""
    receipts = [make_receipt(T0 + timedelta(days=n)) for n in range(5)]
    store_of(app).add_many(receipts)
    return receipts


def invoke(runner: t.Any, *args: str, **kwargs: t.Any) -> t.Any:
    return runner.invoke(args=["consent", *args], **kwargs)


def consent_id_of(client: t.Any) -> str:
    consent_id: str = client.get("/consent").get_json()["consent_id"]
    return consent_id


# Receipts off


@pytest.mark.parametrize(
    "args",
    [
        ["show", "abc"],
        ["receipt", "abc"],
        ["export"],
        ["erase", "abc", "--yes"],
        ["purge"],
        ["stats"],
        ["flush"],
    ],
)
def test_commands_fail_clearly_when_receipts_are_off(
    policy: Policy, tmp_path: Path, args: list[str]
) -> None:
    app = make_app(policy, tmp_path, CONSENT_RECEIPTS_URL=None)
    result = invoke(app.test_cli_runner(), *args)
    assert result.exit_code == 1
    assert "Receipts are off (CONSENT_RECEIPTS_URL is None)" in result.output
    assert "Traceback" not in result.output


def test_check_works_without_receipts(policy: Policy, tmp_path: Path) -> None:
    app = make_app(policy, tmp_path, CONSENT_RECEIPTS_URL=None)
    result = invoke(app.test_cli_runner(), "check")
    assert result.exit_code == 0, result.output
    assert "Receipts: off" in result.output


# show and receipt


def test_show_prints_every_receipt_of_one_visitor(
    app: Flask, runner: t.Any, csrf_token: t.Any
) -> None:
    client = app.test_client()
    assert choose(client, "accept_all").status_code == 303
    token = csrf_token(client.get("/consent/preferences").text)
    response = client.post(
        "/consent", data={"action": "reject_all", "csrf_token": token}
    )
    assert response.status_code == 303
    consent_id = consent_id_of(client)
    choose(app.test_client(), "accept_all")  # someone else

    # Consent ids may start with "-": "--" ends the options.
    result = invoke(runner, "show", "--", consent_id)

    assert result.exit_code == 0, result.output
    assert f"2 receipts for consent id {consent_id}, oldest first:" in result.output
    first, second = store_of(app).for_consent_id(consent_id)
    out = result.output
    assert out.index(first.receipt_id) < out.index(second.receipt_id)
    assert "granted analytics, media, westlake_map" in out
    assert "refused analytics, media, westlake_map" in out
    assert out.count("consent id  ") == 2
    assert "method      banner" in out


def test_show_as_json_lines(app: Flask, runner: t.Any) -> None:
    choose(app.test_client(), "accept_all")
    (receipt,) = list(store_of(app).iter_receipts())
    result = invoke(runner, "show", "--format", "jsonl", "--", receipt.consent_id)
    assert result.exit_code == 0
    assert [Receipt.from_json(line) for line in result.stdout.splitlines()] == [receipt]


def test_show_unknown_visitor(app: Flask, runner: t.Any) -> None:
    result = invoke(runner, "show", "nobody")
    assert result.exit_code == 0
    assert result.output == "No receipts for consent id nobody.\n"


def test_receipt_prints_one_receipt(app: Flask, runner: t.Any) -> None:
    client = app.test_client()
    choose(client, "accept_all")
    (receipt,) = list(store_of(app).iter_receipts())

    result = invoke(runner, "receipt", receipt.receipt_id)

    assert result.exit_code == 0, result.output
    assert f"receipt     {receipt.receipt_id}" in result.output
    assert f"consent id  {consent_id_of(client)}" in result.output
    assert receipt.created_at.strftime("%Y-%m-%d %H:%M:%S UTC") in result.output
    assert f"texts hash  {receipt.texts_hash}" in result.output
    as_json = invoke(runner, "receipt", receipt.receipt_id, "--format", "jsonl")
    assert Receipt.from_json(as_json.stdout) == receipt


def test_receipt_unknown_id(app: Flask, runner: t.Any) -> None:
    result = invoke(runner, "receipt", "0" * 32)
    assert result.exit_code == 1
    assert f"No receipt has the id {'0' * 32}." in result.output


# export


def read_csv(text: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
    return list(reader)


def test_export_csv_with_since_and_until(runner: t.Any, days: list[Receipt]) -> None:
    result = invoke(runner, "export", "--since", "2025-03-02", "--until", "2025-03-04")
    assert result.exit_code == 0, result.output
    rows = read_csv(result.stdout)
    assert [row["receipt_id"] for row in rows] == [r.receipt_id for r in days[1:3]]
    row, receipt = rows[0], days[1]
    assert row["consent_id"] == receipt.consent_id
    assert parse_utc(row["created_at"]) == receipt.created_at
    assert json.loads(row["choices"]) == receipt.choices_dict()
    assert row["method"] == "banner"
    assert row["ip"] == "203.0.113.0/24"
    assert result.stdout_bytes.endswith(b"\r\n")


def test_export_jsonl_with_since_and_until(runner: t.Any, days: list[Receipt]) -> None:
    result = invoke(
        runner,
        "export",
        "--format",
        "jsonl",
        "--since",
        "2025-03-03T12:00:00Z",
        "--until",
        "2025-03-05T13:00:00+01:00",
    )
    assert result.exit_code == 0, result.output
    exported = [Receipt.from_json(line) for line in result.stdout.splitlines()]
    # --until is exclusive: 13:00+01:00 is 12:00 UTC, the time of days[4].
    assert exported == days[2:4]


def test_export_everything(runner: t.Any, days: list[Receipt]) -> None:
    result = invoke(runner, "export", "--format", "jsonl")
    assert [Receipt.from_json(x) for x in result.stdout.splitlines()] == days
    assert len(read_csv(invoke(runner, "export").stdout)) == 5


def test_export_to_a_file(runner: t.Any, days: list[Receipt], tmp_path: Path) -> None:
    target = tmp_path / "out" / "receipts.csv"
    target.parent.mkdir()
    result = invoke(runner, "export", "--since", "2025-03-04", "-o", str(target))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr == f"Exported 2 receipts to {target}.\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    with open(target, encoding="utf-8", newline="") as exported:
        rows = read_csv(exported.read())
    assert [r["receipt_id"] for r in rows] == [r.receipt_id for r in days[3:]]


def test_export_to_a_file_that_cannot_be_written(
    runner: t.Any, days: list[Receipt], tmp_path: Path
) -> None:
    target = tmp_path / "missing" / "receipts.csv"
    result = invoke(runner, "export", "-o", str(target))
    assert result.exit_code == 1
    assert f"Cannot write {target}: No such file or directory." in result.output


def test_export_csv_defuses_formulas_and_keeps_unicode(
    app: Flask, runner: t.Any
) -> None:
    evil = make_receipt(T0, user_agent='=HYPERLINK("http://evil.example","x") 浏览器')
    store_of(app).add(evil)
    (row,) = read_csv(invoke(runner, "export").stdout)
    assert row["user_agent"] == "'" + evil.user_agent
    jsonl = invoke(runner, "export", "--format", "jsonl").stdout
    assert Receipt.from_json(jsonl).user_agent == evil.user_agent


@pytest.mark.parametrize("value", ["yesterday", "2025-13-01", "01/03/2025"])
def test_export_refuses_a_bad_date(runner: t.Any, value: str) -> None:
    result = invoke(runner, "export", "--since", value)
    assert result.exit_code == 2
    assert "write YYYY-MM-DD or an ISO datetime" in result.output


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-01", datetime(2025, 3, 1, tzinfo=timezone.utc)),
        ("2025-03-01T10:30", datetime(2025, 3, 1, 10, 30, tzinfo=timezone.utc)),
        ("2025-03-01 10:30:00Z", datetime(2025, 3, 1, 10, 30, tzinfo=timezone.utc)),
        ("2025-03-01T10:30+02:00", datetime(2025, 3, 1, 8, 30, tzinfo=timezone.utc)),
    ],
)
def test_dates_are_read_as_utc(text: str, expected: datetime) -> None:
    parsed = parse_utc(text)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


# erase


def test_erase_then_show_is_empty(app: Flask, runner: t.Any) -> None:
    client = app.test_client()
    choose(client, "accept_all")
    consent_id = consent_id_of(client)
    other = app.test_client()
    choose(other, "reject_all")

    refused = invoke(runner, "erase", "--", consent_id, input="n\n")
    assert refused.exit_code == 1
    assert f"Erase the 1 receipt of consent id {consent_id}?" in refused.output
    assert len(store_of(app).for_consent_id(consent_id)) == 1

    result = invoke(runner, "erase", "--", consent_id, input="y\n")
    assert result.exit_code == 0, result.output
    assert f"Erased 1 receipt of consent id {consent_id}." in result.output
    assert invoke(runner, "show", "--", consent_id).output == (
        f"No receipts for consent id {consent_id}.\n"
    )
    assert len(store_of(app).for_consent_id(consent_id_of(other))) == 1


def test_erase_with_yes_does_not_ask(app: Flask, runner: t.Any) -> None:
    receipts = [make_receipt(T0 + timedelta(hours=n), consent_id="v1") for n in (1, 2)]
    store_of(app).add_many(receipts)
    result = invoke(runner, "erase", "v1", "--yes")
    assert result.exit_code == 0
    assert result.output == "Erased 2 receipts of consent id v1.\n"
    assert invoke(runner, "erase", "v1", "--yes").output == (
        "No receipts for consent id v1.\n"
    )


def test_erase_replays_the_spool_first(
    app: Flask, runner: t.Any, tmp_path: Path
) -> None:
    # Otherwise a receipt still waiting in a spool would come back later.
    spool = tmp_path / "consent-spool-4242.jsonl"
    spool.write_text(make_receipt(T0, consent_id="v1").to_json() + "\n")
    store_of(app).add(make_receipt(T0 + timedelta(hours=1), consent_id="v1"))
    result = invoke(runner, "erase", "v1", "--yes")
    assert result.output == "Erased 2 receipts of consent id v1.\n"
    assert not spool.exists()
    assert invoke(runner, "flush").output.startswith("No spool files in")
    assert store_of(app).for_consent_id("v1") == []


# purge


def test_purge_before_an_explicit_date(
    app: Flask, runner: t.Any, days: list[Receipt]
) -> None:
    # T0 is within the default retention of three years: asked, then --yes.
    refused = invoke(runner, "purge", "--before", "2025-03-03", input="n\n")
    assert refused.exit_code == 1
    assert "within the retention period (1095 days)" in refused.output
    assert store_of(app).count() == 5

    dry = invoke(runner, "purge", "--before", "2025-03-03", "--dry-run")
    assert dry.output == (
        "2 receipts made before 2025-03-03 00:00:00 UTC would be purged.\n"
    )
    assert store_of(app).count() == 5

    result = invoke(runner, "purge", "--before", "2025-03-03", "--yes")
    assert result.exit_code == 0, result.output
    assert result.output == "Purged 2 receipts made before 2025-03-03 00:00:00 UTC.\n"
    assert [r.receipt_id for r in store_of(app).iter_receipts()] == [
        r.receipt_id for r in days[2:]
    ]


def test_purge_keeps_the_retention_period(policy: Policy, tmp_path: Path) -> None:
    app = make_app(policy, tmp_path, CONSENT_RECEIPTS_RETENTION=30)
    now = datetime.now(timezone.utc)
    old = make_receipt(now - timedelta(days=31))
    recent = make_receipt(now - timedelta(days=29))
    store_of(app).add_many([old, recent])
    result = invoke(app.test_cli_runner(), "purge")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Purged 1 receipt made before ")
    assert [r.receipt_id for r in store_of(app).iter_receipts()] == [recent.receipt_id]
    keeper_of(app).close()


# stats


def test_stats_counts_methods_and_rates(app: Flask, runner: t.Any) -> None:
    store_of(app).add_many(
        [
            make_receipt(T0, method="banner"),
            make_receipt(T0, method="banner", choices={"analytics": False}),
            make_receipt(T0 + timedelta(days=1), method="preferences"),
            make_receipt(
                T0 + timedelta(days=2), method="gpc", choices={"media": False}
            ),
        ]
    )
    result = invoke(runner, "stats")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Receipts (all time): 4"
    assert "  banner               2   50.0%" in lines
    assert "  preferences          1   25.0%" in lines
    assert "  api                  0    0.0%" in lines
    assert "  analytics       66.7%  2 of 3" in lines
    assert "  media            0.0%  0 of 3" in lines
    assert "    westlake_map   0.0%  0 of 2" in lines

    since = invoke(runner, "stats", "--since", "2025-03-02", "--json")
    data = json.loads(since.stdout)
    assert data["total"] == 2
    assert data["by_method"] == {
        "banner": 0,
        "preferences": 1,
        "api": 0,
        "gpc": 1,
        "embed": 0,
    }
    assert data["keys"]["analytics"] == {"granted": 1, "total": 1, "rate": 1.0}
    assert data["keys"]["media"] == {"granted": 0, "total": 2, "rate": 0.0}


def test_stats_of_real_choices(app: Flask, runner: t.Any) -> None:
    choose(app.test_client(), "accept_all")
    choose(app.test_client(), "reject_all")
    data = json.loads(invoke(runner, "stats", "--json").stdout)
    assert data["total"] == 2
    assert data["by_method"]["banner"] == 2
    assert data["keys"]["westlake_map"]["rate"] == 0.5


# check


def test_check_prints_the_declaration(
    app: Flask, runner: t.Any, policy: Policy
) -> None:
    result = invoke(runner, "check")
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith(f"Policy OK: revision {policy.revision}, mode opt-in,")
    assert "Strictly necessary (necessary, required)" in out
    assert "Analytics (analytics, optional)" in out
    assert "Service: West Lake map (westlake_map, West Lake Maps)" in out
    header = (
        "    cookie         provider   purpose                     duration   party"
    )
    assert header in out
    assert (
        "    _hz_analytics  This site  Tells repeat visits apart.  13 months  first"
        in out
    )
    assert (
        "wl_map_pref  West Lake Maps  Remembers the map view.  1 year    third" in out
    )
    # The library's own cookies are declared under the required category.
    necessary = out.split("Strictly necessary")[1].split("Analytics (")[0]
    assert "consent_csrf" in necessary
    assert "Receipts: kept in <SQLiteReceiptStore" in out
    assert "retention 1095 days" in out


def test_check_fails_when_the_store_is_unreachable(
    policy: Policy, tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("not a directory")
    app = make_app(
        policy,
        tmp_path,
        CONSENT_RECEIPTS_URL=f"sqlite:///{tmp_path}/file/receipts.db",
    )
    result = invoke(app.test_cli_runner(), "check")
    assert result.exit_code == 1
    assert "Policy OK" in result.output
    assert "The receipt store failed (OperationalError" in result.output
    assert "Traceback" not in result.output


# flush


def test_flush_replays_a_spool_left_by_a_failed_store(
    app: Flask, runner: t.Any, tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("not a directory")
    broken = SQLiteReceiptStore(tmp_path / "file" / "receipts.db")
    spool = tmp_path / "consent-spool-31337.jsonl"
    recorder = DurableRecorder(broken, spool, background=False, timeout=5)
    receipt = make_receipt(T0, consent_id="spooled")
    recorder.record(receipt)
    recorder.close()
    assert Receipt.from_json(spool.read_text()) == receipt
    # A second process's spool, written as a web worker writes it.
    other = [make_receipt(T0 + timedelta(minutes=n)) for n in (1, 2)]
    (tmp_path / "consent-spool-31338.jsonl").write_text(
        "".join(r.to_json() + "\n" for r in other)
    )

    result = invoke(runner, "flush")

    assert result.exit_code == 0, result.output
    assert result.output == (
        "consent-spool-31337.jsonl: 1 replayed\n"
        "consent-spool-31338.jsonl: 2 replayed\n"
        "Replayed 3 spooled receipts.\n"
    )
    assert store_of(app).get(receipt.receipt_id) == receipt
    assert store_of(app).count() == 3
    assert not spool.exists()
    assert invoke(runner, "flush").output == f"No spool files in {tmp_path}.\n"
    # Replaying the same receipts again keeps each once.
    (tmp_path / "consent-spool-31339.jsonl").write_text(
        "".join(r.to_json() + "\n" for r in [receipt, *other])
    )
    again = invoke(runner, "flush")
    assert again.output.endswith("Replayed 3 spooled receipts.\n")
    assert store_of(app).count() == 3


def test_flush_finishes_a_replay_cut_short(
    app: Flask, runner: t.Any, tmp_path: Path
) -> None:
    receipt = make_receipt(T0)
    (tmp_path / "consent-spool-77.jsonl.replaying").write_text(receipt.to_json() + "\n")
    result = invoke(runner, "flush")
    assert result.output == (
        "consent-spool-77.jsonl: 1 replayed\nReplayed 1 spooled receipt.\n"
    )
    assert not (tmp_path / "consent-spool-77.jsonl.replaying").exists()
    assert store_of(app).get(receipt.receipt_id) == receipt


def test_flush_points_at_rejected_lines(
    app: Flask, runner: t.Any, tmp_path: Path
) -> None:
    (tmp_path / "consent-spool-5.jsonl").write_text("not json\n")
    result = invoke(runner, "flush")
    assert result.exit_code == 0
    assert "consent-spool-5.jsonl: 0 replayed" in result.stdout
    assert "consent-spool-5.jsonl.rejected holds spooled lines" in result.stderr


def test_flush_with_nothing_spooled(app: Flask, runner: t.Any, tmp_path: Path) -> None:
    assert invoke(runner, "flush").output == f"No spool files in {tmp_path}.\n"


# Progress bars, on a real terminal


APP_MODULE = """
from flask import Flask
from consent import Category, Policy
from consent.flask import Consent

app = Flask("cliapp", instance_path={instance!r})
app.config.update(SECRET_KEY="x" * 40, CONSENT_RECEIPTS_URL="sqlite")
Consent(app, Policy([
    Category("necessary", "Necessary", required=True),
    Category("analytics", "Analytics"),
]))
"""


def run_with_terminal_stderr(cwd: Path, *args: str) -> tuple[int, str, str]:
    """Run ``flask consent ...`` with stderr on a pseudo-terminal; stdout
    goes to a file, so that the command never waits for a reader."""
    controller, terminal = pty.openpty()
    env = {**os.environ, "FLASK_APP": "cliapp", "COLUMNS": "100"}
    with open(cwd / "stdout", "w+b") as stdout:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flask", "consent", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=terminal,
        )
        os.close(terminal)
        seen = b""
        while True:
            ready, _, _ = select.select([controller], [], [], 60)
            if not ready:
                break
            try:
                data = os.read(controller, 65536)
            except OSError:  # the terminal closed: the command ended
                break
            if not data:
                break
            seen += data
        os.close(controller)
        code = proc.wait(timeout=60)
        stdout.seek(0)
        out = stdout.read().decode()
    return code, out, seen.decode(errors="replace")


@pytest.fixture
def cli_instance(tmp_path: Path) -> Path:
    instance = tmp_path / "instance"
    instance.mkdir()
    (tmp_path / "cliapp.py").write_text(
        textwrap.dedent(APP_MODULE.format(instance=str(instance)))
    )
    store = SQLiteReceiptStore(instance / "consent-receipts.db")
    store.add_many(
        make_receipt(T0 + timedelta(hours=n), choices={"analytics": n % 2 == 0})
        for n in range(2500)
    )
    store.close()
    return tmp_path


def test_export_shows_progress_on_a_terminal_only(cli_instance: Path) -> None:
    code, out, err = run_with_terminal_stderr(cli_instance, "export")
    assert code == 0, err
    assert "Exporting receipts" in err
    assert "100%" in err
    assert len(read_csv(out)) == 2500
    quiet = subprocess.run(
        [sys.executable, "-m", "flask", "consent", "export", "--format", "jsonl"],
        cwd=cli_instance,
        env={**os.environ, "FLASK_APP": "cliapp"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert quiet.stderr == ""
    assert len(quiet.stdout.splitlines()) == 2500


def test_purge_shows_progress_on_a_terminal(cli_instance: Path) -> None:
    code, out, err = run_with_terminal_stderr(
        cli_instance, "purge", "--before", "2025-03-31", "--yes"
    )
    assert code == 0, err
    assert "Purging receipts" in err
    # 2500 hourly receipts from March 1st, 12:00: 708 before March 31st.
    assert out == "Purged 708 receipts made before 2025-03-31 00:00:00 UTC.\n"
    store = SQLiteReceiptStore(cli_instance / "instance" / "consent-receipts.db")
    assert store.count() == 2500 - 708
    assert store.count(until=parse_utc("2025-03-31")) == 0
    store.close()


# PostgreSQL


@pytest.mark.postgres
def test_export_and_stats_on_postgresql(
    policy: Policy, tmp_path: Path, pg_role: str
) -> None:
    url = f"postgresql+psycopg://{pg_role}@127.0.0.1:5432/test"
    app = make_app(policy, tmp_path, CONSENT_RECEIPTS_URL=url)
    runner = app.test_cli_runner()
    try:
        store = store_of(app)
        assert type(store).__name__ == "SQLReceiptStore"
        receipts = [
            make_receipt(
                T0 + timedelta(days=n),
                method="banner" if n < 3 else "preferences",
                choices={"analytics": n % 2 == 0, "media": True},
            )
            for n in range(5)
        ]
        store.add_many(receipts)
        choose(app.test_client(), "reject_all")

        csv_result = invoke(
            runner, "export", "--since", "2025-03-02", "--until", "2025-03-04"
        )
        assert csv_result.exit_code == 0, csv_result.output
        assert [r["receipt_id"] for r in read_csv(csv_result.stdout)] == [
            r.receipt_id for r in receipts[1:3]
        ]
        jsonl = invoke(
            runner, "export", "--format", "jsonl", "--until", "2025-03-06"
        ).stdout
        assert [Receipt.from_json(x) for x in jsonl.splitlines()] == receipts

        data = json.loads(invoke(runner, "stats", "--json").stdout)
        assert data["total"] == 6
        assert data["by_method"]["banner"] == 4
        assert data["by_method"]["preferences"] == 2
        assert data["keys"]["analytics"] == {"granted": 3, "total": 6, "rate": 0.5}
        since = json.loads(
            invoke(runner, "stats", "--since", "2025-03-04", "--json").stdout
        )
        assert since["total"] == 3
        assert since["keys"]["media"]["granted"] == 2

        assert invoke(runner, "erase", receipts[0].consent_id, "--yes").exit_code == 0
        assert invoke(runner, "check").output.count("SQLReceiptStore") == 1
    finally:
        keeper_of(app).close()


# What was shown


def test_show_and_receipt_print_what_the_visitor_saw(app: Flask, runner: t.Any) -> None:
    client = app.test_client()
    choose(client, "accept_all")
    (receipt,) = list(store_of(app).iter_receipts())
    shown = invoke(runner, "show", "--", receipt.consent_id)
    assert re.search(r"texts       \d+ texts and 3 categories, library", shown.output)
    dumped = invoke(runner, "receipt", receipt.receipt_id, "--texts")
    assert dumped.exit_code == 0, dumped.output
    assert f"What was shown ({receipt.texts_hash}):" in dumped.output
    assert '"button.accept_all": "Accept all"' in dumped.output


def test_receipt_help_says_the_cookie_carries_the_consent_id(runner: t.Any) -> None:
    text = " ".join(invoke(runner, "receipt", "--help").output.split())
    assert "The consent cookie carries the visitor's consent id, not a receipt id" in (
        text
    )

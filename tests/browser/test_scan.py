"""``consent scan`` against real sites on loopback, in headless Chromium.

Each scan runs the real command in a child process (``python -m consent
scan``), as a CI job would; Chromium maps every host name to loopback, so
nothing leaves the machine.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import typing as t
import uuid
from pathlib import Path

import jsonschema
import pytest
from playwright.sync_api import Browser

from consent.scan.report_json import load_schema
from tests.browser.conftest import CHROMIUM
from tests.browser.conftest import free_port
from tests.browser.conftest import serve
from tests.browser.scan_sites import TRACKER_HOST
from tests.browser.scan_sites import SilentServer
from tests.browser.scan_sites import make_broken_shop
from tests.browser.scan_sites import make_other_banner_site
from tests.browser.scan_sites import make_tracker
from tests.docs_samples import ci_scan_arguments

#: Every host name to loopback, for the scanner's Chromium too.
LOOPBACK = "--host-resolver-rules=MAP * 127.0.0.1"

#: Longest a scan of these small sites may take before the test fails.
SCAN_LIMIT = 120


@dataclasses.dataclass
class Scan:
    """One finished run of the command."""

    returncode: int
    stdout: str
    stderr: str
    report: dict[str, t.Any] | None
    html: Path | None


def run_scan(
    url: str, tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> Scan:
    """Run ``python -m consent scan url *args``, with the JSON and HTML
    reports in ``tmp_path`` unless ``args`` name them.
    """
    json_path = tmp_path / "report.json"
    html_path = tmp_path / "report.html"
    reports = [] if "--json" in args else ["--json", str(json_path)]
    reports += [] if "--html" in args else ["--html", str(html_path)]
    if "--json" in args:
        json_path = Path(args[args.index("--json") + 1])
    if "--html" in args:
        html_path = Path(args[args.index("--html") + 1])
    command = [
        sys.executable,
        "-m",
        "consent",
        "scan",
        url,
        "--browser",
        CHROMIUM,
        f"--browser-arg={LOOPBACK}",
        *reports,
        *args,
    ]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=SCAN_LIMIT,
        env=env,
        check=False,
    )
    report = (
        json.loads(json_path.read_text(encoding="utf-8"))
        if json_path.exists()
        else None
    )
    return Scan(
        done.returncode,
        done.stdout,
        done.stderr,
        report,
        html_path if html_path.exists() else None,
    )


def findings(scan: Scan) -> set[tuple[str, str]]:
    assert scan.report is not None
    return {(f["code"], f["subject"]) for f in scan.report["findings"]}


def visit(scan: Scan, name: str) -> dict[str, t.Any]:
    assert scan.report is not None
    (found,) = [v for v in scan.report["visits"] if v["name"] == name]
    return found


# The demo ----------------------------------------------------------------


@pytest.fixture(scope="module", params=["flask", "asgi"])
def demo_url(request: pytest.FixtureRequest) -> str:
    """The demo's URL, once per twin (Flask, and FastAPI under uvicorn)."""
    fixture = {"flask": "demo", "asgi": "demo_asgi"}[request.param]
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture(scope="module")
def demo_scan(demo_url: str, tmp_path_factory: pytest.TempPathFactory) -> Scan:
    """The scan of the CI example in docs/scan.md, run on the demo."""
    folder = tmp_path_factory.mktemp("demo-scan")
    documented, *args = ci_scan_arguments()
    assert documented == "http://127.0.0.1:5000/"
    for option in ("--json", "--html"):
        # The reports go to the test's folder, under the documented names.
        args[args.index(option) + 1] = str(folder / args[args.index(option) + 1])
    return run_scan(demo_url + "/", folder, *args)


def test_demo_scans_clean(demo_scan: Scan) -> None:
    assert demo_scan.returncode == 0, demo_scan.stdout + demo_scan.stderr
    assert demo_scan.report is not None
    assert demo_scan.report["findings"] == []
    assert demo_scan.report["clean"] is True
    assert "No findings." in demo_scan.stdout
    # Checked against the demo's own declaration, over the start page and
    # the links --crawl followed.
    assert demo_scan.report["declaration"]["found"] is True
    assert len(demo_scan.report["pages"]) == 4


def test_demo_visits_record_what_each_choice_allows(demo_scan: Scan) -> None:
    def names(name: str, phase: str = "after_choice") -> set[str]:
        return {
            c["name"] for c in visit(demo_scan, name)["cookies"] if phase in c["phases"]
        }

    nothing = visit(demo_scan, "no_interaction")
    assert nothing["banner"] == {
        "shown": True,
        "ours": True,
        "has_accept": True,
        "has_reject": True,
    }
    assert names("no_interaction", "before_choice") <= {"consent_csrf", "hz_lang"}
    assert nothing["requests"] == []
    assert nothing["storage"] == []

    assert visit(demo_scan, "reject_all")["choice_made"] is True
    assert names("reject_all") <= {"consent", "consent_csrf", "hz_lang"}
    assert "consent" in names("reject_all")
    assert visit(demo_scan, "reject_all")["requests"] == []

    accepted = visit(demo_scan, "accept_all")
    assert {"consent", "_hz_analytics", "wl_map_pref"} <= names("accept_all")
    (map_cookie,) = [c for c in accepted["cookies"] if c["name"] == "wl_map_pref"]
    assert map_cookie["party"] == "third"
    assert map_cookie["set_by"] == "header"
    assert map_cookie["same_site"] == "None"
    # The map is the only other site, and only after the choice.
    assert {(r["host"], r["phase"]) for r in accepted["requests"]} == {
        ("localhost", "after_choice")
    }


def test_demo_report_follows_the_schema(demo_scan: Scan) -> None:
    jsonschema.validate(demo_scan.report, load_schema())


def test_html_report_reads_well(
    demo_scan: Scan, browser: Browser, tmp_path: Path
) -> None:
    assert demo_scan.html is not None
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    outside: list[str] = []
    page.on(
        "request",
        lambda r: outside.append(r.url) if not r.url.startswith("file:") else None,
    )
    try:
        page.goto(demo_scan.html.as_uri())
        assert (
            page.get_by_role("heading", level=1)
            .inner_text()
            .startswith("Cookie scan of")
        )
        assert page.locator(".verdict").inner_text() == "No findings"
        headings = page.get_by_role("heading", level=2).all_inner_texts()
        assert headings == ["No interaction", "Reject all", "Accept all"]
        assert page.get_by_role("cell", name="wl_map_pref").count() == 1
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    finally:
        page.close()
    # Self-contained: the file loads nothing from anywhere.
    assert outside == []
    assert (tmp_path / "report.png").stat().st_size > 10_000


# A site that gets it wrong ---------------------------------------------------


@pytest.fixture(scope="module")
def tracker() -> cabc.Iterator[tuple[str, list[str]]]:
    """The tracker's origin, and the list of its hits."""
    app = make_tracker()
    server = serve(app)
    try:
        port = server.url.rsplit(":", 1)[1]
        yield f"http://{TRACKER_HOST}:{port}", app.extensions["hits"]
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("declares", "expected"),
    [
        (
            True,
            {
                ("cookie_before_choice", "_ga"),
                ("request_before_choice", TRACKER_HOST),
                ("refused_cookie_after_reject", "_fbp"),
            },
        ),
        (
            False,
            {
                ("tracker_cookie_before_choice", "_ga"),
                ("tracker_request_before_choice", TRACKER_HOST),
                ("tracker_cookie_after_reject", "_fbp"),
            },
        ),
    ],
    ids=["with-declaration", "known-trackers"],
)
def test_broken_site_is_caught(
    tracker: tuple[str, list[str]],
    tmp_path: Path,
    declares: bool,
    expected: set[tuple[str, str]],
) -> None:
    origin, hits = tracker
    shop = serve(make_broken_shop(origin, declares=declares))
    hits.clear()
    try:
        scan = run_scan(shop.url + "/", tmp_path)
    finally:
        shop.stop()
    # The tracker really was loaded, from its own origin.
    assert hits
    assert scan.returncode == 1, scan.stdout + scan.stderr
    assert scan.report is not None
    assert findings(scan) == expected
    assert len(scan.report["findings"]) == 3
    # Findings come first in the terminal report.
    assert scan.stdout.index("3 findings") < scan.stdout.index("No interaction:")
    (ga,) = [c for c in visit(scan, "no_interaction")["cookies"] if c["name"] == "_ga"]
    assert ga["set_by"] == "script"
    assert ga["party"] == "first"
    (fbp,) = [c for c in visit(scan, "reject_all")["cookies"] if c["name"] == "_fbp"]
    assert fbp["phases"] == ["after_choice"]
    # _ga was there before the click and is gone after it.
    (ga,) = [c for c in visit(scan, "reject_all")["cookies"] if c["name"] == "_ga"]
    assert ga["phases"] == ["before_choice"]


# Someone else's banner ---------------------------------------------------


def test_other_banner_is_driven_through_all_three_visits(tmp_path: Path) -> None:
    app = make_other_banner_site()
    server = serve(app)
    try:
        scan = run_scan(server.url + "/", tmp_path)
    finally:
        server.stop()
    assert scan.returncode == 0, scan.stdout + scan.stderr
    # One click per choosing visit, each on its own button.
    assert app.extensions["answers"] == ["no", "yes"]
    for name in ("no_interaction", "reject_all", "accept_all"):
        assert visit(scan, name)["banner"] == {
            "shown": True,
            "ours": False,
            "has_accept": True,
            "has_reject": True,
        }
    assert visit(scan, "no_interaction")["choice_made"] is False
    for name in ("reject_all", "accept_all"):
        chosen = visit(scan, name)
        assert chosen["choice_made"] is True
        assert [p["phase"] for p in chosen["pages"]] == [
            "before_choice",
            "after_choice",
        ]
        assert {c["name"] for c in chosen["cookies"]} == {"tours_choice"}
    assert scan.report is not None
    assert scan.report["declaration"]["found"] is False


# Could not scan ------------------------------------------------------------


def test_nothing_listening_exits_2_with_one_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    scan = run_scan(url, tmp_path)
    assert scan.returncode == 2
    assert scan.stdout == ""
    lines = scan.stderr.strip().splitlines()
    assert len(lines) == 1, scan.stderr
    assert url in lines[0]
    assert "connection refused" in lines[0]
    assert scan.report is None and scan.html is None


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in command:
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("whole_group", [True, False], ids=["ctrl-c", "sigint"])
def test_interrupt_closes_everything(tmp_path: Path, whole_group: bool) -> None:
    """Ctrl-C in a terminal (SIGINT to the whole process group), or SIGINT
    to the command alone: it exits 2, and no browser or profile is left.
    """
    marker = f"--consent-scan-test={uuid.uuid4().hex}"
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    with SilentServer() as server:
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                # As in a terminal, whatever started the test suite: a shell
                # without job control starts background commands with SIGINT
                # ignored, and their children inherit that.
                "import runpy, signal, sys;"
                " signal.signal(signal.SIGINT, signal.default_int_handler);"
                " sys.argv[0] = 'consent';"
                " runpy.run_module('consent', run_name='__main__')",
                "scan",
                server.url,
                "--browser",
                CHROMIUM,
                f"--browser-arg={LOOPBACK}",
                f"--browser-arg={marker}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,
        )
        try:
            assert server.connected.wait(timeout=60), "the scan never connected"
            assert _processes_with(marker), "no browser running with the marker"
            if whole_group:
                os.killpg(process.pid, signal.SIGINT)
            else:
                process.send_signal(signal.SIGINT)
            stdout, stderr = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
    assert process.returncode == 2, stderr
    assert stderr.strip().splitlines()[-1].startswith("consent scan: interrupted")
    deadline = time.monotonic() + 10
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_with(marker) == []
    assert list(tmp_path.glob("consent-scan-*")) == []

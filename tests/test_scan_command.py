"""``consent scan``: the command line, its exit codes, its imports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from consent.cli import main
from consent.scan.browser import INSTALL_BROWSER
from consent.scan.browser import find_browser
from consent.scan.errors import ScanError

#: Runs Python with some top-level packages impossible to import.
BLOCKER = """\
import importlib.abc, sys
BLOCKED = set(sys.argv[1].split(","))
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked")
        return None
sys.meta_path.insert(0, Block())
sys.argv = sys.argv[1:]
exec(sys.argv[1])
"""


def run_blocked(blocked: str, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER, blocked, code],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_scan_package_imports_without_any_web_framework() -> None:
    code = (
        "import importlib, pkgutil, consent.scan\n"
        "for m in pkgutil.iter_modules(consent.scan.__path__):\n"
        "    importlib.import_module('consent.scan.' + m.name)\n"
        "print('ok')\n"
    )
    done = run_blocked("flask,werkzeug,starlette", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n"


def test_help_works_without_the_extra() -> None:
    code = (
        "from consent.cli import main\n"
        "import sys\n"
        "sys.argv = ['consent', 'scan', '--help']\n"
        "main()\n"
    )
    done = run_blocked("playwright,tldextract", code)
    assert done.returncode == 0, done.stderr
    assert "--crawl N" in done.stdout
    assert "Exit status: 0 no findings, 1 findings, 2 could not scan." in done.stdout


@pytest.mark.parametrize("blocked", ["playwright", "tldextract"])
def test_missing_extra_is_one_line_and_exit_2(blocked: str) -> None:
    code = (
        "from consent.cli import main\n"
        "import sys\n"
        "sys.argv = ['consent', 'scan', 'http://127.0.0.1:9/']\n"
        "main()\n"
    )
    done = run_blocked(blocked, code)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert 'pip install "cookie-consent[scan]"' in lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ftp://example.com/"], "is not a web address"),
        (["example.com"], "give a full URL such as http://127.0.0.1:5000/"),
        (
            ["http://127.0.0.1:9/", "--browser", "/nonexistent/chromium"],
            "is not an executable file",
        ),
    ],
)
def test_cannot_scan_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["scan", *args])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("consent scan: ")
    assert message in lines[0]


def test_report_folder_must_exist(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["scan", "http://127.0.0.1:9/", "--json", str(tmp_path / "no" / "r.json")],
    )
    assert result.exit_code == 2
    assert "is not a folder" in result.stderr


@pytest.mark.parametrize(
    "args", [["--crawl", "-1"], ["--timeout", "0"], ["--crawl", "many"]]
)
def test_bad_options_exit_2(args: list[str]) -> None:
    result = CliRunner().invoke(main, ["scan", "http://127.0.0.1:9/", *args])
    assert result.exit_code == 2


def _executable(path: Path) -> Path:
    path.write_text("#!/bin/sh\n", encoding="ascii")
    path.chmod(0o755)
    return path


def test_find_browser_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _executable(tmp_path / "google-chrome")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_browser(paths=()) == str(tmp_path / "google-chrome")


def test_find_browser_falls_back_to_known_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    chromium = _executable(tmp_path / "chromium")
    (tmp_path / "not-executable").write_text("", encoding="ascii")
    paths = [str(tmp_path / "missing"), str(tmp_path / "not-executable"), str(chromium)]
    assert find_browser(paths=paths) == str(chromium)


def test_no_browser_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ScanError) as info:
        find_browser(paths=[str(tmp_path / "missing")])
    assert str(info.value) == INSTALL_BROWSER
    assert "apt-get install chromium" in INSTALL_BROWSER


def test_explicit_browser_by_name_or_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chrome = _executable(tmp_path / "my-chrome")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_browser("my-chrome") == str(chrome)
    assert find_browser(str(chrome)) == str(chrome)
    assert os.access(find_browser(str(chrome)), os.X_OK)


def test_a_browser_that_fails_to_start_exits_2(tmp_path: Path) -> None:
    fake = _executable(tmp_path / "chromium")
    done = subprocess.run(
        [sys.executable, "-m", "consent", "scan", "http://127.0.0.1:9/"]
        + ["--browser", str(fake), "--total-timeout", "60"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("consent scan: The browser failed (")
    # The profile folder it made is gone.
    assert list(tmp_path.glob("consent-scan-*")) == []

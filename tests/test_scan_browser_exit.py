"""A scanned browser's processes are gone before its profile is deleted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from consent.scan.browser import browser_group
from consent.scan.browser import end_browser

pytestmark = pytest.mark.skipif(
    not hasattr(os, "killpg"), reason="process groups are POSIX"
)

#: A process group whose leader ignores the polite signals, as a browser
#: stuck in its shutdown would.
STUBBORN = (
    "import signal, time;"
    " signal.signal(signal.SIGTERM, signal.SIG_IGN);"
    " signal.signal(signal.SIGINT, signal.SIG_IGN);"
    " print('ready', flush=True);"
    " time.sleep(60)"
)


def test_group_is_read_from_chromiums_profile_lock(tmp_path: Path) -> None:
    (tmp_path / "SingletonLock").symlink_to("scan-host.example-4321")
    assert browser_group(tmp_path) == 4321


@pytest.mark.parametrize("target", [None, "no-number-here", "host-"])
def test_no_lock_or_a_strange_one_is_no_group(
    tmp_path: Path, target: str | None
) -> None:
    if target is not None:
        (tmp_path / "SingletonLock").symlink_to(target)
    assert browser_group(tmp_path) is None


def test_a_group_that_exits_is_waited_for(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(0.3)"], start_new_session=True
    )
    try:
        end_browser(process.pid, grace=30)
        # Returned once the process had exited by itself (not killed): a
        # zombie until reaped here, and a zombie writes nothing, so it
        # counts as gone.
        assert process.poll() == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_a_group_that_does_not_exit_is_killed() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", STUBBORN],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        end_browser(process.pid, grace=0.2)
        assert process.wait(timeout=10) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def test_no_group_is_nothing_to_wait_for() -> None:
    started = time.monotonic()
    end_browser(None, grace=30)
    assert time.monotonic() - started < 1

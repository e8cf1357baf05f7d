"""Finding a Chromium and starting it quietly in a fresh profile.

The scanner drives the system's Chromium (or Chrome) through Playwright; it
never downloads a browser. Each visit gets a new, empty profile folder that
is deleted afterwards. The profile accepts third-party cookies: a browser
that blocks them would hide what a site's third parties try to store.
"""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import json
import os
import shutil
import signal
import time
from pathlib import Path

from .errors import ScanError

#: Program names tried on ``PATH``, in order.
BROWSER_NAMES = (
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
    "chrome",
    "microsoft-edge",
)

#: Full paths tried when none of the names is on ``PATH``.
BROWSER_PATHS = (
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/snap/bin/chromium",
    "/usr/bin/google-chrome",
    "/opt/google/chrome/chrome",
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
)

#: What to do when no browser is found.
INSTALL_BROWSER = (
    "No Chromium found: install it (Debian and Ubuntu: apt-get install chromium)"
    " or give its path with --browser."
)

#: Chromium's own traffic stays off: no component updates, sync, first-run
#: pages or background requests, so the scan contacts only what the site
#: loads.
QUIET_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

#: The profile's preferences: third-party cookies allowed (Chromium's
#: ``cookie_controls_mode`` 0), so they are seen rather than silently
#: dropped.
PROFILE_PREFERENCES = {"profile": {"cookie_controls_mode": 0}}


def _is_executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def find_browser(
    explicit: str | None = None,
    *,
    names: cabc.Sequence[str] = BROWSER_NAMES,
    paths: cabc.Sequence[str] = BROWSER_PATHS,
) -> str:
    """The path of the Chromium to drive.

    :param explicit: A path or program name given by the user; when set, it
        is the only one tried.
    :param names: Program names looked up on ``PATH``.
    :param paths: Full paths tried after the names.
    :raises ScanError: When none is found; the message says what to install.
    """
    if explicit:
        found = explicit if _is_executable(explicit) else shutil.which(explicit)
        if found is None:
            raise ScanError(
                f"The browser {explicit!r} is not an executable file: give the"
                " path of Chromium or Chrome with --browser."
            )
        return found
    for name in names:
        found = shutil.which(name)
        if found is not None:
            return found
    for path in paths:
        if _is_executable(path):
            return path
    raise ScanError(INSTALL_BROWSER)


def prepare_profile(folder: Path) -> None:
    """Write the preferences of a fresh profile into ``folder``.

    :param folder: An empty folder, used as Chromium's user data directory.
    """
    default = folder / "Default"
    default.mkdir(parents=True, exist_ok=True)
    (default / "Preferences").write_text(
        json.dumps(PROFILE_PREFERENCES), encoding="utf-8"
    )


#: Seconds a closed browser has to exit before its processes are killed.
EXIT_GRACE = 5.0


def browser_group(folder: Path) -> int | None:
    """The process group of the Chromium running on profile ``folder``.

    Chromium keeps a ``SingletonLock`` link in its profile that points to
    ``host-pid``, and starts as the leader of its own process group. None
    when there is no such link: the browser has not started or has exited,
    or the system is not POSIX.
    """
    if not hasattr(os, "killpg"):
        return None
    try:
        target = os.readlink(folder / "SingletonLock")
    except OSError:
        return None
    pid = target.rpartition("-")[2]
    return int(pid) if pid.isdigit() else None


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    # Linux: a process that exited but is not yet reaped (a zombie, state Z)
    # writes nothing; where init reaps slowly, zombies linger for seconds.
    wanted = str(group)
    for stat in proc.glob("[0-9]*/stat"):
        try:
            # "pid (name) state ppid pgrp ...": the name may hold anything.
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if len(fields) > 2 and fields[2] == wanted and fields[0] != "Z":
            return True
    return False


def _wait_for_group(group: int, seconds: float) -> bool:
    """Whether every process in ``group`` exited within ``seconds``."""
    deadline = time.monotonic() + seconds
    while _group_alive(group):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def end_browser(group: int | None, grace: float = EXIT_GRACE) -> None:
    """Return once every process of the browser's ``group`` has exited.

    A browser asked to close still writes its profile for a moment (a
    Ctrl-C reaches Playwright's driver, which closes it too), so its folder
    is deleted only after this. What has not exited after ``grace`` seconds
    is killed.

    :param group: From :func:`browser_group`; nothing to do when None.
    """
    if group is None or _wait_for_group(group, grace):
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
    _wait_for_group(group, grace)

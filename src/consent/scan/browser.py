"""Finding a Chromium and starting it quietly in a fresh profile.

The scanner drives the system's Chromium (or Chrome) through Playwright; it
never downloads a browser. Each visit gets a new, empty profile folder that
is deleted afterwards. The profile accepts third-party cookies: a browser
that blocks them would hide what a site's third parties try to store.
"""

from __future__ import annotations

import collections.abc as cabc
import json
import os
import shutil
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

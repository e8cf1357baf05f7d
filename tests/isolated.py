"""Run a piece of Python in a fresh interpreter, with some modules blocked.

A ``None`` entry in ``sys.modules`` makes importing that module fail, as it
does when an optional extra is not installed, or on a platform without it
(``fcntl`` on Windows). A fresh interpreter is needed because the test
process has imported those modules already.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_isolated(
    code: str, *, blocked: tuple[str, ...] = (), timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with ``blocked`` modules unimportable; return the result
    (stdout, stderr, returncode), whatever it is."""
    prelude = "import sys\n" + "".join(
        f"sys.modules[{name!r}] = None\n" for name in blocked
    )
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )

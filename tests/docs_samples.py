"""Code samples of the docs, as the tests that run or check them read them."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import typing as t
from pathlib import Path

import yaml

ROOT = Path(__file__).parent.parent
SCAN_DOC = ROOT / "docs" / "scan.md"


def code_blocks(path: Path, language: str) -> list[str]:
    """The fenced blocks of ``path`` marked ``language``, in order."""
    pattern = re.compile(rf"```{re.escape(language)}\n(.*?)```", re.DOTALL)
    return pattern.findall(path.read_text(encoding="utf-8"))


def run_sample(block: str) -> dict[str, t.Any]:
    """Execute a Python sample as a module of its own; its namespace."""
    namespace: dict[str, t.Any] = {"__name__": "docs_example"}
    exec(compile(block, "<docs>", "exec"), namespace)  # noqa: S102
    return namespace


def bash_syntax_errors(script: str) -> str:
    """What ``bash -n`` says about a shell sample; ``""`` when it parses."""
    done = subprocess.run(
        ["bash", "-n"], input=script, capture_output=True, text=True, check=False
    )
    return done.stderr


def scan_arguments(script: str) -> list[list[str]]:
    """The arguments after ``scan`` of every ``consent scan`` or ``python -m
    consent scan`` line of a shell script.
    """
    found = []
    for line in script.splitlines():
        words = shlex.split(line, comments=True)
        for start in (["consent", "scan"], ["python", "-m", "consent", "scan"]):
            if words[: len(start)] == start:
                found.append(words[len(start) :])
    return found


def ci_workflow() -> dict[str, t.Any]:
    """The GitHub Actions workflow of docs/scan.md, parsed."""
    (block,) = code_blocks(SCAN_DOC, "yaml")
    workflow: dict[str, t.Any] = yaml.safe_load(block)
    return workflow


def ci_scan_arguments() -> list[str]:
    """The arguments of the one ``consent scan`` of the CI example."""
    commands = [
        arguments
        for job in ci_workflow()["jobs"].values()
        for step in job["steps"]
        if "run" in step
        for arguments in scan_arguments(step["run"])
    ]
    (arguments,) = commands
    return arguments


#: An HTML comment on the line right before a ```python block that cannot
#: pass ``mypy --strict`` on its own (a fragment on purpose, or a sample of
#: a package the project does not install): the mypy check leaves it out.
#: Prefer a sample that type-checks on its own.
MYPY_SKIP = "<!-- mypy: skip -->"


def python_blocks(path: Path, *, checked_only: bool = False) -> list[str]:
    """The ```python blocks of ``path``, in order; with ``checked_only``,
    without those right after a :data:`MYPY_SKIP` line.
    """
    text = "\n" + path.read_text(encoding="utf-8")
    pattern = re.compile(r"([^\n]*)\n```python\n(.*?)```", re.DOTALL)
    return [
        block
        for before, block in pattern.findall(text)
        if not (checked_only and before.strip() == MYPY_SKIP)
    ]


def mypy_strict_errors(blocks: list[str], tmp_path: Path) -> str:
    """What ``mypy --strict`` says about the code samples ``blocks``, each
    checked as its own module; ``""`` when they all pass.

    One mypy run checks them all: the modules are ``tmp_path/samples/
    sample_N.py``, N the block's index, which the errors name.
    """
    folder = tmp_path / "samples"
    folder.mkdir()
    files = []
    for index, block in enumerate(blocks):
        file = folder / f"sample_{index}.py"
        file.write_text(block, encoding="utf-8")
        files.append(str(file))
    if not files:
        return ""
    # The samples' own settings only, never the repository's.
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\n", encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            "--config-file",
            str(config),
            *files,
        ],
        capture_output=True,
        text=True,
        cwd=folder,
        timeout=300,
        check=False,
    )
    if done.returncode == 0:
        return ""
    numbered = "\n".join(
        f"--- sample_{index}.py\n{block}" for index, block in enumerate(blocks)
    )
    return f"{done.stdout}{done.stderr}\n{numbered}"

"""Code samples of the docs, as the tests that run or check them read them."""

from __future__ import annotations

import re
import shlex
import typing as t
from pathlib import Path

import yaml

ROOT = Path(__file__).parent.parent
SCAN_DOC = ROOT / "docs" / "scan.md"


def code_blocks(path: Path, language: str) -> list[str]:
    """The fenced blocks of ``path`` marked ``language``, in order."""
    pattern = re.compile(rf"```{re.escape(language)}\n(.*?)```", re.DOTALL)
    return pattern.findall(path.read_text(encoding="utf-8"))


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

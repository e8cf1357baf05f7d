"""The docs stay true: every setting is documented, every example runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask

from consent.settings import DEFAULTS as DEFAULT_CONFIG

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_PYTHON = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _python_blocks(path: Path) -> list[str]:
    return _PYTHON.findall(path.read_text(encoding="utf-8"))


def test_every_setting_is_in_the_configuration_table() -> None:
    table = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    missing = [key for key in DEFAULT_CONFIG if f"| `{key}` |" not in table]
    assert missing == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_python_examples_compile(page: Path) -> None:
    for block in _python_blocks(page):
        compile(block, str(page), "exec")


def _run(block: str, tmp_path: Path) -> dict[str, object]:
    namespace: dict[str, object] = {"__name__": "docs_example"}
    exec(compile(block, "<docs>", "exec"), namespace)  # noqa: S102
    return namespace


def test_readme_quickstart_serves_the_banner(tmp_path: Path) -> None:
    namespace = _run(_python_blocks(ROOT / "README.md")[0], tmp_path)
    app = namespace["app"]
    assert isinstance(app, Flask)
    app.config.update(CONSENT_RECEIPTS_URL=None, TESTING=True)
    response = app.test_client().get("/consent/declaration")
    assert response.status_code == 200
    assert "_pk_id" in response.text
    assert 'id="cookie-consent"' in response.text


def test_quickstart_app_factory(tmp_path: Path) -> None:
    namespace = _run(_python_blocks(ROOT / "docs" / "quickstart.md")[0], tmp_path)
    app = namespace["create_app"]()  # type: ignore[operator]
    assert isinstance(app, Flask)
    assert app.extensions["consent"] is namespace["consent"]
    assert app.test_client().get("/consent").status_code == 200


def test_concepts_policy_builds(tmp_path: Path) -> None:
    namespace = _run(_python_blocks(ROOT / "docs" / "concepts.md")[0], tmp_path)
    policy = namespace["policy"]
    assert policy.choice_keys == ("media", "westlake_map")  # type: ignore[attr-defined]

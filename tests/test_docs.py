"""The docs stay true: every setting is documented, every example runs."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from importlib.metadata import metadata
from pathlib import Path

import jsonschema
import pytest
from flask import Flask

from consent.scan.command import scan_command
from consent.scan.findings import FINDING_CODES
from consent.scan.report_json import SCHEMA_VERSION
from consent.scan.report_json import load_schema
from consent.settings import DEFAULTS as DEFAULT_CONFIG
from tests.docs_samples import SCAN_DOC
from tests.docs_samples import bash_syntax_errors
from tests.docs_samples import ci_scan_arguments
from tests.docs_samples import ci_workflow
from tests.docs_samples import code_blocks
from tests.docs_samples import mypy_strict_errors
from tests.docs_samples import python_blocks
from tests.docs_samples import run_sample
from tests.docs_samples import scan_arguments
from tests.scan_records import closed

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_every_setting_is_in_the_configuration_table() -> None:
    table = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    missing = [key for key in DEFAULT_CONFIG if f"| `{key}` |" not in table]
    assert missing == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_python_examples_compile(page: Path) -> None:
    for block in python_blocks(page):
        compile(block, str(page), "exec")


def test_readme_quickstart_serves_the_banner() -> None:
    namespace = run_sample(python_blocks(ROOT / "README.md")[0])
    app = namespace["app"]
    assert isinstance(app, Flask)
    app.config.update(CONSENT_RECEIPTS_URL=None, TESTING=True)
    response = app.test_client().get("/consent/declaration")
    assert response.status_code == 200
    assert "_pk_id" in response.text
    assert 'id="cookie-consent"' in response.text


def test_quickstart_app_factory() -> None:
    namespace = run_sample(python_blocks(ROOT / "docs" / "quickstart.md")[0])
    app = namespace["create_app"]()
    assert isinstance(app, Flask)
    assert app.extensions["consent"] is namespace["consent"]
    assert app.test_client().get("/consent").status_code == 200


def test_concepts_policy_builds() -> None:
    namespace = run_sample(python_blocks(ROOT / "docs" / "concepts.md")[0])
    policy = namespace["policy"]
    assert policy.choice_keys == ("media", "westlake_map")


# docs/scan.md: shell and YAML samples are checked here; the demo browser
# test runs the CI example's scan command (tests/browser/test_scan.py).


def test_scan_shell_samples_parse() -> None:
    blocks = code_blocks(SCAN_DOC, "sh") + code_blocks(ROOT / "README.md", "sh")
    assert blocks
    commands = []
    for block in blocks:
        assert bash_syntax_errors(block) == ""
        commands += scan_arguments(block)
    assert len(commands) >= 4
    for arguments in commands:
        # Parsing checks every option and value without running a scan.
        scan_command.make_context("scan", list(arguments))


def test_scan_install_names_a_real_extra() -> None:
    extras = metadata("cookie-consent").get_all("Provides-Extra") or []
    assert 'pip install "cookie-consent[scan]"' in code_blocks(SCAN_DOC, "sh")[0]
    assert "scan" in extras


def test_scan_ci_example_is_a_workflow() -> None:
    workflow = ci_workflow()
    # YAML 1.1 reads the key "on" as True; GitHub reads it as "on".
    assert workflow[True] == ["push", "pull_request"]
    (job,) = workflow["jobs"].values()
    assert job["runs-on"] == "ubuntu-latest"
    runs = [step["run"] for step in job["steps"] if "run" in step]
    assert len(runs) == 3
    for script in runs:
        assert bash_syntax_errors(script) == ""
    arguments = ci_scan_arguments()
    context = scan_command.make_context("scan", list(arguments))
    assert context.params["json_path"] is not None
    assert context.params["html_path"] is not None
    uploads = [s for s in job["steps"] if s.get("uses", "").startswith("actions/up")]
    (upload,) = uploads
    assert upload["if"] == "always()"
    kept = upload["with"]["path"].split()
    assert str(context.params["json_path"]) in kept
    assert str(context.params["html_path"]) in kept


def test_scan_json_example_follows_the_schema() -> None:
    (block,) = code_blocks(SCAN_DOC, "json")
    document = json.loads(block)
    jsonschema.validate(document, closed(load_schema()))
    assert document["schema_version"] == SCHEMA_VERSION


def test_scan_finding_codes_are_all_documented() -> None:
    text = SCAN_DOC.read_text(encoding="utf-8")
    missing = [code for code in FINDING_CODES if f"| `{code}` |" not in text]
    assert missing == []


# docs/quickstart.md: the Flask and the FastAPI app, each with the page's
# template, show the banner.

QUICKSTART = ROOT / "docs" / "quickstart.md"


def _quickstart_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, page: Path = QUICKSTART
) -> None:
    """tmp_path as the app's folder, with the template of ``page``."""
    (template,) = code_blocks(page, "jinja")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "index.html").write_text(template, encoding="utf-8")
    monkeypatch.chdir(tmp_path)


def test_quickstart_flask_serves_the_banner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _quickstart_folder(tmp_path, monkeypatch)
    namespace = run_sample(python_blocks(QUICKSTART)[0])
    app = namespace["create_app"]()
    app.config.update(CONSENT_RECEIPTS_URL=None, TESTING=True)
    response = app.test_client().get("/")
    assert response.status_code == 200
    assert 'id="cookie-consent"' in response.text
    assert 'data-consent-key="analytics"' in response.text
    assert "/static/stats.js" in response.text


def test_quickstart_fastapi_serves_the_banner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from starlette.testclient import TestClient

    _quickstart_folder(tmp_path, monkeypatch)
    (block,) = [b for b in python_blocks(QUICKSTART) if "FastAPI()" in b]
    namespace = run_sample(block)
    with TestClient(namespace["app"], base_url="http://localhost") as client:
        response = client.get("/")
        assert response.status_code == 200
        assert 'id="cookie-consent"' in response.text
        assert "/static/stats.js" in response.text
        assert client.get("/stats").json() == {"counted": False}


def test_readme_quickstarts_serve_their_template_without_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from starlette.testclient import TestClient

    readme = ROOT / "README.md"
    _quickstart_folder(tmp_path, monkeypatch, readme)
    flask_block, fastapi_block = python_blocks(readme)[:2]
    flask_app = run_sample(flask_block)["app"]
    flask_app.config.update(CONSENT_RECEIPTS_URL=None, TESTING=True)
    pages = [flask_app.test_client().get("/").text]
    with TestClient(
        run_sample(fastapi_block)["app"], base_url="http://localhost"
    ) as client:
        pages.append(client.get("/").text)
    for page in pages:
        assert 'id="cookie-consent"' in page
        assert 'data-consent-key="analytics"' in page
    assert [
        r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING
    ] == []


# Every ```python sample of the README and of docs/*.md passes mypy --strict,
# except one right after a `<!-- mypy: skip -->` line (a sample that needs a
# package the project does not install, such as Flask-Login).


def test_python_samples_pass_mypy_strict(tmp_path: Path) -> None:
    blocks = [
        block for page in PAGES for block in python_blocks(page, checked_only=True)
    ]
    assert len(blocks) >= 10
    assert mypy_strict_errors(blocks, tmp_path) == ""


# The documentation site builds as Read the Docs builds it: warnings are
# errors.


def test_sphinx_builds_the_site(tmp_path: Path) -> None:
    out = tmp_path / "html"
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
        + ["-d", str(tmp_path / "doctrees"), str(ROOT / "docs"), str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for page in ("index", "api", "quickstart", "changes", "guides/index"):
        assert (out / f"{page}.html").is_file(), page
    api = (out / "api.html").read_text(encoding="utf-8")
    for name in (
        "consent.Policy",
        "consent.flask.Consent",
        "consent.asgi.ConsentMiddleware",
        "consent.receipts.ReceiptStore",
        "consent.testing.read_page",
    ):
        assert f'id="{name}"' in api, name
    # The README's links into the site name pages the site has.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = re.findall(
        r"https://cookie-consent\.readthedocs\.io/en/latest/([^)>\s]+)", readme
    )
    assert len(linked) >= 10
    for path in linked:
        assert (out / path).is_file(), path
    # docs/templates.md shows the screenshots, relative to the page.
    templates = (out / "templates.html").read_text(encoding="utf-8")
    assert 'src="_images/bar-light.png"' in templates
    assert (out / "_images" / "bar-light.png").is_file()

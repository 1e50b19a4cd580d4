"""A missing prerequisite skips on a developer's machine and fails under CI (helpers/prereq.py).

Run in a pytest of its own, so the outcome (skipped or failed) is pytest's own verdict.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.paths import REPO
from tests.helpers.prereq import PG15

PROBE = """
from tests.helpers.prereq import require


def test_needs_the_moon():
    require(False, "the moon is not installed")
"""


@pytest.mark.parametrize(("ci", "outcome"), [("", "1 skipped"), ("true", "1 failed")])
def test_missing_prerequisite(ci: str, outcome: str, tmp_path: Path) -> None:
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE)
    env = {**os.environ, "CI": ci, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", str(probe)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert outcome in proc.stdout, proc.stdout + proc.stderr
    assert "the moon is not installed" in proc.stdout
    if ci:
        assert "missing under CI (install it in the workflow)" in proc.stdout


def _pytest_runs(job: dict[str, Any]) -> list[str]:
    return [
        str(s["run"]) for s in job["steps"] if str(s.get("run", "")).startswith("uv run pytest")
    ]


def test_the_workflow_runs_every_marked_test_in_a_job_that_has_what_it_needs() -> None:
    """Each mark is left out as the ordinary user and run as root, with postgresql-15 there."""
    markers = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"][
        "markers"
    ]
    names = sorted(m.split(":")[0] for m in markers)
    assert names == ["pg15", "root"]
    jobs = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text())["jobs"]
    assert _pytest_runs(jobs["test"]) == [
        'uv run pytest -m "' + " and ".join(f"not {n}" for n in names) + '"'
    ]
    assert _pytest_runs(jobs["test-root"]) == ['uv run pytest -m "' + " or ".join(names) + '"']
    root = jobs["test-root"]
    assert root["container"]["image"].startswith("debian:")  # root, and Debian's postgresql-15
    assert "--privileged" in root["container"]["options"]  # mount(8) of a tmpfs
    installs = " ".join(str(s.get("run", "")) for s in root["steps"])
    assert "postgresql-15" in installs
    assert str(PG15) == "/usr/lib/postgresql/15/bin"  # where Debian's package puts it

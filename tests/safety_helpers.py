"""The safety tests' scenario: a git repository whose feature branch adds one revision.

tests/scenarios/safety is the history scenario (users, notes) with an env.py that compares
nothing, so each test's revision may change the schema as it likes and only the safety
observation decides the verdict.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from migration_check.cli.app import main

from .conftest import ScenarioFactory

REVISION = '''"""{rev}

Revision ID: {rev}
Revises: {down}
"""
import sqlalchemy as sa
from alembic import op

revision = "{rev}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
{upgrade}


def downgrade() -> None:
{downgrade}
'''


def _git(project: Path, *args: str) -> None:
    proc = subprocess.run(
        ["git", *args], cwd=project, capture_output=True, text=True, check=False, timeout=60
    )
    assert proc.returncode == 0, f"git {args}: {proc.stderr}"


def git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("GIT_"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("PRE_COMMIT", raising=False)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Safety Test")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "safety-test@example.invalid")


def _block(code: str) -> str:
    return "\n".join("    " + line if line else "" for line in code.strip("\n").splitlines())


def project_with(
    scenario: ScenarioFactory,
    upgrade: str,
    downgrade: str = "pass",
    *,
    base_upgrade: str = "",
    base_downgrade: str = "pass",
    dest: str = "project",
) -> Path:
    """The scenario on main (plus ``base_upgrade`` as revision 0003), a new revision on feature."""
    project = scenario("safety", dest)
    down = "0002"
    if base_upgrade:
        (project / "versions" / "0003_base.py").write_text(
            REVISION.format(
                rev="0003",
                down="0002",
                upgrade=_block(base_upgrade),
                downgrade=_block(base_downgrade),
            )
        )
        down = "0003"
    _git(project, "init", "-q", "-b", "main")
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", "base")
    _git(project, "checkout", "-q", "-b", "feature")
    (project / "versions" / "0100_new.py").write_text(
        REVISION.format(rev="0100", down=down, upgrade=_block(upgrade), downgrade=_block(downgrade))
    )
    _git(project, "add", "-A")
    return project


def check_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["--format", "json", "--no-cache", *args])
    out, err = capsys.readouterr()
    assert out, err
    return code, json.loads(out)


def safety_kinds(report: dict[str, Any]) -> list[str]:
    return sorted(f["kind"] for f in report["findings"] if f["source"] == "safety")

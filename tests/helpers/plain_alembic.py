"""Plain Alembic on a scenario project: the truth the extension tests hold the checker to."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from migration_check.cli.app import main


def alembic(project: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``alembic ARGS`` in the project, as its developer runs it, on the database at ``url``."""
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=project, env=env, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def check_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["--format", "json", *args])
    return code, json.loads(capsys.readouterr().out)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))

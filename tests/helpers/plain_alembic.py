"""Plain Alembic on a scenario project: the truth the extension tests hold the checker to."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


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


def alembic_check(project: Path, url: str, xs: list[str]) -> subprocess.CompletedProcess[str]:
    """``alembic upgrade head`` then ``alembic check``, with the same ``-x`` arguments."""
    up = alembic(project, url, *xs, "upgrade", "head")
    assert up.returncode == 0, up.stderr
    return alembic(project, url, *xs, "check")

"""git as a user runs it in a test's repository; the ``git_identity`` fixture (conftest.py)
gives it a committer and keeps an outer repository's variables out."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git(cwd: Path, *args: str) -> str:
    """``git ARGS`` in ``cwd``; its output without the trailing newline. Fails the test on error."""
    proc = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=60
    )
    assert proc.returncode == 0, f"git {args}: {proc.stderr}"
    return proc.stdout.strip()

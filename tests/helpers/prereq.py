"""What a test needs from the machine: a skip on a developer's machine, a failure in CI.

A skipped test proves nothing, and a CI run that skips quietly looks green. So under ``CI``
(GitHub Actions and ``.ci/run`` both set it) a missing prerequisite fails the test, naming what
to install. Tests that need root carry the ``root`` mark, those that need Debian's
PostgreSQL 15 the ``pg15`` mark: the workflow runs them in a job that has both (as root, in a
Debian container), and deselects them in the job that runs as an ordinary user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

__all__ = ["PG15", "in_ci", "require", "require_mount", "require_pg15", "require_root"]

PG15 = Path("/usr/lib/postgresql/15/bin")


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def require(ok: bool, reason: str) -> None:
    """Skip unless ``ok``; under CI, fail instead, since there every prerequisite is installed."""
    if ok:
        return
    if in_ci():
        pytest.fail(f"missing under CI (install it in the workflow): {reason}", pytrace=False)
    pytest.skip(reason)


def require_root(why: str) -> None:
    require(os.geteuid() == 0, f"needs root: {why}")


def require_pg15() -> Path:
    require(
        (PG15 / "postgres").is_file(),
        f"PostgreSQL 15 not installed at {PG15} (apt-get install postgresql-15)",
    )
    return PG15


def require_mount(args: list[str]) -> None:
    """``mount ARGS``, or the test cannot run here (it needs root and mount(8))."""
    require_root("mounting a tiny or read-only tmpfs")
    require(shutil.which("mount") is not None, "mount(8) is not installed")
    proc = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    require(proc.returncode == 0, f"cannot mount a tmpfs here: {proc.stderr.strip()}")

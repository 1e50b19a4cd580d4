"""A run directory without its owner file: its checker was SIGKILLed between mkdir and writing it.

The sweep used to leave such a directory for its first minute (it may be a run being created
right now), and a random-moment SIGKILL test (promises/test_sigkill.py) left one behind. The
directory's name carries its creator's pid: once that process is gone, the next run removes it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.helpers.checker import checker_env, run_checker
from tests.helpers.procfs import leftovers


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_an_unowned_run_directory_of_a_dead_checker_is_swept(
    project: Path, run_root: Path, tmp_path: Path
) -> None:
    base = run_root / f"check-migrations-{os.geteuid()}"
    base.mkdir(mode=0o711)
    dead = base / f"run-{_dead_pid()}-0badcafe"
    dead.mkdir(mode=0o700)
    alive = base / f"run-{os.getpid()}-0fedcafe"  # this process lives: a run being created
    alive.mkdir(mode=0o700)
    try:
        result = run_checker(["--no-cache"], project, checker_env(run_root, tmp_path / "cache"))
        assert result.returncode == 0, result.stderr
        assert leftovers(run_root) == [alive]
    finally:
        alive.rmdir()

"""The server user's copy of the binaries (root, venv the server user cannot enter), SIGKILLed.

As root with the venv under /root, the checker copies the PostgreSQL installation to
``$TMPDIR/check-migrations-pg`` for the unprivileged server user, through a staging directory
renamed into place. A run SIGKILLed mid-copy left that staging (40 MB) behind for good: its
name carried the pid alone, and nothing swept it. A FIFO in the copied tree holds the copy
midway (copytree blocks reading it), so the kill lands mid-copy by construction, not by timing.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest

from migration_check.postgres.server import find_binaries
from tests.helpers.checker import checker_env, run_checker, shared_dir, start_checker
from tests.helpers.fs_events import wait_until_in
from tests.helpers.prereq import require_root


@pytest.mark.root
def test_a_copy_killed_midway_is_swept_by_the_next_run(
    tmp_path: Path, run_root: Path, project: Path
) -> None:
    require_root("only root runs the server as another user")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    package = find_binaries(None).bindir.parent.parent
    site = private / "site"
    shutil.copytree(package, site / package.name, symlinks=True)
    libs = package.parent / f"{package.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, site / libs.name, symlinks=True)
    fifo = site / package.name / "pginstall" / "zz-holds-the-copy"
    os.mkfifo(fifo)

    with shared_dir("cm-bincopy-") as tmpdir:
        shared = tmpdir / "check-migrations-pg"
        env = checker_env(
            run_root, tmp_path / "cache", extra={"PYTHONPATH": str(site), "TMPDIR": str(tmpdir)}
        )
        proc = start_checker(["--no-cache"], project, env)
        # Any staging: an older checker named it by pid alone (".tmp-<pid>-<hex>").
        tag = ".tmp-"
        try:
            wait_until_in(
                [tmpdir, shared],
                lambda: shared.is_dir() and any(p.name.startswith(tag) for p in shared.iterdir()),
                "the copy's staging directory",
            )
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
        left = [p for p in shared.iterdir() if p.name.startswith(tag)]
        assert len(left) == 1, sorted(shared.iterdir())

        fifo.unlink()
        result = run_checker(["--no-cache"], project, env)
        assert result.returncode == 0, result.stderr
        assert "models and migrations agree" in result.stdout
        assert not left[0].exists(), sorted(shared.iterdir())
        names = sorted(p.name for p in shared.iterdir())
        assert [n for n in names if n.startswith((".tmp-", ".trash-"))] == [], names
        assert any(n.endswith("-tree") for n in names), names

"""A long replay says where it is, revision by revision, to whoever watches it.

On a terminal (stderr a real pty here) or with ``-v``, the upgrade reports each revision as it
starts, with its count; redirected output keeps one line per phase, as scripts expect.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from migration_check.cli.app import EXIT_OK, main
from tests.helpers.checker import checker_env
from tests.helpers.paths import SHIM
from tests.helpers.scenarios import ScenarioFactory

PER_REVISION = ["revision 0001 (1/2)", "revision 0002 (2/2)"]


def _progress_lines(err: str) -> list[str]:
    """The progress messages, without the ``check-migrations:`` prefix and the clock."""
    return [
        line.removeprefix("check-migrations: ").rsplit(" (", 1)[0]
        for line in err.replace("\r", "").splitlines()
        if line.startswith("check-migrations: ") and line.endswith("s)")
    ]


def test_per_revision_with_v_and_one_line_when_redirected(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario("base")
    assert main(["--no-cache"]) == EXIT_OK
    quiet = _progress_lines(capsys.readouterr().err)
    assert "upgrading 2 revision(s) to head" in quiet
    assert not set(PER_REVISION) & set(quiet)

    assert main(["--no-cache", "-v"]) == EXIT_OK
    lines = _progress_lines(capsys.readouterr().err)
    at = lines.index("upgrading 2 revision(s) to head")
    assert lines[at + 1 : at + 3] == PER_REVISION


def test_per_revision_on_a_terminal(project: Path, run_root: Path) -> None:
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, str(SHIM), "--no-cache"],
            cwd=project, env=checker_env(run_root), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=slave,
        )  # fmt: skip
    finally:
        os.close(slave)
    seen = b""
    deadline = time.monotonic() + 300
    try:
        while True:
            ready, _, _ = select.select([master], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, f"no end of output within 300 s: {seen!r}"
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the last process writing to the terminal closed it
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    assert proc.wait(timeout=60) == EXIT_OK, seen
    lines = _progress_lines(seen.decode())
    at = lines.index("upgrading 2 revision(s) to head")
    assert lines[at + 1 : at + 3] == PER_REVISION

"""The warm server's keeper (``--keep-warm``): it serves the next check, and nothing of it is
left after its idle time, ``--stop-warm`` or a SIGKILL (then the next run sweeps).

Every check runs as users run it (a process of its own), each test in a private XDG_RUNTIME_DIR
and run directory (tests/helpers/warm.py); waits are on a pid's end through a pidfd, never sleeps.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from migration_check.cli.app import EXIT_OK
from tests.helpers.checker import run_checker
from tests.helpers.procfs import wait_pid_exit
from tests.helpers.warm import Warm, warm_state
from tests.helpers.warm_server import keeper_files, keepers, run_dirs, served, servers


@pytest.fixture
def warm() -> Iterator[Warm]:
    with warm_state() as state:
        yield state


def test_the_next_check_uses_the_same_server(project: Path, warm: Warm) -> None:
    first = warm.check(project, "--keep-warm", "5m")
    assert first.returncode == EXIT_OK, first.stderr
    [keeper] = keepers(warm)
    [run] = run_dirs(warm)
    second = warm.check(project, "--keep-warm", "5m", "-v")
    assert second.returncode == EXIT_OK, second.stderr
    assert f"using the warm PostgreSQL (keeper pid {keeper})" in second.stderr
    assert "starting a throwaway PostgreSQL" not in second.stderr
    assert keepers(warm) == [keeper]
    assert run_dirs(warm) == [run]
    assert served(warm) == 2


def test_idle_exit_stops_the_server_and_leaves_nothing(project: Path, warm: Warm) -> None:
    assert warm.check(project, "--keep-warm", "5m").returncode == EXIT_OK
    [keeper] = keepers(warm)
    # The latest check's duration is the one kept: 1 s after this check, the keeper is gone.
    assert warm.check(project, "--keep-warm", "1s").returncode == EXIT_OK
    assert wait_pid_exit(keeper), "the keeper outlived its idle time"
    assert servers(warm) == []
    assert run_dirs(warm) == []
    assert keeper_files(warm) == []


def test_stop_warm_stops_it_and_leaves_nothing(project: Path, warm: Warm) -> None:
    assert warm.check(project, "--keep-warm", "5m").returncode == EXIT_OK
    [keeper] = keepers(warm)
    stopped = run_checker(["--stop-warm"], project, warm.env())
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped 1 warm server(s)\n" in stopped.stdout
    assert wait_pid_exit(keeper, timeout=0)  # --stop-warm returned after it ended
    assert servers(warm) == []
    assert run_dirs(warm) == []
    assert keeper_files(warm) == []
    again = run_checker(["--stop-warm"], project, warm.env())
    assert "stopped 0 warm server(s)\n" in again.stdout


def test_a_sigkilled_keepers_server_is_swept_by_the_next_run(project: Path, warm: Warm) -> None:
    assert warm.check(project, "--keep-warm", "5m").returncode == EXIT_OK
    [keeper] = keepers(warm)
    [old_run] = run_dirs(warm)
    [postmaster] = servers(warm)
    os.kill(keeper, signal.SIGKILL)
    assert wait_pid_exit(keeper)
    assert wait_pid_exit(postmaster), "the warm server outlived its keeper"
    # Its run directory and state are still there, for the next run to find.
    assert run_dirs(warm) == [old_run]
    again = warm.check(project, "--keep-warm", "5m", "-v")
    assert again.returncode == EXIT_OK, again.stderr
    assert old_run not in run_dirs(warm)
    [new_keeper] = keepers(warm)
    assert new_keeper != keeper
    assert len(run_dirs(warm)) == 1
    assert run_checker(["--stop-warm"], project, warm.env()).returncode == 0
    assert wait_pid_exit(new_keeper)
    assert servers(warm) == []
    assert run_dirs(warm) == []
    assert keeper_files(warm) == []

"""The resident worker under faults: SIGKILL of a check or of the resident process, signals
and --timeout in a forked check. Same set-up as test_warm.py (tests/helpers/warm.py).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from migration_check.cli.app import EXIT_ERROR
from tests.helpers.checker import start_checker, wait_for_line
from tests.helpers.procfs import wait_pid_exit
from tests.helpers.warm import Warm, hang, warm_state


@pytest.fixture
def warm() -> Iterator[Warm]:
    with warm_state() as state:
        yield state


@contextlib.contextmanager
def _hung_forked_check(
    project: Path, warm: Warm, seen: list[str]
) -> Iterator[tuple[int, subprocess.Popen[str], int]]:
    """A check forked by the resident worker, hung in its upgrade: (daemon, check, worker)."""
    hang(project)
    warm.check(project, "--keep-warm", "5m", "--timeout", "2")
    warm.wait_ready()
    [daemon] = warm.pids()
    proc = start_checker(["--keep-warm", "5m"], project, warm.env())
    try:
        assert wait_for_line(proc, "upgrading", seen), seen
        [log] = warm.dir.glob("w-*.log")
        [child] = [int(m) for m in re.findall(r"worker pid (\d+)", log.read_text())]
        yield daemon, proc, child
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_sigkill_of_the_check_kills_its_forked_worker(project: Path, warm: Warm) -> None:
    with _hung_forked_check(project, warm, []) as (daemon, proc, child):
        proc.kill()
        proc.wait()
    assert wait_pid_exit(child), "the forked worker outlived its killed check"
    assert warm.pids() == [daemon]  # the resident worker itself carries on


def test_sigkill_of_the_resident_worker_kills_its_children(project: Path, warm: Warm) -> None:
    seen: list[str] = []
    with _hung_forked_check(project, warm, seen) as (daemon, proc, child):
        os.kill(daemon, signal.SIGKILL)
        _out, err = proc.communicate(timeout=60)
    assert wait_pid_exit(child), "the forked worker outlived its resident worker"
    # The check says its worker died (exit 2), as with a fresh worker killed by someone.
    assert proc.returncode == EXIT_ERROR, "".join(seen) + err
    assert "the Alembic worker died" in err, err
    # What the killed one left (pid file, socket, log) stays until the next check that starts
    # a resident worker sweeps it (here, of another key too: another directory).
    left = warm.files()
    assert len(left) == 3, left
    other = project.parent / "other"
    shutil.copytree(project, other)
    assert warm.check(other, "--keep-warm", "5m", "--timeout", "2").returncode == EXIT_ERROR
    warm.wait_ready()
    assert not set(left) & set(warm.files())
    assert len(warm.pids()) == 1
    assert warm.pids() != [daemon]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signals_and_timeout_work_as_with_a_fresh_worker(
    sig: signal.Signals, project: Path, warm: Warm
) -> None:
    hang(project)
    timed_out = warm.check(project, "--keep-warm", "5m", "--timeout", "2")
    warm.wait_ready()
    again = warm.check(project, "--keep-warm", "5m", "--timeout", "2")
    assert warm.served() == 1
    assert (timed_out.returncode, again.returncode) == (EXIT_ERROR, EXIT_ERROR)
    assert again.stderr.splitlines()[-1] == timed_out.stderr.splitlines()[-1]
    assert "did not finish within 2 s" in again.stderr
    proc = start_checker(["--keep-warm", "5m"], project, warm.env())
    seen: list[str] = []
    try:
        assert wait_for_line(proc, "upgrading", seen), seen
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    verb = "interrupted" if sig == signal.SIGINT else "terminated"
    assert proc.returncode == 128 + sig, "".join(seen) + err
    # (The scratch database was on the warm server, which --keep-warm keeps too.)
    assert err.endswith(
        f"check-migrations: {verb}; scratch database dropped on the warm server\n"
    ), err
    [log] = warm.dir.glob("w-*.log")
    children = [int(m) for m in re.findall(r"worker pid (\d+)", log.read_text())]
    assert len(children) == 2
    assert all(wait_pid_exit(pid, timeout=0) for pid in children)  # already gone when it exited

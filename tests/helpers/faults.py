"""Helpers for the safety, fault and bad-input suites.

The checker run as a real subprocess (signals and SIGKILL need a process of its own), and /proc
readers that find stray servers, workers and TCP listeners without trusting the checker's own
bookkeeping. The second server ("the developer's real database") is in second_server.py.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.paths import SHIM


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def shared_tmp() -> str:
    # The server user must traverse the parent: pytest's tmp_path sits under a 0700 directory.
    return "/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()


@contextlib.contextmanager
def shared_dir(prefix: str) -> Iterator[Path]:
    """A directory the unprivileged server user can traverse (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=shared_tmp()))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def checker_env(
    run_dir: Path, cache_dir: Path | None = None, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a checker subprocess, confined to this test's run directory."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CHECK_MIGRATIONS_") and k not in ("DATABASE_URL", "PGPASSWORD")
    }
    env["CHECK_MIGRATIONS_RUN_DIR"] = str(run_dir)
    if cache_dir is not None:
        env["CHECK_MIGRATIONS_CACHE_DIR"] = str(cache_dir)
    elif "CHECK_MIGRATIONS_CACHE_DIR" in os.environ:
        env["CHECK_MIGRATIONS_CACHE_DIR"] = os.environ["CHECK_MIGRATIONS_CACHE_DIR"]
    env["NO_COLOR"] = "1"
    # These tests interrupt and race the pipeline itself: a stored verdict would skip it.
    env["CHECK_MIGRATIONS_VERDICT_CACHE"] = "0"
    env.update(extra or {})
    return env


def start_checker(args: Sequence[str], cwd: Path, env: Mapping[str, str]) -> subprocess.Popen[str]:
    """The checker as users run it: ``python tools/check_migrations.py``, in its own process."""
    return subprocess.Popen(
        [sys.executable, str(SHIM), *args],
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def run_checker(
    args: Sequence[str], cwd: Path, env: Mapping[str, str], *, timeout: float = 120
) -> Finished:
    start = time.monotonic()
    proc = start_checker(args, cwd, env)
    out, err = proc.communicate(timeout=timeout)
    return Finished(proc.returncode, out, err, time.monotonic() - start)


def wait_for_line(proc: subprocess.Popen[str], needle: str, seen: list[str]) -> bool:
    """Read stderr until a line contains ``needle`` (True) or the stream ends (False)."""
    assert proc.stderr is not None
    for line in proc.stderr:
        seen.append(line)
        if needle in line:
            return True
    return False


def postgres_pids(marker: Path) -> list[int]:
    """Live ``postgres`` processes whose command line names a path under ``marker``."""
    found = []
    needle = str(marker).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if needle in cmdline and b"postgres" in cmdline and ") Z " not in stat:
            found.append(int(entry.name))
    return found


def tcp_listen_inodes() -> set[str]:
    """Socket inodes of every listening TCP socket (IPv4 and IPv6) on the machine."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as fh:
            next(fh)
            for line in fh:
                fields = line.split()
                if fields[3] == "0A":  # TCP_LISTEN
                    inodes.add(fields[9])
    return inodes


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
    return inodes


def leftovers(run_root: Path) -> list[Path]:
    """Run directories left under a CHECK_MIGRATIONS_RUN_DIR."""
    return sorted(run_root.glob("check-migrations-*/run-*"))


def unique(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


def wait_pid_exit(pid: int, timeout: float = 30) -> bool:
    """Wait for a process that is not our child (a daemon, an orphan) to end, without polling."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def workers_in(project: Path) -> list[int]:
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


def assert_clean(run_root: Path, project: Path) -> None:
    """No server, no run directory and no worker is left of the checks this test ran."""
    assert postgres_pids(run_root) == []
    left = leftovers(run_root)
    # What is inside says which step was interrupted (owner only, data, a server log, ...).
    assert left == [], {
        str(d): sorted(str(p.relative_to(d)) for p in d.rglob("*"))[:20] for d in left
    }
    assert workers_in(project) == []


def write_third_revision(project: Path, body: str, slug: str = "hang") -> Path:
    """``versions/0003_<slug>.py`` on top of the base scenario's 0002, ``upgrade()`` = ``body``.

    ``os``, ``sa`` and ``op`` are imported for the body's use.
    """
    path = project / "versions" / f"0003_{slug}.py"
    path.write_text(
        f'"""{slug}\n\nRevision ID: 0003\n"""\nimport os\n\nimport sqlalchemy as sa\n'
        "from alembic import op\n\n"
        'revision = "0003"\ndown_revision = "0002"\nbranch_labels = None\ndepends_on = None\n\n\n'
        f"def upgrade() -> None:\n{body}\n\n\ndef downgrade() -> None:\n    pass\n"
    )
    return path

"""What /proc says is running: stray servers, workers and listeners, read without trusting the
checker's own bookkeeping (a pid file or a log line can lie; the kernel's table cannot).
"""

from __future__ import annotations

import contextlib
import os
import select
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Process:
    pid: int
    cmdline: bytes
    ppid: int
    zombie: bool

    def command(self) -> str:
        return self.cmdline.replace(b"\0", b" ").decode(errors="replace")


def processes() -> Iterator[Process]:
    """Every process of the machine that is still there when its entry is read."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name in parentheses may hold spaces and ")": the fields follow the last one.
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        yield Process(int(entry.name), cmdline, int(ppid), state == "Z")


def cwd_of(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None


def postgres_pids(marker: Path) -> list[int]:
    """Live ``postgres`` processes whose command line names a path under ``marker``."""
    needle = str(marker).encode()
    return [
        p.pid
        for p in processes()
        if needle in p.cmdline and b"postgres" in p.cmdline and not p.zombie
    ]


def processes_mentioning(needle: str) -> list[int]:
    """Live processes whose command line holds ``needle``."""
    return [p.pid for p in processes() if needle.encode() in p.cmdline and not p.zombie]


def children_of(pid: int) -> list[int]:
    """Processes whose parent is ``pid``, zombies included: not reaped is not gone."""
    return [p.pid for p in processes() if p.ppid == pid]


def workers_in(project: Path) -> list[int]:
    """Live processes running in the project's directory: a worker that outlived its checker."""
    return [p.pid for p in processes() if cwd_of(p.pid) == str(project)]


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


def leftovers(run_root: Path) -> list[Path]:
    """Run directories left under a CHECK_MIGRATIONS_RUN_DIR."""
    return sorted(run_root.glob("check-migrations-*/run-*"))


def assert_clean(run_root: Path, project: Path) -> None:
    """No server, no run directory and no worker is left of the checks this test ran."""
    assert postgres_pids(run_root) == []
    left = leftovers(run_root)
    # What is inside says which step was interrupted (owner only, data, a server log, ...).
    assert left == [], {
        str(d): sorted(str(p.relative_to(d)) for p in d.rglob("*"))[:20] for d in left
    }
    assert workers_in(project) == []

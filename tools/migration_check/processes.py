"""Child processes and the signals around them: start, hold, kill, and sweep what a dead run left.

Every child of the checker (initdb, the server, the worker) runs in its own process group, so
Ctrl-C reaches only the checker, which then stops them in order. Starting one happens with
SIGINT and SIGTERM held (``signals_held``), so no interrupt can land between the fork and the
moment the parent records the child. The Linux parent-death signal covers the checker's own
SIGKILL; ``sweep_orphans`` removes the run directories such a death leaves.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import re
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "arm_parent_death",
    "child_setup",
    "exited",
    "kill_group",
    "live_pid",
    "proc_start_time",
    "signals_held",
    "staging_tag",
    "sweep_orphans",
    "terminate",
    "writer_dead",
]

_PR_SET_PDEATHSIG = 1


def arm_parent_death(sig: int) -> Callable[[], None] | None:
    """A preexec_fn asking Linux to signal the child when the checker dies (even by SIGKILL)."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name or not Path("/proc/self").exists():
        return None
    libc = ctypes.CDLL(libc_name, use_errno=True)

    def arm() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)

    return arm


_TEARDOWN_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends; they are delivered right after.

    Around teardown: a second Ctrl-C must not cut it short. Around starting a child and
    recording it: a signal landing inside Popen (after the fork, before it returns) would
    leave a child teardown does not know of, writing into a directory being removed.
    """
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _TEARDOWN_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def child_setup(parent_death: int | None = None) -> Callable[[], None]:
    """A preexec_fn for children started under ``signals_held``.

    A child inherits the held mask; it gets the signals back, and optionally the Linux
    parent-death signal.
    """
    arm = arm_parent_death(parent_death) if parent_death is not None else None

    def setup() -> None:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _TEARDOWN_SIGNALS)
        if arm is not None:
            arm()

    return setup


def proc_start_time(pid: int) -> str:
    """The kernel's start time of ``pid``: a pid and its start time name one process forever."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def staging_tag() -> str:
    """``w<pid>.<start time>``, put in a staging directory's name: who is writing it."""
    pid = os.getpid()
    return f"w{pid}.{proc_start_time(pid)}"


def writer_dead(name: str) -> bool:
    """A staging name (``staging_tag``) whose writer has died: a SIGKILLed run's, to remove.

    False for a name without the tag (an older checker's): only its age tells.
    """
    match = re.search(r"-w(\d+)\.(\d+)-", name)
    return match is not None and not _alive(int(match[1]), match[2])


def exited(pid: int) -> bool:
    """Whether ``pid`` has ended, if not yet reaped: a detached process (the warm server's
    keeper) is reaped by init, which may take its time, and a zombie answers ``kill(pid, 0)``."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return False


def _alive(pid: int, start: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if exited(pid):
        return False
    return not start or proc_start_time(pid) in ("", start)


def sweep_orphans(base: Path, *, min_age: float = 60.0) -> list[Path]:
    """Remove run directories whose checker died (SIGKILL), and stop their servers."""
    swept: list[Path] = []
    now = time.time()
    for run in base.glob("run-*"):
        owner = run / "owner"
        try:
            pid_s, start = owner.read_text().split()
        except (OSError, ValueError):
            # No owner file yet: a run being created right now, unless it is old, or unless its
            # creator (the pid in its name) is gone: SIGKILLed between mkdir and the owner file.
            creator = re.match(r"run-(\d+)-", run.name)
            try:
                if now - run.lstat().st_mtime < min_age and (
                    creator is None or _alive(int(creator[1]), "")
                ):
                    continue
            except OSError:
                continue
            pid_s, start = "0", ""
        pid = int(pid_s) if pid_s.isdigit() else 0
        if pid and _alive(pid, start):
            continue
        _kill_postmaster(run / "data")
        shutil.rmtree(run, ignore_errors=True)
        swept.append(run)
    return swept


def _kill_postmaster(data: Path) -> None:
    try:
        pm_pid = int((data / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return
    try:
        cmdline = Path(f"/proc/{pm_pid}/cmdline").read_bytes()
    except OSError:
        cmdline = b""
    # Only a postgres serving this very directory: pids are recycled.
    if str(data).encode() in cmdline:
        with contextlib.suppress(OSError):
            os.kill(pm_pid, signal.SIGKILL)


class _Waitable(Protocol):
    """A child that leads its process group: a ``Popen``, or a resident worker's
    (run/resident_client.py)."""

    @property
    def pid(self) -> int: ...

    def wait(self, timeout: float | None = None) -> int: ...


def kill_group(proc: subprocess.Popen[Any] | _Waitable) -> None:
    """SIGKILL a process group and wait until it is empty (children are not ours to wait on)."""
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except OSError:  # no process left in the group
            return
        time.sleep(0.01)


def live_pid(pidfile: Path) -> int:
    """The live process a pid file (``pid start-time``) names, or 0 (gone, or its pid reused)."""
    try:
        pid_s, start = pidfile.read_text().split()
        pid = int(pid_s)
    except (OSError, ValueError):
        return 0
    if proc_start_time(pid) != start:
        return 0
    return pid


def terminate(pid: int, sig: int, timeout: float = 10.0) -> None:
    """Signal ``pid`` and wait for its end (SIGKILL after ``timeout``): it is nobody's child."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return
    try:
        signal.pidfd_send_signal(fd, sig)
        if not select.select([fd], [], [], timeout)[0]:
            signal.pidfd_send_signal(fd, signal.SIGKILL)
            select.select([fd], [], [], timeout)
    except OSError:
        pass
    finally:
        os.close(fd)

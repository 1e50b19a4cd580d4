"""The resident worker seen from the CLI (``--keep-warm``): find it, ask it for a child, stop it.

A check's floor is the worker's start: a fresh interpreter importing SQLAlchemy, Alembic and
psycopg. With ``keep_warm`` on, a resident process (resident/daemon.py) holds those libraries
imported and forks one child per check; the child imports the project's code fresh, as a new worker
would. It is found by a socket in a private 0700 directory whose name is a hash of everything the
fork inherits from the resident process's own start (``daemon_key``): another interpreter, another
library set, another start-up environment is another resident worker, and old ones idle out.

Whatever goes wrong here (no directory of our own, a socket that does not answer, a resident
worker of another user) ends in the ordinary spawn: keep-warm may make a check faster, never
fail it. Stdlib only: this runs in the CLI process.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import select
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO

from migration_check.processes import live_pid, terminate

__all__ = ["WarmChild", "daemon_key", "spawn_warm", "stop_all", "warm_dir"]

# Read at interpreter or library start, so a forked child inherits the resident process's view
# of them (the locale, the user site directory via HOME, the dynamic loader's path, psycopg's
# implementation): each is part of the key. Variables read later (PG*, DATABASE_URL, anything
# env.py or the models read) come from the check's own environment, which the child receives.
# (resident/daemon.py also records what os.environ was asked while importing, and declines a check
# whose environment differs there: this list is what Python's C start-up reads, plus a margin.)
_START_PREFIXES = ("PYTHON", "_PYTHON", "LC_", "LD_", "PSYCOPG", "SQLALCHEMY", "ALEMBIC")
_START_NAMES = ("LANG", "LANGUAGE", "HOME", "TZ", "TMPDIR")
_CONNECT_TIMEOUT = 2.0
_NAME = "w-"  # sockets, pid files and logs: w-<key>.sock / .pid / .log


def warm_dir(*, create: bool = True, name: str = "check-migrations") -> tuple[Path | None, str]:
    """This user's private directory for resident workers, or (None, why it cannot be used).

    ``$XDG_RUNTIME_DIR/check-migrations`` (per-user, tmpfs, removed at logout), else
    ``/tmp/check-migrations-warm-<uid>`` (not ``check-migrations-<uid>``: that name is the run
    directory's when CHECK_MIGRATIONS_RUN_DIR is /tmp, and root keeps it 0711).
    """
    uid = os.geteuid()
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.isdir(runtime) and os.access(runtime, os.W_OK | os.X_OK):
        path = Path(runtime) / name
    else:
        path = Path(tempfile.gettempdir()) / f"{name}-warm-{uid}"
    if create:
        with contextlib.suppress(FileExistsError, OSError):
            path.mkdir(mode=0o700)
    elif not os.path.lexists(path):
        return None, "none yet"
    try:
        st = path.lstat()
    except OSError as exc:
        return None, f"cannot create {path}: {exc.strerror}"
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        return None, f"{path} is not a directory"
    if st.st_uid != uid or stat.S_IMODE(st.st_mode) != 0o700:
        # Never repaired: a directory another user could enter or replace is not ours to trust.
        return None, f"{path} is not a 0700 directory owned by uid {uid}"
    return path, ""


def daemon_key(env: dict[str, str], cwd: Path) -> str:
    """A hash of everything a fresh worker's start depends on that a fork would inherit."""
    from migration_check.caches.verdict import checker_digest
    from migration_check.fingerprints.digests import is_library_dir, library_digest

    digest = hashlib.sha256()

    def add(*parts: str | None) -> None:
        for part in parts:
            digest.update((part if part is not None else "\x01").encode() + b"\0")

    add(str(os.geteuid()), os.path.realpath(sys.executable), sys.version, checker_digest())
    # Relative PYTHONPATH entries, and anything sitecustomize does with the directory.
    add(os.path.realpath(cwd))
    for name in sorted(env):
        if name.startswith(_START_PREFIXES) or name in _START_NAMES:
            add(name, env[name])
    # The installed distributions (names with versions, .pth files), as fingerprints/inputs.py
    # records them. This process's sys.path holds the same library directories as the worker's (one
    # interpreter, one environment); the resident process also re-checks its own
    # (resident/daemon.py).
    for entry in sys.path:
        if entry and is_library_dir(entry):
            add(os.path.realpath(entry), library_digest(entry))
    return digest.hexdigest()[:24]


def _peer_uid(sock: socket.socket) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


class WarmChild:
    """A worker forked by the resident process, with the parts of ``Popen`` the CLI uses.

    ``pid`` leads its own process group (``kill_group`` works as for a ``Popen``); the exit
    status comes over the connection, which stays open until the check is over: if it closes
    first (this process was SIGKILLed), the resident process kills the child's group.
    """

    stdout = None

    def __init__(self, sock: socket.socket, pid: int, stdin: IO[bytes]) -> None:
        self._sock = sock
        self.pid = pid
        self.stdin: IO[bytes] | None = stdin
        self.returncode: int | None = None
        self._buf = b""

    def poll(self) -> int | None:
        if self.returncode is None:
            self._read(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self._read(timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired("migration_check.resident.daemon child", timeout or 0)
        return self.returncode

    def _read(self, timeout: float | None) -> None:
        while b"\n" not in self._buf:
            if not select.select([self._sock], [], [], timeout)[0]:
                return
            try:
                chunk = self._sock.recv(4096)
            except OSError:
                chunk = b""
            if not chunk:
                # The resident process died: the child got its parent-death signal.
                self.returncode = -signal.SIGKILL
                self.close()
                return
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        self.returncode = int(json.loads(line)["exit"])
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()


def _connect(path: Path) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(_CONNECT_TIMEOUT)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        return None
    return sock


def spawn_warm(
    env: dict[str, str], cwd: Path, keep_warm: float, out_fd: int, event_fd: int
) -> tuple[WarmChild | None, str]:
    """A worker forked by this key's resident process, or (None, why: the caller spawns one).

    ``env`` is the worker's environment (``CHECK_MIGRATIONS_EVENT_FD`` is set by the child to
    the descriptor it receives); ``out_fd`` takes its stdout and stderr, ``event_fd`` its events.
    When no resident process answers, one is started for the next check.
    """
    base, why = warm_dir()
    if base is None:
        return None, f"unsafe: {why}"
    child_env = {k: v for k, v in env.items() if k != "CHECK_MIGRATIONS_EVENT_FD"}
    key = daemon_key(child_env, cwd)
    path = base / f"{_NAME}{key}.sock"
    if len(os.fsencode(path)) >= 108:  # sun_path
        return None, f"{path} is too long for a Unix socket"
    sock = _connect(path)
    if sock is None:
        _start_daemon(base, key, child_env, cwd, keep_warm)
        return None, "no resident worker answered; started one for the next check"
    try:
        return _ask(sock, child_env, cwd, keep_warm, out_fd, event_fd)
    except (OSError, ValueError, KeyError) as exc:
        sock.close()
        return None, f"the resident worker did not answer ({exc})"


def _ask(
    sock: socket.socket,
    env: dict[str, str],
    cwd: Path,
    keep_warm: float,
    out_fd: int,
    event_fd: int,
) -> tuple[WarmChild | None, str]:
    if _peer_uid(sock) != os.geteuid():
        sock.close()
        return None, "the resident worker's socket belongs to another user"
    umask = os.umask(0o077)
    os.umask(umask)
    header = json.dumps(
        {"environ": env, "cwd": str(cwd), "umask": umask, "keep_warm": keep_warm}
    ).encode()
    stdin_r, stdin_w = os.pipe()
    try:
        message = struct.pack("!I", len(header)) + header
        socket.send_fds(sock, [message], [stdin_r, out_fd, event_fd])
    finally:
        os.close(stdin_r)
    stdin = os.fdopen(stdin_w, "wb")
    buf = b""
    while b"\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            stdin.close()
            raise ValueError("connection closed")
        buf += chunk
    line, rest = buf.split(b"\n", 1)
    reply = json.loads(line)
    if "pid" not in reply:
        stdin.close()
        sock.close()
        return None, f"the resident worker declined: {reply.get('error', reply)}"
    sock.settimeout(None)
    child = WarmChild(sock, int(reply["pid"]), stdin)
    child._buf = rest
    return child, f"worker forked by the resident worker (pid {child.pid})"


def _start_daemon(base: Path, key: str, env: dict[str, str], cwd: Path, keep_warm: float) -> None:
    """Start this key's resident process, detached; the check at hand does not wait for it."""
    _sweep_dead(base)
    try:
        fd = os.open(base / f"{_NAME}{key}.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with open(fd, "ab") as log:
            starter = subprocess.Popen(
                [
                    sys.executable,
                    "-P",
                    "-m",
                    "migration_check.resident.daemon",
                    str(base),
                    key,
                    str(keep_warm),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        # It forks the resident process and exits at once (before any import): reaped here,
        # so the resident process is no child of this one and nothing is left to reap later.
        starter.wait(timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return


def _sweep_dead(base: Path) -> None:
    """Remove what SIGKILLed resident processes left (any key): their socket, pid file, log.

    A starting one is never taken for dead: its pid file appears whole (resident/daemon.py links it
    in), and until then there is nothing of it here but its log, which only a pid file names.
    """
    for pidfile in base.glob(f"{_NAME}*.pid"):
        if not live_pid(pidfile):
            for suffix in (".sock", ".log", ".pid"):
                with contextlib.suppress(OSError):
                    pidfile.with_suffix(suffix).unlink()


def stop_all(timeout: float = 10.0) -> int:
    """Stop every resident worker of this user; return how many were running.

    SIGTERM lets one finish the checks it serves and remove its files; after ``timeout`` it is
    SIGKILLed (its children die with it) and its files are removed here.
    """
    base, _why = warm_dir(create=False)
    if base is None:
        return 0
    stopped = 0
    for pidfile in sorted(base.glob(f"{_NAME}*.pid")):
        pid = live_pid(pidfile)
        if pid:
            stopped += 1
            terminate(pid, signal.SIGTERM, timeout)
        for suffix in (".sock", ".pid", ".log"):
            with contextlib.suppress(OSError):
                pidfile.with_suffix(suffix).unlink()
    for sock in base.glob(f"{_NAME}*.sock"):  # a socket without its pid file: a dead one's
        with contextlib.suppress(OSError):
            sock.unlink()
    return stopped

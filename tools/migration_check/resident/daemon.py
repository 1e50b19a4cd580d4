"""The resident worker (``--keep-warm``): libraries imported once, one forked child per check.

Started by run/resident_client.py as ``python -P -m migration_check.resident.daemon DIR KEY
SECONDS`` with the worker's own environment and directory, so up to the fork it is what a fresh
worker is after
``_preload()``: the same interpreter, ``sys.path``, start-up environment, and SQLAlchemy,
Alembic and psycopg imported; never any project code. Each check's child then takes the
check's environment, directory, umask and descriptors and runs exactly ``worker.process.main()``.

Why trust a fork to give the same verdict: the key in the socket's name covers what the start
depended on (run/resident_client.py's ``daemon_key``), and before each fork this process re-checks
what it loaded (every module file's size, mtime and inode; every ``sys.path`` directory's names, so
a new module that would shadow an import counts) and every variable read from ``os.environ`` while
importing: anything moved or different, it declines and exits, and the check spawns a fresh
worker.

What it leaves: nothing after its idle time, SIGTERM (``check-migrations --stop``) or a stale
check (socket, pid file and log removed, children waited for). A child whose client went away
(the CLI SIGKILLed) has its group killed; children die with this process (parent-death signal).
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migration_check.resident.fork import become_worker

_TERMINATING = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


@dataclass
class _Child:
    pid: int
    pidfd: int
    conn: socket.socket | None


def _log(message: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(f"{time.strftime('%H:%M:%S')} warmd[{os.getpid()}]: {message}\n")
        sys.stderr.flush()


def _module_files() -> dict[str, tuple[int, int, int]]:
    """Every loaded module's file as (size, mtime_ns, inode): a library edited in place."""
    seen: dict[str, tuple[int, int, int]] = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and path not in seen:
            try:
                st = os.stat(path)
            except OSError:
                continue
            seen[path] = (st.st_size, st.st_mtime_ns, st.st_ino)
    return seen


def _path_listings() -> dict[str, str | None]:
    """Each ``sys.path`` directory's names (a new module there could shadow a loaded one), and
    what a fresh interpreter's start-up would consult (fingerprints/startup.py): a ``sitecustomize``
    or
    ``.pth`` file, a user site directory or ``pyvenv.cfg`` appearing makes this process stale.
    """
    from migration_check.fingerprints.digests import file_digest, library_digest, listing_digest
    from migration_check.fingerprints.startup import startup_paths

    listings: dict[str, str | None] = {
        p: f"{listing_digest(p)}|{library_digest(p)}" for p in sys.path if p
    }
    files, dirs = startup_paths()
    listings.update({f"file:{p}": file_digest(p) for p in files})
    listings.update({f"dir:{p}": listing_digest(p) for p in dirs})
    return listings


class _Daemon:
    def __init__(self, base: Path, key: str, idle: float) -> None:
        self.sock_path = base / f"w-{key}.sock"
        self.pid_path = base / f"w-{key}.pid"
        self.log_path = base / f"w-{key}.log"
        self.idle = idle
        self.pid = os.getpid()
        self.children: dict[int, _Child] = {}
        self.last = time.monotonic()
        self.stopping = ""
        self.served = 0
        self.sel = selectors.DefaultSelector()
        self.listener: socket.socket | None = None
        self.wake_r, self.wake_w = socket.socketpair()
        self.arm: Callable[[], None] | None = None
        self.start_env: dict[str, str | None] = {}

    def run(self) -> int:
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        os.umask(0o077)
        if not self._lock():
            return 0
        try:
            for sig in _TERMINATING:
                signal.signal(sig, lambda *_: None)  # woken through the wakeup socket below
            self.wake_w.setblocking(False)
            signal.set_wakeup_fd(self.wake_w.fileno())
            self._load()
            self.sel.register(self.wake_r, selectors.EVENT_READ, "wake")
            self._listen()
            self._loop()
        finally:
            self._close_listener()
            # The pid file last: until it is gone no other resident process for this key starts.
            with contextlib.suppress(OSError):
                self.log_path.unlink()
            with contextlib.suppress(OSError):
                self.pid_path.unlink()
        return 0

    def _lock(self) -> bool:
        """The pid file, created exclusively: one resident process per key, however many start."""
        from migration_check.processes import live_pid, proc_start_time

        # Written whole under a temporary name, then linked: link() fails if the name exists, so
        # no other starter can ever read a half-written pid file and take it for a dead one's.
        temp = self.pid_path.with_name(f"{self.pid_path.name}.{self.pid}")
        temp.write_text(f"{self.pid} {proc_start_time(self.pid)}\n")
        try:
            for _attempt in range(2):
                try:
                    os.link(temp, self.pid_path)
                    return True
                except FileExistsError:
                    if live_pid(self.pid_path):
                        _log("another resident worker holds this key; exiting")
                        return False
                    with contextlib.suppress(OSError):  # a SIGKILLed one's
                        self.pid_path.unlink()
            return False
        finally:
            temp.unlink()

    def _load(self) -> None:
        from migration_check.fingerprints import inputs
        from migration_check.processes import arm_parent_death

        # Which variables the checker's modules and the libraries read while importing
        # (fingerprints/inputs.py watches os.environ): a request whose environment differs in one is
        # not served.
        reads: dict[str, str | None] = {}
        inputs.record_environ(reads)
        try:
            from migration_check.worker import process as worker

            worker.preload()
        finally:
            inputs.stop_recording_environ()
            os.environ.__class__ = os._Environ  # as in a fresh worker until it records
            inputs._RecordingEnviron._written = set()
        self.start_env = reads
        self.arm = arm_parent_death(signal.SIGKILL)
        self.modules = _module_files()
        self.listings = _path_listings()

    def _listen(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.sock_path.unlink()  # a dead one's: the pid file says none is alive
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.sock_path))
        listener.listen(16)
        self.listener = listener
        self.sel.register(listener, selectors.EVENT_READ, "accept")
        self.last = time.monotonic()  # idle from now: the imports are not idle time
        _log(f"ready: {len(self.modules)} module files loaded, idle exit after {self.idle:g} s")

    def _close_listener(self) -> None:
        if self.listener is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(self.listener)
        self.listener.close()
        self.listener = None
        with contextlib.suppress(OSError):
            self.sock_path.unlink()

    def _loop(self) -> None:
        while True:
            now = time.monotonic()
            if not self.stopping and not self.children and now - self.last >= self.idle:
                self.stopping = f"idle for {self.idle:g} s"
            if self.stopping:
                self._close_listener()  # new checks start a fresh worker from here on
                if not self.children:
                    _log(f"exiting ({self.stopping}) after serving {self.served} check(s)")
                    return
            timeout = None if self.children else max(0.0, self.last + self.idle - now)
            for key, _mask in self.sel.select(timeout):
                kind = key.data
                if kind == "wake":
                    with contextlib.suppress(OSError):
                        self.wake_r.recv(64)
                    self.stopping = self.stopping or "stopped by a signal"
                elif kind == "accept":
                    self._accept()
                elif kind[0] == "exit":
                    self._reap(kind[1])
                elif kind[0] == "client":
                    self._client_gone(kind[1])

    def _accept(self) -> None:
        assert self.listener is not None
        try:
            conn, _addr = self.listener.accept()
        except OSError:
            return
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        peer_pid, peer_uid, _gid = struct.unpack("3i", creds)
        if peer_uid != os.geteuid():
            _log(f"refused a connection from uid {peer_uid} (pid {peer_pid}): not this user")
            conn.close()
            return
        conn.settimeout(5)
        fds: list[int] = []
        try:
            header, fds = _receive(conn)
            self._serve(conn, header, fds)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            _log(f"bad request: {exc}")
            conn.close()
        finally:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def _stale(self, environ: dict[str, str]) -> str:
        for name, value in self.start_env.items():
            if environ.get(name) != value:
                return f"${name}, read while the libraries were imported, differs"
        for path, seen in self.modules.items():
            try:
                st = os.stat(path)
            except OSError:
                return f"{path} is gone"
            if (st.st_size, st.st_mtime_ns, st.st_ino) != seen:
                return f"{path} changed since this resident worker loaded it"
        if _path_listings() != self.listings:
            return "a directory on sys.path changed (a module or library added or removed)"
        return ""

    def _serve(self, conn: socket.socket, header: dict[str, Any], fds: list[int]) -> None:
        stale = self._stale(header["environ"])
        if stale or self.stopping:
            self.stopping = self.stopping or stale
            conn.sendall(json.dumps({"error": self.stopping}).encode() + b"\n")
            conn.close()
            return
        self.last = time.monotonic()
        if isinstance(header.get("keep_warm"), int | float) and header["keep_warm"] > 0:
            self.idle = float(header["keep_warm"])  # the latest check's wish
        sys.stdout.flush()
        sys.stderr.flush()
        old = signal.pthread_sigmask(signal.SIG_BLOCK, _TERMINATING)
        try:
            pid = os.fork()
            if pid == 0:
                become_worker(  # never returns
                    header,
                    fds,
                    parent=self.pid,
                    arm=self.arm,
                    close_inherited=lambda: self._close_inherited(conn),
                )
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        child = _Child(pid, os.pidfd_open(pid), conn)
        self.children[pid] = child
        self.sel.register(child.pidfd, selectors.EVENT_READ, ("exit", pid))
        self.served += 1
        try:
            conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
        except OSError:
            self._client_gone(pid)
            return
        self.sel.register(conn, selectors.EVENT_READ, ("client", pid))
        _log(f"served check {self.served}: worker pid {pid} in {header['cwd']}")

    def _client_gone(self, pid: int) -> None:
        """The CLI closed the connection before its worker ended: it died; so does the worker."""
        child = self.children.get(pid)
        if child is None or child.conn is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(child.conn)
        child.conn.close()
        child.conn = None
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)  # unreaped, so the group id is still this child's
        _log(f"the check of worker pid {pid} went away; killed its process group")

    def _reap(self, pid: int) -> None:
        child = self.children.pop(pid)
        # Whatever the worker left in its group is killed now, while the unreaped leader still
        # holds the group id; the CLI would kill it anyway (kill_group) after the exit status.
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
        _pid, status = os.waitpid(pid, 0)
        self.sel.unregister(child.pidfd)
        os.close(child.pidfd)
        self.last = time.monotonic()
        if child.conn is not None:
            self.sel.unregister(child.conn)
            with contextlib.suppress(OSError):
                child.conn.sendall(
                    json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode() + b"\n"
                )
            child.conn.close()

    def _close_inherited(self, conn: socket.socket) -> None:
        """Close this process's descriptors through their objects, so none closes a reused fd."""
        self.sel.close()
        if self.listener is not None:
            self.listener.close()
        self.wake_r.close()
        self.wake_w.close()
        conn.close()
        for other in self.children.values():
            os.close(other.pidfd)
            if other.conn is not None:
                other.conn.close()


def _receive(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """The request: a length-prefixed JSON header, with stdin, stdout and the event pipe."""
    msg, fds, _flags, _addr = socket.recv_fds(conn, 1 << 16, 3)
    try:
        if len(fds) != 3 or len(msg) < 4:
            raise ValueError("expected a header and three descriptors")
        (length,) = struct.unpack("!I", msg[:4])
        data = msg[4:]
        while len(data) < length:
            chunk = conn.recv(length - len(data))
            if not chunk:
                raise ValueError("the header was cut short")
            data += chunk
        header = json.loads(data)
        if not isinstance(header, dict) or not isinstance(header.get("environ"), dict):
            raise ValueError("malformed header")
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return header, fds


def main(argv: list[str]) -> int:
    base, key, idle = Path(argv[0]), argv[1], float(argv[2])
    # Detached: the starter (a CLI's child) exits now and is reaped, so this process is nobody's
    # child to wait for, and in a session of its own no terminal's signals reach it.
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    return _Daemon(base, key, idle).run()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

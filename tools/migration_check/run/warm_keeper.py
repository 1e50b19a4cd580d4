"""The warm server's keeper seen from the CLI: its key, its lock, its start, its end.

The processes half of ``--keep-warm``'s server (run/warm_client.py has the checks' half): which
keeper (postgres/warm.py) serves this user and settings, the lock one check at a time holds,
starting a keeper and waiting for its server, signalling it, and ``--stop-warm``. Stdlib only.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from migration_check.caches.dirs import run_base_dir
from migration_check.errors import ServerError
from migration_check.postgres.server import sweep_orphans
from migration_check.postgres.warm import KEEPER_PREFIX, SPEC_VARIABLE, key_files
from migration_check.processes import exited, proc_start_time, terminate
from migration_check.run.resident_client import warm_dir
from migration_check.run.resources import RunResources

__all__ = [
    "SERVERS_DIR",
    "keeper_pid",
    "send_signal",
    "server_key",
    "start_keeper",
    "stop_keepers",
    "sweep_dead",
    "take_lock",
    "terminate",
]

# Beside the resident workers' directory, not in it: each kind of process sweeps its own.
SERVERS_DIR = "check-migrations-servers"

_START_TIMEOUT = 30.0
# What the server reads from its environment (time zone, locale, temporary files) and where
# its run directory and caches are: another of these is another server.
_SERVER_PREFIXES = ("LC_", "PG")
_SERVER_NAMES = ("LANG", "LANGUAGE", "TZ", "TMPDIR", "CHECK_MIGRATIONS_RUN_DIR",
                 "CHECK_MIGRATIONS_CACHE_DIR")  # fmt: skip


def server_key(resources: RunResources) -> str:
    """A hash of what a warm server's start depends on: the build, the users, the checker."""
    from migration_check.caches.verdict import checker_digest

    user = resources.server_user
    parts = [
        str(os.geteuid()),
        resources.pg_fingerprint,
        str(resources.binaries.bindir),
        f"{user.uid}:{user.gid}:{user.name}",
        str(run_base_dir()),
        checker_digest(),
        *(f"{k}={v}" for k, v in sorted(os.environ.items())
          if k.startswith(_SERVER_PREFIXES) or k in _SERVER_NAMES),
    ]  # fmt: skip
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:20]


def take_lock(path: Path) -> int | None:
    """The key's lock, or None when another check holds it (or it cannot be had)."""
    for _attempt in range(3):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # The keeper removes the file when it exits: a lock on a removed file locks nothing.
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return fd
        except OSError:
            os.close(fd)
            return None
        os.close(fd)
    return None


def send_signal(pid: int, sig: int) -> None:
    with contextlib.suppress(OSError):
        fd = os.pidfd_open(pid)
        try:
            signal.pidfd_send_signal(fd, sig)
        finally:
            os.close(fd)


def keeper_pid(files: dict[str, Path]) -> tuple[int, dict[str, Any]]:
    """The live keeper of these files and its state, or (0, {})."""
    try:
        state = json.loads(files["state"].read_text())
        pid = int(state["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0, {}
    if proc_start_time(pid) != state.get("start") or exited(pid):
        return 0, {}
    return pid, state


def sweep_dead(base: Path) -> None:
    """What SIGKILLed keepers left here (any key); their servers are swept with their run dirs."""
    for state in base.glob(f"{KEEPER_PREFIX}*.json"):
        files = key_files(base, state.name.removeprefix(KEEPER_PREFIX).split(".")[0])
        if keeper_pid(files)[0]:
            continue
        shutil.rmtree(files["templates"], ignore_errors=True)
        for name in ("state", "used", "log"):
            with contextlib.suppress(OSError):
                files[name].unlink()
    with contextlib.suppress(OSError, ServerError):
        sweep_orphans(run_base_dir())


def start_keeper(
    base: Path, key: str, resources: RunResources, keep_warm: float, template: Path | None
) -> dict[str, Any]:
    """Start this key's keeper and wait for its server; its state, or a ServerError."""
    files = key_files(base, key)
    shutil.rmtree(files["templates"], ignore_errors=True)
    files["templates"].mkdir(mode=0o700)
    user = resources.server_user
    spec = {
        "dir": str(base),
        "key": key,
        "keep_warm": keep_warm,
        "bindir": str(resources.binaries.bindir),
        "bundled": resources.binaries.bundled,
        "user": [user.uid, user.gid, user.name],
        "template": str(template) if template is not None else None,
    }
    ready_r, ready_w = os.pipe()
    try:
        spec["ready_fd"] = ready_w
        fd = os.open(files["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with open(fd, "ab") as log:
            starter = subprocess.Popen(
                [sys.executable, "-P", "-m", "migration_check.postgres.warm"],
                # Not in argv: a command line names no directory of this user's.
                env={**os.environ, SPEC_VARIABLE: json.dumps(spec)},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=base,
                pass_fds=[ready_w],
                start_new_session=True,
            )
        os.close(ready_w)
        ready_w = -1
        starter.wait(timeout=10)  # it forks the keeper and exits at once
        said = b""
        deadline = time.monotonic() + _START_TIMEOUT
        while b"\n" not in said:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([ready_r], [], [], left)[0]:
                raise ServerError("the warm server did not start in time")
            chunk = os.read(ready_r, 4096)
            if not chunk:
                raise ServerError("the warm server's keeper exited during its start")
            said += chunk
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServerError(f"could not start the warm server: {exc}") from exc
    finally:
        os.close(ready_r)
        if ready_w >= 0:
            os.close(ready_w)
    line = said.split(b"\n", 1)[0].decode(errors="replace")
    if line != "ready":
        raise ServerError(f"the warm server did not start: {line.removeprefix('error: ')}")
    pid, state = keeper_pid(files)
    if not pid:
        raise ServerError("the warm server's keeper left no state")
    return state


def stop_keepers(timeout: float = 10.0) -> int:
    """Stop every warm server of this user (``--stop-warm``); return how many were running."""
    base, _why = warm_dir(create=False, name=SERVERS_DIR)
    if base is None:
        return 0
    stopped = 0
    for state in sorted(base.glob(f"{KEEPER_PREFIX}*.json")):
        files = key_files(base, state.name.removeprefix(KEEPER_PREFIX).split(".")[0])
        pid, _state = keeper_pid(files)
        if pid:
            stopped += 1
            terminate(pid, signal.SIGTERM, timeout)
    sweep_dead(base)
    for lock in base.glob(f"{KEEPER_PREFIX}*.lock"):
        key = lock.name.removeprefix(KEEPER_PREFIX).split(".")[0]
        if not keeper_pid(key_files(base, key))[0]:
            with contextlib.suppress(OSError):
                lock.unlink()
    return stopped

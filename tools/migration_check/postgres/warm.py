"""The warm server's keeper (``--keep-warm``): one throwaway server kept up between checks.

Started detached by run/warm_client.py as ``python -P -m migration_check.postgres.warm`` (what
to start in ``CHECK_MIGRATIONS_KEEPER``, which the server does not inherit)
(stdlib and postgres/ only: no SQLAlchemy, no project code). It forks once (the starter exits at
once, so it is nobody's child), leads its own session and process group, starts a
``ThrowawayServer`` (from a copy of the initialised cluster or of a migrated-database entry's data
directory) and says ``ready`` on the pipe it was given. The run directory's owner file names the
keeper, so when it is SIGKILLed its server (which gets SIGQUIT as its parent-death signal) and
directory are swept by the next run, as a SIGKILLed check's are.

It then only waits: for its idle time to pass with no check using the server (a check holds
``s-<key>.lock`` while it runs, then writes its own ``--keep-warm`` to ``s-<key>.used``, the
latest one counts, and sends SIGUSR2), for SIGTERM (``--stop-warm``, or a check retiring it), for
SIGUSR1 (a check that keeps its data directory as a migrated-database entry: a shutdown with a
checkpoint, the directory left for that check), or for its server to die. Each ends the same
way: the server stopped, its run directory and this key's files removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import sys
import time
from pathlib import Path

from migration_check.postgres.binaries import PgBinaries, ServerUser
from migration_check.postgres.server import ThrowawayServer
from migration_check.processes import proc_start_time

__all__ = ["KEEPER_PREFIX", "SPEC_VARIABLE", "key_files", "main"]

KEEPER_PREFIX = "s-"
SPEC_VARIABLE = "CHECK_MIGRATIONS_KEEPER"
_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)


def key_files(base: Path, key: str) -> dict[str, Path]:
    """The files of one key's keeper in the warm directory (state, use, lock, log, templates)."""
    stem = base / f"{KEEPER_PREFIX}{key}"
    return {
        "state": stem.with_name(stem.name + ".json"),
        "used": stem.with_name(stem.name + ".used"),
        "lock": stem.with_name(stem.name + ".lock"),
        "log": stem.with_name(stem.name + ".log"),
        "templates": stem.with_name(stem.name + ".tpl"),
    }


def _log(message: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(f"{time.strftime('%H:%M:%S')} keeper[{os.getpid()}]: {message}\n")
        sys.stderr.flush()


def _last_use(used: Path, started: float, default: float) -> tuple[float, float]:
    """When a check last used the server, and the idle time that check asked for."""
    try:
        keep = float(used.read_text().strip() or default)
        return used.stat().st_mtime, keep
    except (OSError, ValueError):
        return started, default


def _idle_lock(lock: Path) -> int | None:
    """The lock, taken when no check holds it (then no check can start using the server)."""
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _remove_files(files: dict[str, Path], *, lock: bool) -> None:
    shutil.rmtree(files["templates"], ignore_errors=True)
    for name in ("state", "used", "log", *(("lock",) if lock else ())):
        with contextlib.suppress(OSError):
            files[name].unlink()


def _serve(server: ThrowawayServer, files: dict[str, Path], keep_warm: float) -> int:
    """Wait for the idle time, a signal or the server's end: the signal that ended it, 0 for the
    server's end, -1 for the idle time (then this process holds the lock until it exits)."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    for sig in _SIGNALS:
        signal.signal(sig, lambda *_args: None)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
    assert server.pid is not None
    pidfd = os.pidfd_open(server.pid)
    started = time.time()
    while True:
        last, keep = _last_use(files["used"], started, keep_warm)
        remaining = last + keep - time.time()
        if remaining <= 0:
            lock = _idle_lock(files["lock"])
            if lock is not None:
                _log(f"idle for {keep:g} s: stopping")
                return -1  # the lock dies with this process, after the files are gone
            remaining = min(keep, 1.0)  # a check holds it: look again when it may be over
        ready = select.select([wake_r, pidfd], [], [], remaining)[0]
        if pidfd in ready:
            _log("the server exited on its own")
            return 0
        if wake_r in ready:
            got = [sig for sig in os.read(wake_r, 64) if sig != signal.SIGUSR2]
            if got:  # SIGUSR2 only says a check ended: its idle time is read again above
                _log(f"signal {signal.Signals(got[-1]).name}")
                return got[-1]


def main() -> int:
    spec = json.loads(os.environ.pop(SPEC_VARIABLE))
    ready_fd = int(spec["ready_fd"])
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    # Held until the server is recorded: a SIGTERM during the start ends in the same teardown.
    signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    files = key_files(Path(spec["dir"]), spec["key"])
    server = ThrowawayServer(
        PgBinaries(Path(spec["bindir"]), bool(spec["bundled"])),
        ServerUser(*spec["user"]),
        use_cache=True,
        template=Path(spec["template"]) if spec.get("template") else None,
    )
    try:
        server.start()
    except Exception as exc:  # told to the check, which then runs its own throwaway server
        server.stop()
        with contextlib.suppress(OSError):
            os.write(ready_fd, f"error: {exc}\n".encode())
        return 1
    assert server.run_dir is not None
    state = {
        "pid": os.getpid(),
        "start": proc_start_time(os.getpid()),
        "run_dir": str(server.run_dir),
        "template_used": server.template_used,
    }
    staging = files["state"].with_name(files["state"].name + f".{os.getpid()}")
    staging.write_text(json.dumps(state))
    staging.rename(files["state"])
    os.write(ready_fd, b"ready\n")
    os.close(ready_fd)
    _log(f"ready: {server.run_dir}")
    sig = _serve(server, files, float(spec["keep_warm"]))
    if sig == signal.SIGUSR1:
        # A check keeps this cluster as a migrated-database entry: it now owns the directory.
        try:
            server.shutdown()
            (server.run_dir / "kept").write_text("")
        except Exception as exc:
            _log(f"could not shut down with a checkpoint: {exc}")
        else:
            server.run_dir = None
    server.stop()
    # The lock file goes only with the lock held: a check that holds it (retiring this
    # server, or about to start the next) keeps it.
    _remove_files(files, lock=sig == -1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The worker process seen from the CLI: its environment, its start, its events, its end."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import migration_check
from migration_check.caches.dirs import bound_pycache, cache_base_dir, cache_dir_path
from migration_check.errors import ConfigError, MigrationError, ServerError, WorkerError
from migration_check.postgres.server import PORT
from migration_check.processes import child_setup, kill_group, signals_held
from migration_check.protocol import (
    CacheStoreEvent,
    ErrorEvent,
    Event,
    ProgressEvent,
    ProtocolError,
    ResultEvent,
    WorkerRequest,
    decode_message,
    encode,
)
from migration_check.settings import Settings
from migration_check.urls import DbUrl, mask_passwords, parse_url

if TYPE_CHECKING:  # resident_client.py (sockets) is imported only when keep-warm is on
    from migration_check.run.resident_client import WarmChild

_DB_VARIABLES = ("DATABASE_URL", "PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD",
                 "PGSERVICE", "PGOPTIONS")  # fmt: skip

Progress = Callable[[str], None]

__all__ = ["Progress", "Worker", "run_worker", "spawn_worker", "worker_env", "worker_env_base"]


def worker_env_base(settings: Settings) -> dict[str, str]:
    """The worker's environment before the server exists; the request's ``environ`` completes it.

    The database variables are left out until then, so nothing can reach the user's database.
    """
    env = {k: v for k, v in os.environ.items() if k not in _DB_VARIABLES}
    package_root = str(Path(migration_check.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p
    )
    if (
        settings.use_cache
        and env.get("PYTHONDONTWRITEBYTECODE")
        and not env.get("PYTHONPYCACHEPREFIX")
    ):
        # Without bytecode the worker recompiles SQLAlchemy and Alembic on every check (about
        # 1.4 s of a 2 s run here); kept in the checker's cache, it leaves the project's tree
        # as untouched as PYTHONDONTWRITEBYTECODE asks.
        env.pop("PYTHONDONTWRITEBYTECODE")
        env["PYTHONPYCACHEPREFIX"] = str(cache_base_dir() / "pycache")
    return env


def worker_env(url: DbUrl, sync_url: DbUrl, settings: Settings) -> dict[str, str | None]:
    """The variables the worker sets on receiving the request (None: unset)."""
    env: dict[str, str | None] = {k: os.environ.get(k) for k in _DB_VARIABLES}
    env["DATABASE_URL"] = url.render(hide_password=False)
    # Libraries that read libpq's variables land on the scratch database too.
    env["PGHOST"] = url.socket_dir or url.host or "localhost"
    env["PGPORT"] = str(url.port or PORT)
    env["PGDATABASE"] = url.database or ""
    if url.username:
        env["PGUSER"] = url.username
    env["PGPASSWORD"] = url.password or None
    env["PGSERVICE"] = None
    options = env.get("PGOPTIONS") or ""
    env["PGOPTIONS"] = f"{options} -c lock_timeout={int(settings.lock_timeout * 1000)}".strip()
    return env


@dataclass
class Worker:
    proc: subprocess.Popen[bytes] | WarmChild
    read_fd: int
    log: IO[bytes]


@contextlib.contextmanager
def spawn_worker(env: dict[str, str], cwd: Path, settings: Settings) -> Iterator[Worker]:
    """Start the worker (it waits for its request on stdin); kill it if the run ends early."""
    read_fd, write_fd = os.pipe()
    env["CHECK_MIGRATIONS_EVENT_FD"] = str(write_fd)
    with tempfile.TemporaryFile() as log:
        # -v shows env.py's own output, which may print the URL it was handed: relay it
        # through the password mask rather than hand the worker our stderr.
        out: Any = subprocess.PIPE if settings.verbose else log
        proc: subprocess.Popen[bytes] | WarmChild | None = None
        relay: threading.Thread | None = None
        try:
            # Held until proc is set: an interrupt inside Popen must not leave a worker
            # that the teardown below does not know of.
            with signals_held():
                try:
                    if settings.keep_warm:  # a fork of the resident worker, or None
                        proc, relay = _spawn_warm(env, cwd, settings, log, write_fd)
                    proc = proc or subprocess.Popen(
                        # -P: the worker's sys.path is the project's, as under `alembic`.
                        [sys.executable, "-P", "-m", "migration_check.worker"],
                        stdin=subprocess.PIPE,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        pass_fds=(write_fd,),
                        env=env,
                        cwd=cwd,
                        start_new_session=True,
                        preexec_fn=child_setup(signal.SIGKILL),  # noqa: PLW1509
                    )
                finally:
                    os.close(write_fd)
                if proc.stdout is not None:
                    relay = _relay_masked(proc.stdout, settings)
            yield Worker(proc, read_fd, log)
            own = str(cache_dir_path() / "pycache")
            if env.get("PYTHONPYCACHEPREFIX") == own:  # ours, not a prefix the user chose
                bound_pycache(Path(own))
        finally:
            with signals_held():
                if proc is not None:
                    kill_group(proc)
                if relay is not None:
                    relay.join(timeout=5)
            if proc is not None and proc.stdin is not None:  # unwritten if the server failed
                with contextlib.suppress(OSError):
                    proc.stdin.close()
            os.close(read_fd)


_warned: set[str] = set()


def _spawn_warm(
    env: dict[str, str], cwd: Path, settings: Settings, log: IO[bytes], write_fd: int
) -> tuple[WarmChild | None, threading.Thread | None]:
    """A worker forked by the resident worker (``keep_warm``), or (None, None): spawn one.

    Keep-warm never fails a check: any problem is one -v line (a directory that is not ours:
    one warning) and the ordinary spawn.
    """
    from migration_check.run.resident_client import spawn_warm

    out_r, out_w = os.pipe() if settings.verbose else (-1, log.fileno())
    try:
        child, why = spawn_warm(env, cwd, settings.keep_warm, out_w, write_fd)
    except Exception as exc:  # a faster check was asked for, never a failing one
        child, why = None, f"the resident worker failed: {type(exc).__name__}: {exc}"
    finally:
        if settings.verbose:
            os.close(out_w)
    if why.startswith("unsafe: ") and why not in _warned:
        _warned.add(why)  # once per process, not once per config of a several-config run
        print(f"check-migrations: warning: keep-warm: {why[8:]}; running without the resident "
              "worker", file=sys.stderr)  # fmt: skip
    elif settings.verbose:
        print(f"check-migrations: keep-warm: {why}", file=sys.stderr)
    if child is None:
        if settings.verbose:
            os.close(out_r)
        return None, None
    relay = _relay_masked(os.fdopen(out_r, "rb"), settings) if settings.verbose else None
    return child, relay


def _relay_masked(stream: IO[bytes], settings: Settings) -> threading.Thread:
    """Copy the worker's output to stderr line by line, passwords masked (-v only)."""
    secret = ""
    if settings.database_url:
        with contextlib.suppress(ValueError):
            secret = parse_url(settings.database_url).password or ""

    def pump() -> None:
        with stream:
            for raw in stream:
                line = mask_passwords(raw.decode(errors="replace"), (secret,))
                with contextlib.suppress(OSError, ValueError):
                    sys.stderr.write(line)
                    sys.stderr.flush()

    thread = threading.Thread(target=pump, name="worker-output", daemon=True)
    thread.start()
    return thread


def run_worker(
    request: WorkerRequest,
    worker: Worker,
    settings: Settings,
    progress: Progress,
    hidden: tuple[str, ...],
) -> tuple[ResultEvent, dict[str, Any] | None]:
    """Send the worker its request, relay its progress, and return its result event and the
    migrated-database cache entry to keep (None: none), or raise."""
    proc, log = worker.proc, worker.log
    try:
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.write(encode(request).encode())
            proc.stdin.close()
        events = _read_events(worker.read_fd, settings.timeout, progress)
        proc.wait(timeout=10)
    except BaseException:
        with signals_held():
            kill_group(proc)
        raise
    final = next((e for e in reversed(events) if isinstance(e, ResultEvent | ErrorEvent)), None)
    if final is None:
        log.seek(0)
        tail = mask_passwords(log.read().decode(errors="replace")[-4000:], hidden)
        last = [ln for ln in tail.splitlines() if ln.strip()]
        raise WorkerError(
            f"the Alembic worker died (exit {proc.returncode}) before answering: "
            f"{last[-1] if last else 'no output'}",
            detail=tail,
        )
    if isinstance(final, ErrorEvent):
        raise _error_from_event(final, hidden)
    stored = [e.meta for e in events if isinstance(e, CacheStoreEvent) and e.meta]
    return final, stored[0] if stored else None


def _error_from_event(event: ErrorEvent, hidden: tuple[str, ...]) -> Exception:
    message = mask_passwords(event.message, hidden)
    detail = mask_passwords(event.detail, hidden)
    kind = event.kind
    if kind == "migration":
        return MigrationError(message, detail=detail)
    if kind == "server":
        return ServerError(message, detail=detail)
    if kind == "internal":
        return WorkerError(f"internal error: {message}", detail=detail)
    return ConfigError(message, detail=detail)


def _read_events(fd: int, timeout: float, progress: Progress) -> list[Event]:
    deadline = time.monotonic() + timeout
    events: list[Event] = []
    buf = b""
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerError(
                    f"the migrations did not finish within {timeout:.0f} s (a revision waiting "
                    "on a lock or looping?); raise --timeout or fix the revision"
                )
            if not sel.select(remaining):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return events
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                if not line.strip():
                    continue
                try:
                    event = decode_message(line)
                except ProtocolError as exc:  # the same checker wrote it: a bug to see
                    raise WorkerError(f"internal error: the worker's event: {exc}") from None
                if isinstance(event, ProgressEvent):
                    progress(event.message)
                events.append(event)

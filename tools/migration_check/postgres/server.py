"""A throwaway PostgreSQL server, private to one check.

The server listens only on a Unix socket in a 0700 directory (never TCP), trusts its one local
user, and runs with durability off: it lives for seconds and holds nothing worth keeping.

Costs on a 2-core machine: ``initdb`` is most of a cold start, so it runs once per PostgreSQL
build into a cache and every check starts from a copy of that directory, on tmpfs when there is
one. ``postgres`` is started directly (``pg_ctl`` adds about 0.1 s each way) and readiness is
read from ``postmaster.pid``. Teardown is an immediate shutdown and a directory removal.

Run as root (CI containers), the server runs as an existing unprivileged user (``nobody`` unless
told otherwise): PostgreSQL refuses to run as root, and no user is created or system changed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from migration_check.caches.dirs import (
    cache_base_dir,
    copy_tree,
    prune_clusters,
    run_base_dir,
    sweep_dead_staging,
)
from migration_check.errors import ServerError
from migration_check.postgres.binaries import (
    PgBinaries,
    ServerUser,
    can_traverse,
    find_binaries,
    initdb_has_set,
    resolve_server_user,
)
from migration_check.postgres.reach import reachable_bindir
from migration_check.processes import (
    child_setup,
    kill_group,
    proc_start_time,
    signals_held,
    staging_tag,
    sweep_orphans,
)

__all__ = [
    "PgBinaries",
    "ServerUser",
    "ThrowawayServer",
    "cache_base_dir",
    "child_setup",
    "find_binaries",
    "kill_group",
    "resolve_server_user",
    "run_base_dir",
    "signals_held",
    "sweep_orphans",
]

SUPERUSER = "check_migrations"
PORT = 5432
_LOG_TAIL_LINES = 15


class ThrowawayServer:
    """Start a private server; ``stop()`` (or the context manager) removes every trace.

    ``on_progress`` receives one-line progress messages (for stderr).
    """

    def __init__(
        self,
        binaries: PgBinaries,
        user: ServerUser,
        *,
        use_cache: bool = True,
        start_timeout: float = 30.0,
        on_progress: Callable[[str], None] = lambda _msg: None,
        template: Path | None = None,
    ) -> None:
        self.binaries = binaries
        self.user = user
        self.use_cache = use_cache
        # A stopped data directory to start from (a cached migrated cluster, see
        # caches/migrated.py).
        self.template = template
        self.template_used = False
        self.start_timeout = start_timeout
        self._progress = on_progress
        self.run_dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def socket_dir(self) -> str:
        assert self.run_dir is not None
        return str(self.run_dir)

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while it runs (the warm server's keeper waits on it)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def data_dir(self) -> Path:
        assert self.run_dir is not None
        return self.run_dir / "data"

    def __enter__(self) -> ThrowawayServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        base = run_base_dir()
        if not self.user.is_self and not can_traverse(base, self.user):
            raise ServerError(
                f"{base}: the server user {self.user.name!r} cannot enter it (a parent "
                "directory is private); set CHECK_MIGRATIONS_RUN_DIR to a directory it can reach"
            )
        sweep_orphans(base)
        run = base / f"run-{os.getpid()}-{secrets.token_hex(4)}"
        self.run_dir = run  # before mkdir: a signal in between must not orphan the directory
        run.mkdir(mode=0o700)
        (run / "owner").write_text(f"{os.getpid()} {proc_start_time(os.getpid())}\n")
        bindir = reachable_bindir(self.binaries, self.user)
        self._prepare_data(bindir)
        self._launch(bindir)

    def _as_user_kwargs(self) -> dict[str, object]:
        if self.user.is_self:
            return {}
        return {"user": self.user.uid, "group": self.user.gid, "extra_groups": []}

    def _initdb(self, bindir: Path, target: Path) -> None:
        if not self.user.is_self:
            os.chown(target.parent, self.user.uid, self.user.gid)
        cmd = [
            str(bindir / "initdb"),
            "-D", str(target),
            "-E", "UTF8",
            "--locale=C",
            "-U", SUPERUSER,
            "-A", "trust",
            "-N",
            "--wal-segsize=1",
        ]  # fmt: skip
        if initdb_has_set(bindir):
            # initdb's own backends otherwise put shared memory in /dev/shm, where it stays
            # when an interrupted check removes the directory under them (PostgreSQL 16+).
            cmd += ["-c", "dynamic_shared_memory_type=mmap"]
        proc: subprocess.Popen[str] | None = None
        try:
            with signals_held():
                proc = subprocess.Popen(
                    cmd,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    cwd=target.parent,
                    # Its own group: Ctrl-C reaches only the checker, which then stops initdb
                    # and the backend it runs as one, before removing the directory they
                    # write into.
                    start_new_session=True,
                    preexec_fn=child_setup(),  # noqa: PLW1509 - undoes signals_held
                    **self._as_user_kwargs(),  # type: ignore[call-overload]
                )
            output, _ = proc.communicate()
        except BaseException:
            if proc is not None:
                kill_group(proc)
            raise
        if proc.returncode != 0:
            tail = _tail(output)
            raise ServerError(
                f"initdb failed in {target.parent} (exit {proc.returncode}): "
                f"{_cause(tail)}; check free space and "
                "permissions there, or set CHECK_MIGRATIONS_RUN_DIR",
                detail=tail,
            )

    def _prepare_data(self, bindir: Path) -> None:
        assert self.run_dir is not None
        data = self.data_dir
        if not self.use_cache:
            self._progress("initialising a PostgreSQL cluster")
            self._initdb(bindir, data)
            return
        cache = cache_base_dir() / f"cluster-{self.binaries.fingerprint()}-{self.user.uid}"
        sweep_dead_staging(cache.parent)
        with contextlib.suppress(OSError):
            os.utime(cache)  # most recently used: prune_clusters keeps it
        if not (cache / "PG_VERSION").is_file():
            self._progress("initialising a PostgreSQL cluster (cached for later runs)")
            self._initdb(bindir, data)
            staging = cache.parent / f".tmp-{cache.name}-{staging_tag()}-{secrets.token_hex(4)}"
            copy_tree(data, staging)
            try:
                staging.rename(cache)
            except OSError:
                shutil.rmtree(staging, ignore_errors=True)
            prune_clusters(cache.parent)
            return
        if self.template is not None:
            try:
                copy_tree(self.template, data)
                self.template_used = True
            except ServerError:  # pruned by a concurrent run mid-copy: start from the cluster
                shutil.rmtree(data, ignore_errors=True)
        if not self.template_used:
            try:
                copy_tree(cache, data)
            except ServerError:  # removed by --clear-cache or a prune mid-copy
                shutil.rmtree(data, ignore_errors=True)
                self._progress("initialising a PostgreSQL cluster")
                self._initdb(bindir, data)
        if not self.user.is_self:
            os.chown(self.run_dir, self.user.uid, self.user.gid)
        os.chmod(data, 0o700)

    def _launch(self, bindir: Path) -> None:
        assert self.run_dir is not None
        if not self.user.is_self:
            os.chown(self.run_dir, self.user.uid, self.user.gid)
        log = open(self.run_dir / "server.log", "wb")  # noqa: SIM115 - owned by the child
        settings = {
            "listen_addresses": "",
            "unix_socket_directories": str(self.run_dir),
            "unix_socket_permissions": "0700",
            "port": str(PORT),
            "fsync": "off",
            "full_page_writes": "off",
            "synchronous_commit": "off",
            "wal_level": "minimal",
            "max_wal_senders": "0",
            "autovacuum": "off",
            "jit": "off",
            "max_connections": "20",
            # The lock table is sized by max_connections: with 20, one revision creating about
            # 80 tables failed with "out of shared memory" (bench/, 800 tables in 10 revisions).
            "max_locks_per_transaction": "1024",
            "shared_buffers": "32MB",
            "logging_collector": "off",
            # posix segments live in /dev/shm as PostgreSQL.<n> and outlive a server stopped
            # by SIGQUIT or a SIGKILLed checker; mmap keeps them in the data directory,
            # which teardown and the orphan sweep remove.
            "dynamic_shared_memory_type": "mmap",
        }
        cmd = [str(bindir / "postgres"), "-D", str(self.data_dir)]
        for key, value in settings.items():
            cmd += ["-c", f"{key}={value}"]
        try:
            # Held until self._proc is set, so stop() always knows the server it must stop.
            with signals_held():
                self._proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # Ctrl-C reaches the checker, which stops the server
                    preexec_fn=child_setup(signal.SIGQUIT),  # noqa: PLW1509 - prctl needs it
                    **self._as_user_kwargs(),  # type: ignore[call-overload]
                )
        finally:
            log.close()
        self._wait_ready()

    def _wait_ready(self) -> None:
        assert self._proc is not None
        pid_file = self.data_dir / "postmaster.pid"
        deadline = time.monotonic() + self.start_timeout
        delay = 0.002
        while True:
            if self._proc.poll() is not None:
                raise ServerError(
                    f"PostgreSQL exited during start-up (exit {self._proc.returncode}): "
                    f"{_cause(self.log_tail())}; run with -v to see the server's log",
                    detail=self.log_tail(),
                )
            with contextlib.suppress(OSError):
                lines = pid_file.read_text().splitlines()
                if len(lines) >= 8 and lines[7].strip() == "ready":
                    return
            if time.monotonic() > deadline:
                raise ServerError(
                    f"PostgreSQL did not start within {self.start_timeout:.0f} s: "
                    f"{self._log_last_line()}",
                    detail=self.log_tail(),
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.05)

    def log_tail(self) -> str:
        if self.run_dir is None:
            return ""
        try:
            return _tail((self.run_dir / "server.log").read_text(errors="replace"))
        except OSError:
            return ""

    def _log_last_line(self) -> str:
        lines = [ln for ln in self.log_tail().splitlines() if ln.strip()]
        return lines[-1] if lines else "no log output"

    def admin_conninfo(self) -> dict[str, object]:
        return {"host": self.socket_dir, "port": PORT, "user": SUPERUSER, "dbname": "postgres"}

    def shutdown(self) -> None:
        """Fast shutdown (a checkpoint) that keeps the data directory, so it can be copied whole.

        ``stop()`` still removes the directory afterwards.
        """
        proc = self._proc
        if proc is None or proc.poll() is not None:
            raise ServerError("the server is not running")
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise ServerError("the server did not shut down within 30 s") from None
        if proc.returncode != 0:
            raise ServerError(f"the server's shutdown failed (exit {proc.returncode})")

    def stop(self) -> None:
        """Immediate shutdown and directory removal; safe to call twice or after a failure."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.send_signal(signal.SIGQUIT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        run, self.run_dir = self.run_dir, None
        if run is not None:
            shutil.rmtree(run, ignore_errors=True)


def _cause(tail: str) -> str:
    """The line that says why: initdb ends with "removing data directory", not the cause."""
    lines = [ln.strip() for ln in tail.splitlines() if ln.strip()]
    for line in lines:
        if "error:" in line or "FATAL" in line:
            return line
    return lines[-1] if lines else "no output"


def _tail(text: str) -> str:
    return "\n".join(text.rstrip().splitlines()[-_LOG_TAIL_LINES:])


@contextlib.contextmanager
def throwaway_server(
    binaries: PgBinaries, user: ServerUser, **kwargs: object
) -> Iterator[ThrowawayServer]:
    with ThrowawayServer(binaries, user, **kwargs) as server:  # type: ignore[arg-type]
        yield server

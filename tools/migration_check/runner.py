"""The check's pipeline in the CLI process: load, provision, run the worker, tear down.

This process imports no SQLAlchemy or Alembic (the worker does): it owns the server, the
signals and the clock, so it can always clean up, whatever env.py does.
"""

from __future__ import annotations

import configparser
import contextlib
import io
import json
import os
import secrets
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
from typing import IO, Any

import migration_check
from migration_check.cache import CachePlan, choose_entry, scope_key
from migration_check.config import Settings
from migration_check.errors import ConfigError, MigrationError, ServerError, WorkerError
from migration_check.findings import CheckResult, Finding
from migration_check.gitcheck import untracked_revision_findings
from migration_check.server import (
    PORT,
    SUPERUSER,
    ThrowawayServer,
    cache_base_dir,
    child_setup,
    find_binaries,
    kill_group,
    resolve_server_user,
    signals_held,
)
from migration_check.urls import DbUrl, mask_passwords, parse_url

__all__ = ["run_check"]

Progress = Callable[[str], None]
_DEFAULT_DRIVER = "postgresql+psycopg"
_SYNC_FALLBACK = {"asyncpg": "psycopg", "psycopg_async": "psycopg", "pg8000": "pg8000"}


def run_check(settings: Settings, progress: Progress = lambda _m: None) -> CheckResult:
    """Answer "would autogenerate produce a non-empty revision?" for one Alembic config.

    Raises a ``CheckError`` subclass when the question cannot be answered.
    """
    ini = _preflight(settings)
    project_dir = ini.parent
    drivername = _project_drivername(settings, ini)
    database = f"check_migrations_{secrets.token_hex(6)}"
    plan = _cache_plan(settings, ini)
    # Started first: the worker imports SQLAlchemy and Alembic (0.4 s, more without bytecode)
    # while this process starts the server; it then waits for the request on stdin.
    with (
        _spawn_worker(_worker_env_base(settings), project_dir, settings) as worker,
        _provision(settings, database, progress, plan) as (target, admin, label, secrets_),
    ):
        if plan is not None and plan.entry is not None:
            database = plan.entry.database  # the copied cluster holds it, migrated
        url = target.with_database(database, drivername=drivername)
        sync_url = url.with_database(database, drivername=_sync_driver(drivername))
        request = {
            "config": str(ini),
            "name": settings.name,
            "x_args": list(settings.x_args),
            "url": url.render(hide_password=False),
            "sync_url": sync_url.render(hide_password=False),
            "database": database,
            # In --database-url mode the CLI creates it, so it knows whether to drop it.
            "create_database": not settings.database_url and (plan is None or plan.entry is None),
            "cache": plan.request() if plan is not None else None,
            "admin_conninfo": admin,
            "connect_timeout": int(settings.connect_timeout),
            "server_label": label,
            "allowed": {
                "host": target.socket_dir or target.host or "localhost",
                "port": target.port or PORT,
                "database": database,
            },
        }
        request["environ"] = _worker_env(url, sync_url, settings)
        event = _run_worker(request, worker, settings, progress, secrets_)
        if plan is not None:
            plan.store = event.get("cache_store")
    version_dirs = list(event.get("version_dirs", []))
    return CheckResult(
        findings=sorted(
            [
                *(Finding.from_dict(f) for f in event["findings"]),
                *untracked_revision_findings(version_dirs),
            ],
            key=Finding.sort_key,
        ),
        revisions_applied=int(event.get("revisions_applied", 0)),
        heads=list(event.get("heads", [])),
        version_dirs=version_dirs,
        config_file=_display_path(ini),
        revision_command=revision_command(settings, ini),
    )


def _cache_plan(settings: Settings, ini: Path) -> CachePlan | None:
    """The migrated-database cache (cache.py) serves the throwaway server only."""
    if settings.database_url or not settings.use_cache:
        return None
    binaries = find_binaries(settings.postgres_bin)
    user = resolve_server_user(settings.server_user)
    fingerprint = binaries.fingerprint()
    scope = scope_key(pg_fingerprint=fingerprint, uid=user.uid, ini=ini, name=settings.name)
    return CachePlan(scope, fingerprint, choose_entry(scope, ini))


def _display_path(path: Path) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel


def revision_command(settings: Settings, ini: Path) -> str:
    """The command that generates the missing revision, as the user would type it."""
    parts = []
    if any((d / "uv.lock").is_file() for d in [ini.parent, *ini.parent.parents][:3]):
        parts.append("uv run")
    parts.append("alembic")
    if _display_path(ini) != "alembic.ini":
        parts.append(f"-c {_display_path(ini)}")
    if settings.name != "alembic":
        parts.append(f"-n {settings.name}")
    parts.append('revision --autogenerate -m "describe the change"')
    return " ".join(parts)


def _preflight(settings: Settings) -> Path:
    """Fail on bad configuration before paying for a server."""
    ini = Path(settings.config)
    if not ini.is_file():
        raise ConfigError(
            f"{settings.config}: no such file; run from the project root or pass --config "
            "path/to/alembic.ini"
        )
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(ini, encoding="utf-8")
    except configparser.Error as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"{settings.config}: not a valid ini file ({first})") from exc
    if not parser.has_section(settings.name):
        sections = (
            ", ".join(
                s
                for s in parser.sections()
                if not s.startswith(("logger", "handler", "formatter", "post_write"))
            )
            or "none"
        )
        raise ConfigError(
            f"{settings.config}: no [{settings.name}] section (sections: {sections}); "
            "pass the right one with --name"
        )
    return ini.resolve()


def _project_drivername(settings: Settings, ini: Path) -> str:
    """The dialect+driver the project uses, so env.py gets a URL its engine accepts."""
    candidates: list[str] = []
    if os.environ.get("DATABASE_URL"):
        candidates.append(os.environ["DATABASE_URL"])
    env_file = ini.parent / ".env"
    if env_file.is_file():
        value = _dotenv_database_url(env_file)
        if value:
            candidates.append(value)
    parser = configparser.RawConfigParser()
    with contextlib.suppress(configparser.Error, OSError):
        parser.read(ini, encoding="utf-8")
        if parser.has_option(settings.name, "sqlalchemy.url"):
            candidates.append(parser.get(settings.name, "sqlalchemy.url"))
    for raw in candidates:
        scheme = raw.split("://", 1)[0].strip() if "://" in raw else ""
        if scheme in ("postgresql", "postgres"):
            return "postgresql"
        if scheme.startswith("postgresql+"):
            return scheme
    return _DEFAULT_DRIVER


def _dotenv_database_url(env_file: Path) -> str | None:
    """DATABASE_URL from .env; a line python-dotenv cannot parse is an error, not a guess.

    python-dotenv only logs a warning and skips the line, so env.py would run with a setting
    silently missing. The line's text is not shown: it may hold a password.
    """
    from dotenv.parser import parse_stream

    try:
        text = env_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{_display_path(env_file)}: cannot read it ({exc})") from exc
    value = None
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            raise ConfigError(
                f"{_display_path(env_file)}:{binding.original.line}: python-dotenv cannot parse "
                "this line; write it as KEY=VALUE (quote values with spaces) or comment it out "
                "with #"
            )
        if binding.key == "DATABASE_URL":
            value = binding.value
    return value


def _sync_driver(drivername: str) -> str:
    driver = drivername.split("+", 1)[1] if "+" in drivername else "psycopg2"
    if driver in _SYNC_FALLBACK:
        return f"postgresql+{_SYNC_FALLBACK[driver]}"
    return drivername


@contextlib.contextmanager
def _provision(
    settings: Settings, database: str, progress: Progress, plan: CachePlan | None = None
) -> Iterator[tuple[DbUrl, dict[str, Any], str, tuple[str, ...]]]:
    """Yield (server URL, admin conninfo, label, secrets); drop or delete it all afterwards."""
    if settings.database_url:
        try:
            target = parse_url(settings.database_url)
        except ValueError as exc:
            raise ConfigError(f"--database-url: {exc}") from exc
        label = target.label()
        admin = target.conninfo()
        admin.setdefault("dbname", "postgres")
        hidden = (target.password,) if target.password else ()
        reached: list[bool] = []
        try:
            _create_database(admin, database, settings, label, reached)
            yield target, admin, label, hidden
        finally:
            # Only a server we reached can hold the scratch database: never wait a second
            # connect timeout on an unreachable one just to drop nothing.
            if reached:
                with signals_held():
                    _drop_database(admin, database, settings, hidden)
        return
    binaries = find_binaries(settings.postgres_bin)
    user = resolve_server_user(settings.server_user)
    progress("starting a throwaway PostgreSQL")
    server = ThrowawayServer(
        binaries, user, use_cache=settings.use_cache, on_progress=progress,
        template=plan.entry.data if plan is not None and plan.entry is not None else None,
    )  # fmt: skip
    try:
        server.start()
        if plan is not None and not server.template_used:
            plan.entry = None
        target = DbUrl(
            _DEFAULT_DRIVER, SUPERUSER, None, None, PORT, "postgres",
            (("host", server.socket_dir),),
        )  # fmt: skip
        yield target, dict(server.admin_conninfo()), "the throwaway server", ()
    finally:
        with signals_held():
            if plan is not None:
                plan.save(server, progress)
            server.stop()


def _create_database(
    admin: dict[str, Any], database: str, settings: Settings, label: str, reached: list[bool]
) -> None:
    """Create the scratch database; ``reached`` gets an entry once the server answered.

    The entry is added before CREATE DATABASE is sent, so an interrupt between the statement
    and its reply still leads to the drop.
    """
    import psycopg
    from psycopg import sql

    try:
        with psycopg.connect(
            **admin, autocommit=True, connect_timeout=int(settings.connect_timeout)
        ) as conn:
            reached.append(True)
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    except psycopg.errors.InsufficientPrivilege as exc:
        raise ServerError(
            f"{label}: the role may not create databases ({_first_line(exc)}); grant it "
            "CREATEDB (ALTER ROLE ... CREATEDB) or pass a role that has it"
        ) from exc
    except psycopg.Error as exc:
        if not reached:
            raise ServerError(
                f"cannot connect to {label}: {_first_line(exc)}"
                + (
                    f" (gave up after {settings.connect_timeout:.0f} s)"
                    if "timeout" in str(exc)
                    else ""
                )
                + "; check the host, port, user and password of --database-url"
            ) from exc
        raise ServerError(
            f"{label}: cannot create the scratch database {database}: {_first_line(exc)}"
        ) from exc


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


def _drop_database(
    admin: dict[str, Any], database: str, settings: Settings, hidden: tuple[str, ...]
) -> None:
    import psycopg
    from psycopg import sql

    try:
        with psycopg.connect(
            **admin, autocommit=True, connect_timeout=int(settings.connect_timeout)
        ) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )
    except psycopg.Error as exc:
        msg = mask_passwords(str(exc).strip().splitlines()[0] if str(exc) else "", hidden)
        print(
            f"check-migrations: warning: could not drop scratch database {database}: {msg}",
            file=sys.stderr,
        )


_DB_VARIABLES = ("DATABASE_URL", "PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD",
                 "PGSERVICE", "PGOPTIONS")  # fmt: skip


def _worker_env_base(settings: Settings) -> dict[str, str]:
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


def _worker_env(url: DbUrl, sync_url: DbUrl, settings: Settings) -> dict[str, str | None]:
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
class _Worker:
    proc: subprocess.Popen[bytes]
    read_fd: int
    log: IO[bytes]


@contextlib.contextmanager
def _spawn_worker(env: dict[str, str], cwd: Path, settings: Settings) -> Iterator[_Worker]:
    """Start the worker (it waits for its request on stdin); kill it if the run ends early."""
    read_fd, write_fd = os.pipe()
    env["CHECK_MIGRATIONS_EVENT_FD"] = str(write_fd)
    with tempfile.TemporaryFile() as log:
        # -v shows env.py's own output, which may print the URL it was handed: relay it
        # through the password mask rather than hand the worker our stderr.
        out: Any = subprocess.PIPE if settings.verbose else log
        proc: subprocess.Popen[bytes] | None = None
        relay: threading.Thread | None = None
        try:
            # Held until proc is set: an interrupt inside Popen must not leave a worker
            # that the teardown below does not know of.
            with signals_held():
                try:
                    proc = subprocess.Popen(
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
            yield _Worker(proc, read_fd, log)
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


def _run_worker(
    request: dict[str, Any],
    worker: _Worker,
    settings: Settings,
    progress: Progress,
    hidden: tuple[str, ...],
) -> dict[str, Any]:
    """Send the worker its request, relay its progress, and return its result event (or raise)."""
    proc, log = worker.proc, worker.log
    try:
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.write(json.dumps(request).encode())
            proc.stdin.close()
        events = _read_events(worker.read_fd, settings.timeout, progress)
        proc.wait(timeout=10)
    except BaseException:
        with signals_held():
            kill_group(proc)
        raise
    final = next((e for e in reversed(events) if e["type"] in ("result", "error")), None)
    if final is None:
        log.seek(0)
        tail = mask_passwords(log.read().decode(errors="replace")[-4000:], hidden)
        last = [ln for ln in tail.splitlines() if ln.strip()]
        raise WorkerError(
            f"the Alembic worker died (exit {proc.returncode}) before answering: "
            f"{last[-1] if last else 'no output'}",
            detail=tail,
        )
    if final["type"] == "error":
        raise _error_from_event(final, hidden)
    stored = [e["meta"] for e in events if e["type"] == "cache_store" and e.get("meta")]
    return {**final, "cache_store": stored[0]} if stored else final


def _error_from_event(event: dict[str, Any], hidden: tuple[str, ...]) -> Exception:
    message = mask_passwords(event["message"], hidden)
    detail = mask_passwords(event.get("detail", ""), hidden)
    kind = event.get("kind")
    if kind == "migration":
        return MigrationError(message, detail=detail)
    if kind == "server":
        return ServerError(message, detail=detail)
    if kind == "internal":
        return WorkerError(f"internal error: {message}", detail=detail)
    return ConfigError(message, detail=detail)


def _read_events(fd: int, timeout: float, progress: Progress) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    events: list[dict[str, Any]] = []
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
                event = json.loads(line)
                if event["type"] == "progress":
                    progress(event["message"])
                events.append(event)

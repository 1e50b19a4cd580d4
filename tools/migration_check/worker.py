"""The Alembic half of a check, run in a child process of the CLI.

Why a separate process: env.py and the models are the project's code. They may call
``fileConfig()`` (silencing loggers), cache modules under names another project reuses, start
event loops, or hang on a lock. A fresh interpreter per check keeps each run's imports apart,
and the parent can always kill it and still tear the server down.

Protocol: the request arrives as JSON on stdin; events leave as JSON lines on the file
descriptor named by ``CHECK_MIGRATIONS_EVENT_FD``: ``progress``, then exactly one of
``result`` or ``error``. stdout and stderr belong to env.py and Alembic's logging.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

from migration_check.findings import CheckResult, Finding
from migration_check.urls import describe_target

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy.engine import Connection

    from migration_check.cache import WorkerCache

__all__ = ["main"]

Emit = Callable[[dict[str, Any]], None]


class _Failure(Exception):
    """A failure to report as ``{"type": "error", "kind": ..., "message": ...}``."""

    def __init__(self, kind: str, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.detail = detail


class _ForeignConnection(Exception):  # raised into env.py's code: named for its reader
    pass


_refused: list[str] = []


def _install_guard(allowed: dict[str, Any]) -> None:
    """Refuse, before any SQL runs, every connection that is not to the scratch database.

    env.py files build their own URLs from settings or .env; without this guard a check could
    migrate a developer's real database. Two layers: SQLAlchemy's ``do_connect`` event sees every
    engine whatever the dialect (SQLite included), and wrappers around the PostgreSQL drivers'
    own ``connect`` functions see raw connections env.py opens outside SQLAlchemy.
    """
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    want_host = os.path.normpath(str(allowed["host"]))
    want_port = int(allowed["port"])
    want_db = str(allowed["database"])

    def check(dialect: str, host: Any, port: Any, database: Any, cargs: Any = ()) -> None:
        host_s = str(host or "")
        try:
            port_i = int(port or 5432)
        except (TypeError, ValueError):  # a list of ports: several servers, never only ours
            port_i = -1
        if host_s.endswith(f"/.s.PGSQL.{port_i}"):
            host_s = host_s.rsplit("/", 1)[0]
        ok = (
            dialect == "postgresql"
            and bool(host_s)
            and os.path.normpath(host_s) == want_host
            and port_i == want_port
            and str(database or "") == want_db
        )
        if not ok:
            target = describe_target(dialect, host_s, port_i, str(database or ""), cargs)
            _refused.append(target)
            raise _ForeignConnection(
                f"refused a connection to {target}: env.py must connect to the database the "
                "checker hands it (config.attributes['connection'], sqlalchemy.url or "
                "DATABASE_URL), never to one it builds itself"
            )

    def guard(dialect: Any, conn_rec: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        host = cparams.get("host") or cparams.get("unix_sock") or ""
        database = cparams.get("dbname") or cparams.get("database") or ""
        if dialect.name == "postgresql":
            # libpq and asyncpg fill what the URL leaves out from PG* variables (the runner
            # points them at the scratch database).
            host = host or os.environ.get("PGHOST", "")
            database = database or os.environ.get("PGDATABASE", "")
        check(dialect.name, host, cparams.get("port") or os.environ.get("PGPORT"), database, cargs)

    event.listen(Engine, "do_connect", guard)
    _guard_psycopg(check)
    _guard_psycopg2(check)
    _guard_asyncpg(check)


_Check = Callable[..., None]


def _libpq_target(params: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(host, port, dbname) as libpq resolves them: explicit values, then PG* variables."""
    if params.get("service"):
        # A pg_service.conf entry can name any server; refuse rather than resolve it.
        return "service=" + str(params["service"]), params.get("port"), params.get("dbname")
    host = params.get("hostaddr") or params.get("host") or os.environ.get("PGHOST", "")
    port = params.get("port") or os.environ.get("PGPORT")
    dbname = params.get("dbname") or params.get("database") or os.environ.get("PGDATABASE", "")
    return host, port, dbname


def _guard_psycopg(check: _Check) -> None:
    try:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        return
    sync_connect = psycopg.Connection.connect.__func__  # type: ignore[attr-defined]
    async_connect = psycopg.AsyncConnection.connect.__func__  # type: ignore[attr-defined]

    def guarded(cls: Any, /, conninfo: str = "", **kwargs: Any) -> Any:
        check("postgresql", *_libpq_target(conninfo_to_dict(conninfo, **kwargs)))
        return sync_connect(cls, conninfo, **kwargs)

    async def guarded_async(cls: Any, /, conninfo: str = "", **kwargs: Any) -> Any:
        check("postgresql", *_libpq_target(conninfo_to_dict(conninfo, **kwargs)))
        return await async_connect(cls, conninfo, **kwargs)

    psycopg.Connection.connect = classmethod(guarded)  # type: ignore[assignment,method-assign]
    psycopg.AsyncConnection.connect = classmethod(  # type: ignore[assignment,method-assign]
        guarded_async
    )
    # psycopg.connect is a bound method captured when psycopg was imported.
    psycopg.connect = psycopg.Connection.connect


def _guard_psycopg2(check: _Check) -> None:
    try:
        import psycopg2  # type: ignore[import-untyped]
        import psycopg2.extensions  # type: ignore[import-untyped]
    except ImportError:
        return
    original = psycopg2.connect

    def guarded(dsn: str | None = None, *args: Any, **kwargs: Any) -> Any:
        params = dict(psycopg2.extensions.parse_dsn(dsn)) if dsn else {}
        params.update({k: v for k, v in kwargs.items() if v is not None})
        check("postgresql", *_libpq_target(params))
        return original(dsn, *args, **kwargs)

    psycopg2.connect = guarded


def _guard_asyncpg(check: _Check) -> None:
    try:
        import asyncpg  # type: ignore[import-untyped]
        import asyncpg.connection  # type: ignore[import-untyped]
    except ImportError:
        return
    from migration_check.urls import parse_url

    original = asyncpg.connection.connect

    async def guarded(dsn: str | None = None, **kwargs: Any) -> Any:
        host, port, database = kwargs.get("host"), kwargs.get("port"), kwargs.get("database")
        if dsn:
            parsed = parse_url(dsn)
            host = host or parsed.socket_dir or parsed.host
            port = port or parsed.port
            database = database or parsed.database
        check(
            "postgresql",
            host or os.environ.get("PGHOST", ""),
            port or os.environ.get("PGPORT"),
            database or os.environ.get("PGDATABASE", ""),
        )
        return await original(dsn, **kwargs)

    # The pool looks asyncpg.connection.connect up at call time; the package re-exports it.
    asyncpg.connection.connect = guarded
    asyncpg.connect = guarded


def _config(req: dict[str, Any], url: str) -> Config:
    from alembic.config import Config

    cmd_opts = argparse.Namespace(
        x=list(req.get("x_args") or []) or None,
        autogenerate=True,
        config=req["config"],
        name=req["name"],
        raiseerr=True,
    )
    cfg = Config(req["config"], ini_section=req["name"], cmd_opts=cmd_opts)
    if not cfg.file_config.has_section(req["name"]):
        raise _Failure(
            "config",
            f"{req['config']}: no [{req['name']}] section; pass the section holding "
            "script_location with --name",
        )
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@contextmanager
def _handed_connection(cfg: Config, url: str) -> Iterator[Connection]:
    """A connection for env.py's ``config.attributes["connection"]``, committed on success."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            try:
                yield conn
            finally:
                cfg.attributes.pop("connection", None)
    finally:
        engine.dispose()


def _script_error(exc: BaseException, script: ScriptDirectory | None = None) -> _Failure:
    """Name the revision file behind a broken graph; Alembic names only revision ids."""
    from alembic.script.revision import CycleDetected

    detail = "".join(traceback.format_exception(exc))
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f"{os.path.relpath(exc.filename)}:{exc.lineno}"
        return _Failure("config", f"{where}: SyntaxError: {exc.msg}", detail=detail)
    files = _revision_files(script) if script is not None else {}
    for rev, (path, downs) in sorted(files.items()):
        missing = [d for d in downs if d not in files]
        if missing:
            return _Failure(
                "config",
                f"{path}: revision {rev} has down_revision {missing[0]!r}, which no revision "
                "file defines; fix down_revision (or restore the missing revision file)",
                detail=detail,
            )
    if isinstance(exc, CycleDetected):
        named = ", ".join(
            f"{rev} ({files[rev][0]})" if rev in files else rev for rev in exc.revisions
        )
        return _Failure(
            "config",
            f"revision graph: the down_revisions of {named} form a cycle; fix the "
            "down_revision that points back to a later revision",
            detail=detail,
        )
    return _Failure(
        "config", f"revision graph: {_one_line(exc)}; fix the down_revision it names", detail=detail
    )


def _revision_files(script: ScriptDirectory) -> dict[str, tuple[str, tuple[str, ...]]]:
    """revision id -> (file, down revisions), read without building Alembic's revision map.

    Alembic builds its map in one go and fails with a bare KeyError on a missing
    down_revision, so the culprit has to be found from the files themselves.
    """
    from alembic.util import to_tuple

    found: dict[str, tuple[str, tuple[str, ...]]] = {}
    try:
        for rev in script._load_revisions():
            found[rev.revision] = (os.path.relpath(rev.path), to_tuple(rev.down_revision, ()))
    except Exception:  # the caller's error stands on its own; this only adds a file name
        return {}
    return found


def _upgrade(cfg: Config, script: ScriptDirectory, url: str, emit: Emit) -> tuple[int, list[str]]:
    """Upgrade the empty scratch database to head through env.py; return (applied, heads)."""

    state: dict[str, Any] = {"called": False, "current": None, "applied": 0, "heads": []}

    def upgrade_fn(rev: Any, context: MigrationContext) -> Any:
        state["called"] = True
        # The map is read here, after env.py ran: it may set version_locations itself.
        try:
            heads = list(script.get_heads())
        except Exception as exc:  # Alembic raises KeyError for a missing down_revision
            raise _script_error(exc, script) from exc
        state["heads"] = heads
        state["version_table"] = (context.version_table, context.version_table_schema)
        if len(heads) > 1:
            return []
        steps = script._upgrade_revs("head", rev)
        emit({"type": "progress", "message": f"upgrading {len(steps)} revision(s) to head"})
        for step in steps:
            step.migration_fn = _tracked(step, step.migration_fn, state)
        return steps

    _run_env(
        cfg,
        script,
        url,
        state,
        phase="upgrade",
        fn=upgrade_fn,
        starting_rev=None,
        destination_rev="head",
        tag=None,
    )
    _verify_reached_head(url, state, script)
    return int(state["applied"]), list(state["heads"])


def _run_env(
    cfg: Config,
    script: ScriptDirectory,
    url: str,
    state: dict[str, Any],
    *,
    phase: str,
    **context_kw: Any,
) -> None:
    """Run env.py once with ``context_kw`` (as an Alembic command would), naming any failure.

    ``state["called"]`` is set by the phase's ``fn``: env.py that never reaches
    ``run_migrations()`` would otherwise look like a successful no-op.
    """
    from alembic.runtime.environment import EnvironmentContext

    try:
        with (
            _handed_connection(cfg, url),
            EnvironmentContext(cfg, script, as_sql=False, **context_kw),
        ):
            script.run_env()
    except _Failure:
        raise
    except BaseException as exc:
        raise _classify(exc, state, script, phase=phase) from exc
    if not state["called"]:
        raise _Failure(
            "config",
            f"{_env_py(script)}: env.py never called context.run_migrations(); "
            "call it in online mode (see Alembic's env.py template)",
        )


def _verify_reached_head(url: str, state: dict[str, Any], script: ScriptDirectory) -> None:
    """The scratch database's version table must now hold head, or env.py migrated elsewhere.

    The guard stops connections to other servers; this catches the rest: an env.py that
    never commits, runs offline, or migrates nothing while still calling run_migrations().
    """
    from sqlalchemy import column, create_engine, select, table
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.pool import NullPool

    heads = list(state["heads"])
    if len(heads) != 1 or "version_table" not in state:
        return
    name, schema = state["version_table"]
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            versions = table(name, column("version_num"), schema=schema)
            found = sorted(str(v) for v in conn.execute(select(versions.c.version_num)).scalars())
    except DBAPIError:
        found = []
    finally:
        engine.dispose()
    if found != heads:
        where = f"{schema}.{name}" if schema else name
        raise _Failure(
            "config",
            f"{_env_py(script)}: after the upgrade the scratch database's {where} holds "
            f"{', '.join(found) or 'nothing'}, not head {heads[0]}: env.py did not migrate the "
            "database the checker handed it; make it use config.attributes['connection'], "
            "sqlalchemy.url or DATABASE_URL and commit",
        )


def _tracked(step: Any, fn: Callable[..., Any], state: dict[str, Any]) -> Callable[..., Any]:
    def run(**kw: Any) -> Any:
        state["current"] = step.revision
        result = fn(**kw)
        state["applied"] += 1
        state["current"] = None
        return result

    return run


def _env_py(script: ScriptDirectory) -> str:
    return os.path.relpath(os.path.join(script.dir, "env.py"))


def _classify(
    exc: BaseException, state: dict[str, Any], script: ScriptDirectory, *, phase: str
) -> _Failure:
    """Turn whatever env.py or a revision raised into one line naming the culprit."""
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    detail = "".join(traceback.format_exception(exc))
    if _refused:
        return _Failure("unsafe", _refused_message(), detail=detail)
    current = state.get("current")
    if current is not None:
        path = os.path.relpath(current.path)
        if isinstance(exc, DBAPIError):
            error = _pg_error(exc)
            return _Failure(
                "migration",
                f"revision {current.revision} ({path}) failed: {error}; "
                + _revision_advice(_sqlstate(exc)),
                detail=detail,
            )
        return _Failure(
            "migration",
            f"revision {current.revision} ({path}) raised {type(exc).__name__}: {_one_line(exc)}",
            detail=detail,
        )
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f"{os.path.relpath(exc.filename)}:{exc.lineno}"
        return _Failure("config", f"{where}: SyntaxError: {exc.msg}", detail=detail)
    if isinstance(exc, ImportError):
        origin = _origin_in_project(exc)
        name = f"module {exc.name!r}" if exc.name else "a module"
        return _Failure(
            "config",
            f"{origin}: cannot import {name} ({_one_line(exc)}); check the model imports "
            "and that the project's dependencies are installed",
            detail=detail,
        )
    if isinstance(exc, RevisionError):
        return _script_error(exc, script)
    if isinstance(exc, CommandError):
        msg = _one_line(exc)
        if "does not provide a MetaData" in msg:
            msg = f"{_env_py(script)}: target_metadata is None; set it to the models' MetaData"
        return _Failure("config", msg, detail=detail)
    if isinstance(exc, SystemExit):
        text = exc.code if isinstance(exc.code, str) else f"exit status {exc.code}"
        return _Failure("config", f"{_env_py(script)} stopped: {text}", detail=detail)
    if isinstance(exc, DBAPIError):
        return _Failure("database", f"{phase}: {_pg_error(exc)}", detail=detail)
    if isinstance(exc, SQLAlchemyError):
        return _Failure("config", f"{_origin_in_project(exc)}: {_one_line(exc)}", detail=detail)
    return _Failure(
        "config",
        f"{_origin_in_project(exc)}: {type(exc).__name__}: {_one_line(exc)}",
        detail=detail,
    )


def _refused_message() -> str:
    return (
        f"env.py tried to connect to {_refused[0]}, not the checker's scratch database; "
        "nothing was executed there. Make env.py use config.attributes['connection'], "
        "sqlalchemy.url or DATABASE_URL"
    )


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# Errors that mean a revision expects an object no earlier revision created: the history
# only works on databases made some other way (create_all() + stamp, a restored dump).
_MISSING_OBJECT = {"42P01", "42703", "42704", "42883", "3F000", "42P02"}


def _sqlstate(exc: Any) -> str:
    orig = getattr(exc, "orig", None)
    return str(getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or "")


def _revision_advice(sqlstate: str) -> str:
    if sqlstate in _MISSING_OBJECT:
        return (
            "the history does not build a database from empty: fix the revision so that "
            "`alembic upgrade head` works on an empty database"
        )
    if sqlstate == "55P03":
        return (
            "it waited longer than --lock-timeout for a lock (a revision that opens its own "
            "connection waits on the migration's transaction): run that SQL through op, or "
            "raise --lock-timeout"
        )
    if sqlstate.startswith("53"):
        return "the server ran out of resources, not a fault of the history; report it"
    return "fix the revision"


def _pg_error(exc: Any) -> str:
    orig = getattr(exc, "orig", None)
    diag = getattr(orig, "diag", None)
    primary = getattr(diag, "message_primary", None)
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if primary:
        return f"{primary} (SQLSTATE {sqlstate})" if sqlstate else str(primary)
    return _one_line(orig if orig is not None else exc)


def _origin_in_project(exc: BaseException) -> str:
    """The deepest traceback frame in the project's own files: where the user should look."""
    cwd = os.getcwd() + os.sep
    where = ""
    tb = exc.__traceback__
    while tb is not None:
        fname = tb.tb_frame.f_code.co_filename
        if fname.startswith(cwd) and "site-packages" not in fname:
            where = f"{os.path.relpath(fname)}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where or "env.py"


def _compare(cfg: Config, script: ScriptDirectory, url: str) -> list[Finding]:
    """Autogenerate through env.py, exactly as ``alembic.command.check`` does."""

    from alembic import autogenerate as autogen

    command_args = {
        "message": None,
        "autogenerate": True,
        "sql": False,
        "head": "head",
        "splice": False,
        "branch_label": None,
        "version_path": None,
        "rev_id": None,
        "depends_on": None,
    }
    revision_context = autogen.RevisionContext(cfg, script, command_args)
    found: list[Finding] = []
    state: dict[str, Any] = {"called": False}

    def retrieve(rev: Any, context: MigrationContext) -> list[Any]:
        state["called"] = True
        revision_context.run_autogenerate(rev, context)
        # env.py's process_revision_directives may drop an empty revision (a cookbook recipe).
        if revision_context.generated_revisions:
            from migration_check.ops import findings_from_ops

            script_ = revision_context.generated_revisions[-1]
            for upgrade_ops in script_.upgrade_ops_list:
                found.extend(findings_from_ops(upgrade_ops, context))
        return []

    _run_env(
        cfg,
        script,
        url,
        state,
        phase="compare",
        fn=retrieve,
        template_args=revision_context.template_args,
        revision_context=revision_context,
    )
    return found


def _create_scratch(req: dict[str, Any]) -> None:
    """Create the scratch database over a maintenance connection (before the guard exists)."""
    import psycopg
    from psycopg import sql

    try:
        with psycopg.connect(
            **req["admin_conninfo"], autocommit=True, connect_timeout=req["connect_timeout"]
        ) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(req["database"])))
    except psycopg.errors.InsufficientPrivilege as exc:
        raise _Failure(
            "server",
            f"{req['server_label']}: the role may not create databases ({_one_line(exc)}); "
            "grant it CREATEDB or use a role that has it",
        ) from exc
    except psycopg.OperationalError as exc:
        raise _Failure(
            "server", f"cannot connect to {req['server_label']}: {_one_line(exc)}"
        ) from exc


def _version_dirs(script: ScriptDirectory) -> list[str]:
    """Revision directories as resolved after env.py ran (it may set version_locations).

    Feeds only the untracked-file check: if Alembic's internals move, that check is skipped
    rather than the whole run failing.
    """
    dirs: set[str] = set()
    try:
        for rev in script.walk_revisions("base", "heads"):
            dirs.add(os.path.dirname(os.path.abspath(rev.path)))
        # Private, but the only place the configured (possibly still empty) locations live.
        dirs.update(str(p) for p in script._version_locations)
    except Exception:
        pass
    return sorted(dirs)


def _open_cache(req: dict[str, Any], emit: Emit) -> WorkerCache | None:
    """The migrated-database cache's side of this run (cache.py), opened before the guard."""
    from migration_check.cache import open_worker_cache

    try:
        return open_worker_cache(req, emit)
    except Exception as exc:
        raise _Failure(
            "server", f"cannot connect to {req['server_label']}: {_one_line(exc)}"
        ) from exc


def run(req: dict[str, Any], emit: Emit) -> CheckResult:
    """Upgrade a fresh scratch database to head, then compare it with the models."""
    if req.get("create_database"):
        _create_scratch(req)
    cache = _open_cache(req, emit)
    url = req["url"]
    _install_guard(req["allowed"])

    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    cfg = _config(req, url)
    try:
        script = ScriptDirectory.from_config(cfg)
    except CommandError as exc:
        raise _Failure(
            "config",
            f"{os.path.relpath(req['config'])}: script_location "
            # Alembic adds "Please use the 'init' command": wrong advice for a typo'd path.
            f"{cfg.get_main_option('script_location')!r}: "
            f"{_one_line(exc).split('  ')[0].rstrip('.')}; set script_location to the "
            "directory holding env.py",
        ) from exc
    if cache is not None:
        cache.prepare(req, cfg, script, url.split("://", 1)[0])
    applied, heads = _upgrade(cfg, script, req["sync_url"], emit)
    if cache is not None:
        if not cache.after_upgrade(script, heads):
            cache.recreate_empty()
            applied, heads = _upgrade(cfg, script, req["sync_url"], emit)
        cache.take_snapshot(script, heads, applied)
        applied += cache.cached_revisions
    result = CheckResult(revisions_applied=applied, heads=heads, version_dirs=_version_dirs(script))
    if len(heads) > 1:
        result.findings.append(
            Finding(
                kind="multiple_heads",
                table=None,
                name=", ".join(sorted(heads)),
                message=f"the history has {len(heads)} heads: {', '.join(sorted(heads))}",
                hint='alembic merge heads -m "merge heads"',
            )
        )
        return result
    emit({"type": "progress", "message": "comparing the database with the models"})
    result.findings.extend(_compare(cfg, script, req["sync_url"]))
    if cache is not None:
        emit({"type": "cache_store", "meta": cache.finish()})
    return result


def main() -> int:
    fd = int(os.environ["CHECK_MIGRATIONS_EVENT_FD"])
    with os.fdopen(fd, "w", buffering=1, encoding="utf-8") as events:
        return _serve(events)


def _preload() -> None:
    """Import what every check needs while the CLI is still starting the server.

    The worker is started before the server is ready and blocks on its request afterwards, so
    these imports (the floor of a check's cost) overlap the server's start-up. Only libraries:
    the project's code (env.py, models) runs after the request, with the guard in place.
    """
    for name in ("sqlalchemy", "psycopg", "alembic.script", "alembic.runtime.environment",
                 "alembic.autogenerate"):  # fmt: skip
        try:
            __import__(name)
        except Exception:  # the real import reports it, with the project's context
            continue


def _serve(events: TextIO) -> int:
    def emit(event: dict[str, Any]) -> None:
        events.write(json.dumps(event) + "\n")

    _preload()
    req = json.load(sys.stdin)
    for key, value in (req.get("environ") or {}).items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        result = run(req, emit)
    except _Failure as exc:
        emit({"type": "error", "kind": exc.kind, "message": exc.message, "detail": exc.detail})
        return 0
    except BaseException as exc:  # the parent must hear about every way this process ends
        if _refused:
            emit({"type": "error", "kind": "unsafe", "message": _refused_message()})
            return 0
        emit(
            {
                "type": "error",
                "kind": "internal",
                "message": f"{type(exc).__name__}: {_one_line(exc)}",
                "detail": "".join(traceback.format_exception(exc)),
            }
        )
        return 0
    if _refused:
        # env.py swallowed the guard's exception; the verdict cannot be trusted.
        emit({"type": "error", "kind": "unsafe", "message": _refused_message()})
        return 0
    emit(
        {
            "type": "result",
            "findings": [f.to_dict() for f in result.findings],
            "revisions_applied": result.revisions_applied,
            "heads": result.heads,
            "version_dirs": result.version_dirs,
        }
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

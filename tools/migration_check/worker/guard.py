"""The connection guard: env.py may connect only to the checker's scratch database.

env.py files build their own URLs from settings or .env; without this guard a check could
migrate a developer's real database.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from migration_check.protocol import Allowed
from migration_check.urls import describe_target

__all__ = ["install_guard", "refused", "refused_message"]


class _ForeignConnection(Exception):  # raised into env.py's code: named for its reader
    pass


refused: list[str] = []


def install_guard(allowed: Allowed) -> None:
    """Refuse, before any SQL runs, every connection that is not to the scratch database.

    env.py files build their own URLs from settings or .env; without this guard a check could
    migrate a developer's real database. Two layers: SQLAlchemy's ``do_connect`` event sees every
    engine whatever the dialect (SQLite included), and wrappers around the PostgreSQL drivers'
    own ``connect`` functions see raw connections env.py opens outside SQLAlchemy.
    """
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    want_host = os.path.normpath(allowed.host)
    want_port = allowed.port
    # A multidb project (several databases, one env.py) has one scratch database per database.
    # Read at each connection: a Flask app's binds get theirs once the app is loaded.
    want_dbs = allowed.databases

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
            and str(database or "") in want_dbs
        )
        if not ok:
            target = describe_target(dialect, host_s, port_i, str(database or ""), cargs)
            refused.append(target)
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


def refused_message() -> str:
    return (
        f"env.py tried to connect to {refused[0]}, not the checker's scratch database; "
        "nothing was executed there. Make env.py use config.attributes['connection'], "
        "sqlalchemy.url or DATABASE_URL"
    )

"""The worker's maintenance connections: the checker's own statements about its databases.

Opened before the connection guard (worker/guard.py), so env.py stays confined to its scratch
database while the checker creates, rebuilds and drops the databases it owns (multidb's, a Flask
app's binds, the round trip's rebuild, the migrated-database cache's snapshot).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from migration_check.protocol import WorkerRequest
from migration_check.worker.diagnose import Failure, one_line

__all__ = [
    "connect_admin",
    "create_database",
    "drop_database",
    "drop_databases",
    "drop_history_roles",
    "recreate_database",
]


def connect_admin(req: WorkerRequest) -> Any:
    """An autocommit psycopg connection to the maintenance database; a Failure naming the server."""
    import psycopg

    try:
        return psycopg.connect(
            **req.admin_conninfo, autocommit=True, connect_timeout=req.connect_timeout
        )
    except psycopg.OperationalError as exc:
        raise Failure("server", f"cannot connect to {req.server_label}: {one_line(exc)}") from exc


def create_database(admin: Any, name: str, *, throwaway: bool = False) -> None:
    """Create ``name``; on the checker's throwaway server by copying template1's files.

    ``STRATEGY FILE_COPY`` checkpoints, which costs nothing on a server with ``fsync=off`` and
    nothing else on it (10 ms instead of 20 to 40 ms for WAL_LOG, PostgreSQL 15's default), but
    would flush a whole shared server named by ``--database-url``: there, the default.
    """
    from psycopg import sql

    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if throwaway and admin.info.server_version >= 150000:
        statement = sql.SQL("{} STRATEGY FILE_COPY").format(statement)
    admin.execute(statement)


def drop_database(admin: Any, name: str) -> None:
    from psycopg import sql

    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def recreate_database(admin: Any, name: str, *, throwaway: bool = False) -> None:
    """Drop and create ``name``: an empty database under the same name."""
    drop_database(admin, name)
    create_database(admin, name, throwaway=throwaway)


def drop_history_roles(admin: Any) -> None:
    """Drop every role a fresh cluster lacks (all but the predefined ``pg_*`` and ourselves).

    For a replay from empty in a cluster a history already ran in (a stale migrated-database
    entry): its roles live outside any database, and a revision's CREATE ROLE would meet them
    where a fresh server gives the verdict. Called once that history's database is dropped, so
    the roles own nothing; one that still does is a Failure naming it.
    """
    from psycopg import sql

    rows = admin.execute(
        "SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' AND rolname <> current_user"
    ).fetchall()
    for (name,) in rows:
        try:
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))
        except Exception as exc:
            raise Failure(
                "server",
                f"cannot reset the cached cluster for a replay from empty: role {name}: "
                f"{one_line(exc)}; run check-migrations --clear-cache",
            ) from exc


def drop_databases(admin: Any, names: Iterable[str]) -> None:
    """Drop each of ``names`` (best effort: one that fails must not keep the others), then close
    ``admin``. On --database-url a database left here is the sweep's (postgres/scratch.py)."""
    for name in names:
        with contextlib.suppress(Exception):
            drop_database(admin, name)
    with contextlib.suppress(Exception):
        admin.close()

"""Where the scratch database lives: the throwaway server, or one made on --database-url."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from migration_check.cache import CachePlan
from migration_check.config import Settings
from migration_check.errors import ConfigError, ServerError
from migration_check.project import DEFAULT_DRIVER, first_line
from migration_check.server import (
    PORT,
    SUPERUSER,
    ThrowawayServer,
    find_binaries,
    resolve_server_user,
    signals_held,
)
from migration_check.urls import DbUrl, mask_passwords, parse_url
from migration_check.workerproc import Progress

__all__ = ["provision"]


@contextlib.contextmanager
def provision(
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
            DEFAULT_DRIVER, SUPERUSER, None, None, PORT, "postgres",
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
            f"{label}: the role may not create databases ({first_line(exc)}); grant it "
            "CREATEDB (ALTER ROLE ... CREATEDB) or pass a role that has it"
        ) from exc
    except psycopg.Error as exc:
        if not reached:
            raise ServerError(
                f"cannot connect to {label}: {first_line(exc)}"
                + (
                    f" (gave up after {settings.connect_timeout:.0f} s)"
                    if "timeout" in str(exc)
                    else ""
                )
                + "; check the host, port, user and password of --database-url"
            ) from exc
        raise ServerError(
            f"{label}: cannot create the scratch database {database}: {first_line(exc)}"
        ) from exc


def _drop_database(
    admin: dict[str, Any], database: str, settings: Settings, hidden: tuple[str, ...]
) -> None:
    import psycopg
    from psycopg import sql

    try:
        with psycopg.connect(
            **admin, autocommit=True, connect_timeout=int(settings.connect_timeout)
        ) as conn:
            # ..._models: the catalog comparison's second database (compare/modelsdb.py),
            # left behind when the worker was killed before its own drop.
            for name in (database, f"{database}_models"):
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
    except psycopg.Error as exc:
        msg = mask_passwords(str(exc).strip().splitlines()[0] if str(exc) else "", hidden)
        print(
            f"check-migrations: warning: could not drop scratch database {database}: {msg}",
            file=sys.stderr,
        )

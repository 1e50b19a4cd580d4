"""Fixtures of the real-project suite: the session server's admin URL for the checker."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from migration_check.postgres.server import PORT, SUPERUSER


@pytest.fixture(scope="session")
def server_url(admin_conninfo: dict[str, object]) -> str:
    """``--database-url`` of the session's server: the checker makes its own scratch database."""
    return f"postgresql+psycopg://{SUPERUSER}@/postgres?host={admin_conninfo['host']}&port={PORT}"


@pytest.fixture(scope="module")
def truth_url(admin_conninfo: dict[str, object]) -> Iterator[str]:
    """One empty database for a module's plain-Alembic truths, dropped afterwards.

    The first truth migrates it; a model-only mutation leaves the revisions as they were, so
    each later ``upgrade heads`` finds it at its heads and only the comparison runs again (a
    long history is replayed once, not once per mutation).
    """
    name = f"truth_{secrets.token_hex(5)}"
    with psycopg.connect(**admin_conninfo, autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"postgresql+psycopg://{SUPERUSER}@/{name}?host={admin_conninfo['host']}&port={PORT}"
    finally:
        with psycopg.connect(**admin_conninfo, autocommit=True) as conn:  # type: ignore[arg-type]
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

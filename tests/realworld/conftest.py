"""Fixtures of the real-project suite: the session server's admin URL for the checker."""

from __future__ import annotations

import pytest

from migration_check.postgres.server import PORT, SUPERUSER


@pytest.fixture(scope="session")
def server_url(admin_conninfo: dict[str, object]) -> str:
    """``--database-url`` of the session's server: the checker makes its own scratch database."""
    return f"postgresql+psycopg://{SUPERUSER}@/postgres?host={admin_conninfo['host']}&port={PORT}"

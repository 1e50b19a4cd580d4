"""Alembic environment of the Expense Manager database: async, on psycopg 3.

After Alembic's asyncio cookbook recipe. The URL comes from DATABASE_URL (the environment, or a
``.env`` file next to ``alembic.ini``), never from ``alembic.ini``. A caller that already holds a
connection (tests, the migration checker) hands it in through ``config.attributes["connection"]``
and no URL is needed at all.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig

from dotenv import load_dotenv
from sqlalchemy import make_url, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from alembic import context
from expense_models import metadata as target_metadata

_URL_MISSING = "DATABASE_URL is not set: copy .env.example to .env or export it"

config = context.config

# The cookbook's switch: a program that configures logging itself sets this attribute to False.
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _database_url() -> str | None:
    """Return DATABASE_URL, reading ``.env`` first; an exported variable wins over the file."""
    load_dotenv(override=False)
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        return None
    parsed = make_url(url)
    # A driverless postgresql:// URL would select psycopg2, which has no asyncio support.
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def run_migrations_offline() -> None:
    """Write the migrations' SQL to stdout (``alembic upgrade head --sql``) without connecting.

    No database is needed, so neither is DATABASE_URL: without it the PostgreSQL dialect is used.
    """
    url = _database_url()
    context.configure(
        url=url,
        dialect_name=None if url else "postgresql",
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    """Run the migrations on an open synchronous connection."""
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # compare_type is Alembic's default; server defaults are off by default, yet a changed
        # DEFAULT is drift too, so autogenerate and ``alembic check`` compare them as well.
        compare_type=True,
        compare_server_default=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations(url: str) -> None:
    """Connect to ``url`` with the asyncio engine and run the migrations through ``run_sync``."""
    # NullPool: this process opens one connection, and must not leave any behind.
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    """Run the migrations on the connection handed in, or on a new one to DATABASE_URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        if not isinstance(connection, Connection):
            msg = (
                'config.attributes["connection"] must be a synchronous sqlalchemy Connection, '
                f"not {type(connection).__name__}"
            )
            raise TypeError(msg)
        do_run_migrations(connection)
        return
    url = _database_url()
    if url is None:
        raise SystemExit(_URL_MISSING)
    asyncio.run(run_async_migrations(url))


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

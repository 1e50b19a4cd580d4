"""Alembic's async env.py (``alembic init -t async``) with the cookbook's connection sharing.

The recipe hands env.py the sync proxy of an AsyncConnection (``AsyncConnection.run_sync``),
on which a revision can call ``op.run_async``. ``-x meta_schema=1`` as in conn_sync.
"""
import asyncio

from alembic import context
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import async_engine_from_config

from models import metadata

config = context.config
target_metadata = metadata
META = context.get_x_argument(as_dictionary=True).get("meta_schema") == "1"


def do_run_migrations(connection: Connection) -> None:
    if META:
        connection.execute(text("CREATE SCHEMA IF NOT EXISTS meta"))
        connection.commit()
    context.configure(connection=connection, target_metadata=target_metadata,
                      version_table_schema="meta" if META else None)
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    connectable = async_engine_from_config(config.get_section(config.config_ini_section, {}),
                                           prefix="sqlalchemy.", poolclass=pool.NullPool)
    async with connectable.connect() as connection:
        await connection.run_sync(do_run_migrations)
    await connectable.dispose()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection", None)
    if connectable is None:
        asyncio.run(run_async_migrations())
    else:
        do_run_migrations(connectable)


run_migrations_online()

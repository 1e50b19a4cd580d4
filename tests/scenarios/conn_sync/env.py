"""Alembic's generic env.py with the cookbook's connection sharing.

``-x meta_schema=1``: the version table lives in schema ``meta``, which env.py creates and
commits before ``context.configure`` (an ordinary thing for a sync connection to do).
"""
from alembic import context
from sqlalchemy import engine_from_config, pool, text
from sqlalchemy.engine import Connection

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


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection", None)
    if connectable is not None:
        do_run_migrations(connectable)
        return
    engine = engine_from_config(config.get_section(config.config_ini_section, {}),
                                prefix="sqlalchemy.", poolclass=pool.NullPool)
    with engine.connect() as connection:
        do_run_migrations(connection)
    engine.dispose()


run_migrations_online()

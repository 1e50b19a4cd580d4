"""A sync env.py with Alembic's defaults (server defaults not compared by autogenerate)."""
import os

from alembic import context
from sqlalchemy import create_engine, pool

from models import metadata


def run_migrations_online() -> None:
    connectable = config_connection = context.config.attributes.get("connection")
    if config_connection is None:
        connectable = create_engine(os.environ["DATABASE_URL"], poolclass=pool.NullPool).connect()
    context.configure(connection=connectable, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()

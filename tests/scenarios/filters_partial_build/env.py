"""Alembic's defaults, and a filter on the one difference the project knows and keeps."""
import os

from alembic import context
from sqlalchemy import create_engine, pool

from models import metadata


def include_object(obj, name, type_, reflected, compare_to):
    # The UNIQUE constraint the foreign key relies on is managed by hand.
    return name != "uq_accounts_code"


def run_migrations_online() -> None:
    connectable = config_connection = context.config.attributes.get("connection")
    if config_connection is None:
        connectable = create_engine(os.environ["DATABASE_URL"], poolclass=pool.NullPool).connect()
    context.configure(
        connection=connectable, target_metadata=metadata, include_object=include_object
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()

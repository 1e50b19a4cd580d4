"""A sync env.py: every schema compared (include_schemas), a filter on one table."""
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool

from models import metadata

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name)


def include_object(obj, name, type_, reflected, compare_to):
    # Managed outside the migrations: the check must never mention it.
    return not (type_ == "table" and name == "audit_log")


def run_migrations_online() -> None:
    def configure(connection):
        context.configure(
            connection=connection,
            target_metadata=metadata,
            include_schemas=True,
            include_object=include_object,
            compare_server_default=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    connectable = config.attributes.get("connection")
    if connectable is not None:
        configure(connectable)
        return
    engine = create_engine(os.environ["DATABASE_URL"], poolclass=pool.NullPool)
    with engine.connect() as connection:
        configure(connection)


run_migrations_online()

"""env.py with alembic-postgresql-enum imported: autogenerate then compares ENUM labels."""
import os
from logging.config import fileConfig

import alembic_postgresql_enum  # noqa: F401  (registers its comparators and ops)
from alembic import context
from sqlalchemy import create_engine, pool

from models import metadata

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name)


def run_migrations_online() -> None:
    def configure(connection):
        context.configure(connection=connection, target_metadata=metadata)
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

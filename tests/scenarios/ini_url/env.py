"""A sync env.py that reads sqlalchemy.url from alembic.ini (Alembic's generic template)."""
from alembic import context
from sqlalchemy import engine_from_config, pool

from models import metadata

config = context.config
target_metadata = metadata


def run_migrations_online() -> None:
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with connectable.connect() as connection:
        assert connection.dialect.driver == "psycopg2", connection.dialect.driver
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()

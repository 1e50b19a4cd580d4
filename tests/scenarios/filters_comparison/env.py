"""Flask-Migrate's and Alembic's default: server defaults not compared (``-x defaults=on``
turns compare_server_default on)."""
import os

from alembic import context
from sqlalchemy import create_engine, pool

from models import metadata

DEFAULTS = context.get_x_argument(as_dictionary=True).get("defaults") == "on"


def run_migrations_online() -> None:
    connectable = config_connection = context.config.attributes.get("connection")
    if config_connection is None:
        connectable = create_engine(os.environ["DATABASE_URL"], poolclass=pool.NullPool).connect()
    context.configure(
        connection=connectable, target_metadata=metadata, compare_server_default=DEFAULTS
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()

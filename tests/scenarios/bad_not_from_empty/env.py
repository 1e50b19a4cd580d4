"""Alembic's generic env.py; the project itself creates databases with create_all() + stamp."""
from alembic import context

from models import metadata

config = context.config
target_metadata = metadata

connection = config.attributes["connection"]
context.configure(connection=connection, target_metadata=target_metadata)
with context.begin_transaction():
    context.run_migrations()

"""env.py after GeoAlchemy2's Alembic guide: its include_object leaves PostGIS's own tables
(spatial_ref_sys) out, its writer renders spatial columns and indexes."""
import os
from logging.config import fileConfig

from alembic import context
from geoalchemy2 import alembic_helpers
from sqlalchemy import create_engine, pool

from models import metadata

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name)


def run_migrations_online() -> None:
    def configure(connection):
        context.configure(
            connection=connection,
            target_metadata=metadata,
            include_object=alembic_helpers.include_object,
            process_revision_directives=alembic_helpers.writer,
            render_item=alembic_helpers.render_item,
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

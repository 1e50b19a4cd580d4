"""The history scenario's env.py, comparing nothing: the safety tests' revisions change the
schema freely, and only the safety observation is under test (include_object hides every
object from both comparisons, as it would from `alembic check`)."""
from logging.config import fileConfig

from alembic import context

from models import metadata

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name)


def include_object(obj, name, type_, reflected, compare_to):
    return False


def run_migrations_online() -> None:
    connection = config.attributes["connection"]
    context.configure(connection=connection, target_metadata=metadata,
                      include_object=include_object,
                      transaction_per_migration=bool(config.get_main_option("per_migration")))
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()

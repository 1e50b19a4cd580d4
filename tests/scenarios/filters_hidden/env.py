"""Filters of every style real projects write, each hiding differences the project knows.

``-x filter=MODE`` picks the filter, ``-x diffs=GROUP`` which differences the revision and the
models have (models.py and the revision read it): ``db_only`` (only the revision creates them),
``models_only`` (only the models declare them), ``modified`` (both, differently), or ``all``.
"""
import os

from alembic import context
from sqlalchemy import create_engine, pool

X = context.get_x_argument(as_dictionary=True)
MODE = X.get("filter", "none")
os.environ["FILTERS_DIFFS"] = X.get("diffs", "all")

from models import metadata  # noqa: E402  (after the group is chosen)

# keystone's style: known differences by table and columns (a CHECK has no columns).
KNOWN = {
    ("orders", ("account_id",)), ("orders", ("parent_id",)), ("orders", ("owner_id",)),
    ("orders", ("code",)), ("orders", ("note",)), ("orders", ("qty",)), ("orders", ()),
    ("pairs", ("a",)), ("pairs", ("b",)),
}
KNOWN_COLUMNS = {("orders", "x_coll"), ("orders", "x_mood")}


def include_object(obj, name, type_, reflected, compare_to):
    if MODE == "name":
        return not str(name).startswith("x_")
    if MODE == "columns":
        if type_ == "table":
            return name != "x_commented"
        if type_ == "column":
            return (obj.table.name, obj.name) not in KNOWN_COLUMNS
        return (obj.table.name, tuple(c.name for c in obj.columns)) not in KNOWN
    if MODE == "reflected":
        # Alembic's cookbook: never drop what only the database has.
        return not (reflected and compare_to is None)
    if MODE == "compare_to":
        # What both sides have, judged by the database's (reflected) object.
        return compare_to is None or not compare_to.name.startswith("x_")
    if MODE == "raises" and type_ == "check_constraint":
        return obj.info["managed"]  # KeyError: no constraint here says so
    return True


def include_name(name, type_, parent_names):
    if MODE == "include_name":
        return not str(name).endswith("_old")  # what only the revision created
    return True


def run_migrations_online() -> None:
    connectable = config_connection = context.config.attributes.get("connection")
    if config_connection is None:
        connectable = create_engine(os.environ["DATABASE_URL"], poolclass=pool.NullPool).connect()
    context.configure(
        connection=connectable,
        target_metadata=metadata,
        include_object=include_object,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()

"""env.py's ``include_name`` and ``include_object``, called for the catalog as autogenerate does.

Autogenerate (alembic/autogenerate/compare/) runs ``include_name`` over the names it reflects
(schemas, tables, columns, indexes, unique and foreign key constraints, with the parent names
``table_name``, ``schema_name`` and ``schema_qualified_table_name``), and ``include_object``
over every object it would report: the **reflected** object (``reflected=True``) for what only
the database has, the model object (``reflected=False``) with the reflected one as
``compare_to`` for what both have or only the models have. Filters are written against that
(keystone's selects foreign keys by ``object.table.name`` and ``object.columns``), so the catalog
opinion hands them the same objects: the migrated database's tables are reflected with
SQLAlchemy, and only those with a candidate finding, so a clean table costs nothing.

Kinds autogenerate never compares get the names SQLAlchemy's constraint classes suggest
(``check_constraint``, ``primary_key_constraint``, ``exclude_constraint``); an ENUM finding is
filtered through the columns that use the type. A filter that raises is an error naming the
filter's file and line (exit 2), never read as "include".
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from migration_check.worker.catalog.sql import Constraint, Index
from migration_check.worker.diagnose import Failure, one_line

__all__ = ["FILTER_TYPES", "EnvFilters", "Reflector"]

# pg_constraint.contype (and "i" for a plain index) -> the type_ env.py's filters receive.
FILTER_TYPES = {
    "u": "unique_constraint",
    "f": "foreign_key_constraint",
    "i": "index",
    "c": "check_constraint",
    "p": "primary_key_constraint",
    "x": "exclude_constraint",
}


class Reflector:
    """The migrated database's tables as SQLAlchemy reflects them, each once, on demand."""

    def __init__(self, conn: Any) -> None:
        from sqlalchemy import MetaData

        self._conn = conn
        self._metadata = MetaData()
        self._tables: dict[tuple[str | None, str], Any] = {}

    def table(self, name: str, schema: str | None) -> Any:
        from sqlalchemy import Table

        key = (schema, name)
        if key not in self._tables:
            # A table another one's foreign key pulled in is already reflected in full.
            self._tables[key] = Table(name, self._metadata, schema=schema, autoload_with=self._conn)
        return self._tables[key]


class EnvFilters:
    """The filters of one env.py; every call goes through ``_call``, which names a failure."""

    def __init__(self, opts: dict[str, Any], reflector: Reflector | None) -> None:
        from sqlalchemy.dialects import postgresql

        self.include_name: Callable[..., Any] | None = opts.get("include_name")
        self.include_object: Callable[..., Any] | None = opts.get("include_object")
        self.reflector = reflector
        self._dialect: Any = postgresql.dialect()  # type: ignore[no-untyped-call]

    @property
    def has_object_filter(self) -> bool:
        return self.include_object is not None

    def name(self, name: str | None, type_: str, parents: dict[str, Any]) -> bool:
        """``include_name`` as ``AutogenContext.run_name_filters`` calls it."""
        if self.include_name is None:
            return True
        parents = dict(parents)
        if "schema_name" in parents:
            table = name if type_ == "table" else parents.get("table_name")
            if table:
                schema = parents["schema_name"]
                parents["schema_qualified_table_name"] = f"{schema}.{table}" if schema else table
        what = f"the {type_} name {name!r}"
        return self._call(self.include_name, what, name, type_, parents)

    def obj(
        self, obj: Any, name: str | None, type_: str, *, reflected: bool, compare_to: Any
    ) -> bool:
        """``include_object`` as ``AutogenContext.run_object_filters`` calls it."""
        if self.include_object is None:
            return True
        side = "reflected" if reflected else "model"
        what = f"the {side} {type_} {name!r}"
        return self._call(self.include_object, what, obj, name, type_, reflected, compare_to)

    def _call(self, hook: Callable[..., Any], what: str, *args: Any) -> bool:
        try:
            return bool(hook(*args))
        except Exception as exc:  # whatever the filter raised is its own error, named as such
            code = getattr(hook, "__code__", None)
            where = (
                f"{os.path.relpath(code.co_filename)}:{code.co_firstlineno}"
                if code is not None
                else "env.py"
            )
            label = getattr(hook, "__name__", "filter")
            raise Failure(
                "config",
                f"{where}: {label}() raised {type(exc).__name__}: {one_line(exc)} on {what} "
                "(the catalog comparison calls it as autogenerate does: reflected objects for "
                "what the database has, model objects for what the models have); make it "
                "return True or False for every object",
            ) from exc

    # The objects behind a catalog row -------------------------------------------------------

    def final_name(self, item: Any) -> str | None:
        """The name PostgreSQL gets for a model's constraint or index (naming convention)."""
        from alembic.util.sqla_compat import _get_constraint_final_name

        try:
            return _get_constraint_final_name(item, self._dialect)
        except Exception:  # an unresolvable convention token: matched by columns instead
            return None

    def model_object(self, table: Any, row: Constraint | Index) -> Any:
        """The model's constraint or index a row of the models' database came from."""
        return _find(table, row, self.final_name)

    def reflected_object(self, conn_table: Any, row: Constraint | Index) -> Any:
        return _find(conn_table, row, lambda item: item.name)


def _kind_of(item: Any) -> str | None:
    from sqlalchemy import (
        CheckConstraint,
        ForeignKeyConstraint,
        PrimaryKeyConstraint,
        UniqueConstraint,
    )
    from sqlalchemy import Index as SaIndex

    for cls, code in (
        (SaIndex, "i"),
        (PrimaryKeyConstraint, "p"),
        (ForeignKeyConstraint, "f"),
        (UniqueConstraint, "u"),
        (CheckConstraint, "c"),
    ):
        if isinstance(item, cls):
            return code
    if type(item).__name__ == "ExcludeConstraint":
        return "x"
    return None


def _find(table: Any, row: Constraint | Index, name_of: Callable[[Any], str | None]) -> Any:
    """By name, then (unnamed on this side) by kind and columns, then the table's one PK."""
    code = row.type if isinstance(row, Constraint) else "i"
    items = [i for i in [*table.constraints, *table.indexes] if _kind_of(i) == code]
    for item in items:
        if name_of(item) == row.name:
            return item
    if code == "p":
        return table.primary_key
    for item in items:
        columns = tuple(c.name for c in getattr(item, "columns", ()))
        if columns and columns == row.columns:
            return item
    return None

"""When ``create_all()`` fails on some objects: build the others, and say which were left out.

Real models fail to build on one object and are fine otherwise: a ``gin`` index whose operator
class only a revision names, a foreign key to columns whose UNIQUE constraint only a revision
creates. Skipping the whole catalog opinion for that hides every other difference. Here the
statements ``create_all()`` sends are run one by one, each in a savepoint: a table that fails
is retried without its foreign keys (added afterwards, one by one), and whatever still fails is
left out, recorded with PostgreSQL's error, and left out of the comparison on both sides
(``Skipped.covers``), so an object that could not be built never reads as removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Skipped", "build_partially", "skipped_note"]


@dataclass(frozen=True)
class Skipped:
    """One object ``create_all()`` could not build."""

    what: str  # "table", "index", "foreign key", ... as a reviewer says it
    code: str  # "t" table, "i" index, or pg_constraint.contype; "" for anything else
    table: tuple[str | None, str] | None  # (schema, name) as the metadata has it
    name: str | None  # the name PostgreSQL would have given it; None when unnamed
    columns: tuple[str, ...]
    error: str

    def label(self) -> str:
        where = f" on table {self.table[1]}" if self.table and self.code != "t" else ""
        name = f" {self.name}" if self.name else ""
        cols = f" ({', '.join(self.columns)})" if not self.name and self.columns else ""
        return f"{self.what}{name}{cols}{where}"

    def covers(self, row: Any, code: str) -> bool:
        """Is this catalog row (of the migrated database) the object that was left out?"""
        if code != self.code:
            return False
        return row.name == self.name if self.name else tuple(row.columns) == self.columns


def skipped_note(skipped: list[Skipped]) -> str:
    """One line for stderr: the first error that left an object out, as PostgreSQL said it on
    that object's first attempt (a table retried without its foreign keys may fail otherwise),
    then every object left out, each named once, with its own error when it is another."""
    first = skipped[0].error
    parts = [s.label() + (f" ({s.error})" if s.error != first else "") for s in skipped]
    return (
        f"create_all() on the models failed ({first}); left out of the catalog comparison "
        f"(the rest was compared): {'; '.join(parts)}"
    )


def _savepoint(conn: Any, sql: str) -> str | None:
    """Run one statement in a savepoint; PostgreSQL's one-line error, or None."""
    import psycopg

    from migration_check.worker.diagnose import one_line

    try:
        with conn.transaction():
            conn.execute(sql, ())  # () as SQLAlchemy passes it: psycopg reads %% as %
    except psycopg.Error as exc:
        return one_line(exc)
    return None


def _ddl(metadatas: list[Any], dialect: Any) -> list[tuple[Any, str]]:
    """``create_all(checkfirst=False)``'s DDL elements and their SQL, in order."""
    from sqlalchemy import create_mock_engine

    out: list[tuple[Any, str]] = []

    def collect(ddl: Any, *multiparams: Any, **params: Any) -> None:
        if any(m is not None for m in multiparams) or params:
            raise ValueError("DDL with parameters")
        out.append((ddl, str(ddl.compile(dialect=dialect))))

    mock = create_mock_engine("postgresql+psycopg://", collect)
    for metadata in metadatas:
        metadata.create_all(mock, checkfirst=False)
    return out


def _final_name(item: Any, dialect: Any) -> str | None:
    from alembic.util.sqla_compat import _get_constraint_final_name

    try:
        return _get_constraint_final_name(item, dialect)
    except Exception:  # a convention that cannot be resolved: matched by columns
        return None


def _describe(item: Any, error: str, dialect: Any) -> Skipped:
    from sqlalchemy import (
        CheckConstraint,
        Column,
        ForeignKeyConstraint,
        Index,
        PrimaryKeyConstraint,
        Table,
        UniqueConstraint,
    )

    kinds: list[tuple[type, str, str]] = [
        (Index, "index", "i"),
        (ForeignKeyConstraint, "foreign key", "f"),
        (UniqueConstraint, "unique constraint", "u"),
        (CheckConstraint, "CHECK constraint", "c"),
        (PrimaryKeyConstraint, "primary key", "p"),
    ]
    if isinstance(item, Table):
        return Skipped("table", "t", (item.schema, item.name), item.name, (), error)
    if isinstance(item, Column) and item.table is not None:
        return Skipped("comment of column", "", (item.table.schema, item.table.name), item.name,
                       (), error)  # fmt: skip
    for cls, what, code in kinds:
        if isinstance(item, cls):
            table = getattr(item, "table", None)
            key = (table.schema, table.name) if table is not None else None
            columns = tuple(c.name for c in getattr(item, "columns", ()))
            return Skipped(what, code, key, _final_name(item, dialect), columns, error)
    name = getattr(item, "name", None)
    return Skipped(type(item).__name__, "", None, name if isinstance(name, str) else None, (),
                   error)  # fmt: skip


def _table_of(item: Any) -> Any:
    from sqlalchemy import Table

    if isinstance(item, Table):
        return item
    table = getattr(item, "table", None)
    return table if isinstance(table, Table) else None


def build_partially(conn: Any, metadatas: list[Any], dialect: Any) -> list[Skipped]:
    """Build every object that builds, on ``conn`` (psycopg, one transaction); what did not."""
    from sqlalchemy.schema import AddConstraint, CreateTable

    skipped: list[Skipped] = []
    failed: set[Any] = set()  # tables left out: their indexes and comments go with them
    later: list[Any] = []  # foreign keys of tables built without them
    with conn.transaction():
        for ddl, sql in _ddl(metadatas, dialect):
            item: Any = getattr(ddl, "element", None)
            table = _table_of(item)
            if table is not None and table in failed:
                continue
            error = _savepoint(conn, sql)
            if error is None:
                continue
            if isinstance(ddl, CreateTable) and item.foreign_key_constraints:
                bare = CreateTable(item, include_foreign_key_constraints=[])
                if _savepoint(conn, str(bare.compile(dialect=dialect))) is None:
                    later.extend(item.foreign_key_constraints)
                    continue
            if isinstance(ddl, CreateTable):
                failed.add(item)
            skipped.append(_describe(item, error, dialect))
        for fk in later:
            if fk.referred_table in failed:
                continue  # the table it needs is named already
            error = _savepoint(conn, str(AddConstraint(fk).compile(dialect=dialect)))
            if error is not None:
                skipped.append(_describe(fk, error, dialect))
    return skipped

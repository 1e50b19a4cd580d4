"""The name PostgreSQL gives an unnamed UNIQUE constraint, written into the revision.

Without a naming convention (as ``alembic init`` leaves a project), autogenerate writes
``op.create_unique_constraint(None, ...)`` and its downgrade ``op.drop_constraint(None, ...)``,
which Alembic itself warns "will fail as rendered": the revision cannot be downgraded, and its
safe form (a concurrent unique index, then ``UNIQUE USING INDEX``) needs a name. PostgreSQL names
the constraint ``<table>_<columns>_key``, the name the catalog comparison and the database see,
so writing that name changes nothing but the downgrade, which then works.
"""

from __future__ import annotations

from typing import Any

__all__ = ["name_unnamed_uniques"]

_MAX = 63  # NAMEDATALEN - 1: past it PostgreSQL shortens the parts, so no name is guessed


def name_unnamed_uniques(scripts: list[Any], notes: list[str]) -> None:
    """Give each unnamed UNIQUE constraint of ``scripts`` PostgreSQL's name, in both bodies."""
    from alembic.operations import ops

    for script in scripts:
        named: dict[tuple[str | None, str], list[str]] = {}
        for body in script.upgrade_ops_list:
            for op in _ops(body, ops.AddConstraintOp):
                if op.constraint_type != "unique" or op.constraint_name:
                    continue
                name = _default_name(op.table_name, [str(c) for c in op.columns])
                if name is None:
                    continue
                op.constraint_name = name
                named.setdefault((op.schema, op.table_name), []).append(name)
                notes.append(
                    f"wrote the unique constraint on {op.table_name} "
                    f"({', '.join(str(c) for c in op.columns)}) as {name}, the name PostgreSQL "
                    "gives it (without a name its downgrade cannot drop it)"
                )
        for body in script.downgrade_ops_list:
            for op in _ops(body, ops.DropConstraintOp):
                names = named.get((op.schema, op.table_name), [])
                # Only when one name fits: which unnamed drop undoes which add is not said.
                if op.constraint_type == "unique" and not op.constraint_name and len(names) == 1:
                    op.constraint_name = names[0]


def _ops(container: Any, kind: type) -> list[Any]:
    """Every op of ``kind`` in ``container``, inside its per-table groups too."""
    found: list[Any] = []
    for op in getattr(container, "ops", []):
        if isinstance(op, kind):
            found.append(op)
        elif hasattr(op, "ops"):
            found.extend(_ops(op, kind))
    return found


def _default_name(table: str, columns: list[str]) -> str | None:
    """``<table>_<col>_<col>_key`` as PostgreSQL's ChooseConstraintName makes it, when short."""
    if not columns:
        return None
    name = "_".join([table, *columns, "key"])
    return name if len(name.encode()) <= _MAX else None

"""Tables an extension owns: autogenerate reads them as removed, but a revision never drops them.

Runs in the worker, on the migrated database's connection env.py configured. PostGIS's
``spatial_ref_sys`` is the common case: ``CREATE EXTENSION postgis`` creates the table, the
models do not declare it, and an env.py without GeoAlchemy2's ``include_object`` gets
``op.drop_table('spatial_ref_sys')`` from autogenerate, which the extension refuses (or, with
CASCADE, which takes the extension with it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext

__all__ = ["extension_table", "keep_extension_tables"]

# pg_depend's deptype 'e': the object is a member of the extension (created by its script).
_OWNER = """
SELECT e.extname
FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_extension'::regclass
  AND d.deptype = 'e' AND d.objid = to_regclass(:name)
"""

# What to put in env.py; GeoAlchemy2 ships one for PostGIS.
_FILTERS = {
    "postgis": "include_object=geoalchemy2.alembic_helpers.include_object",
}


def extension_table(op: Any, context: MigrationContext) -> dict[str, Any] | None:
    """For a dropped table an extension owns: the finding's message, hint and no drop."""
    from alembic.operations import ops as o

    if not isinstance(op, o.DropTableOp):
        return None
    owner = _owner(op, context)
    if owner is None:
        return None
    name = f"{op.schema}.{op.table_name}" if op.schema else op.table_name
    suggested = _FILTERS.get(owner)
    hint = (
        f"leave the extension's tables out of autogenerate in env.py: "
        f"context.configure(..., {suggested})"
        if suggested
        else "leave the extension's tables out of autogenerate in env.py: an include_object "
        f"that returns False for type_ == 'table' and name == {op.table_name!r} when reflected"
    )
    return {
        "message": f"table {name} belongs to extension {owner}, which created it: autogenerate "
        "reads it as gone from the models, but a revision must not drop it",
        "op": "",
        "hint": hint,
    }


def keep_extension_tables(scripts: list[Any], context: MigrationContext) -> list[str]:
    """Take the drops of extension-owned tables out of revisions being written; say each.

    The writer's half of ``extension_table``: the check names no op for such a table, so the
    revision ``check-migrations revision`` writes must not carry autogenerate's drop either (nor
    the downgrade's re-creation of it).
    """
    from alembic.operations import ops as o

    notes: list[str] = []
    for script in scripts:
        for upgrade, downgrade in zip(
            script.upgrade_ops_list, script.downgrade_ops_list, strict=False
        ):
            kept = []
            for op in upgrade.ops:
                owner = _owner(op, context) if isinstance(op, o.DropTableOp) else None
                if owner is None:
                    kept.append(op)
                    continue
                notes.append(
                    f"left out op.drop_table({op.table_name!r}): extension {owner} owns the "
                    "table; leave it out of autogenerate in env.py (include_object)"
                )
                downgrade.ops = [
                    d
                    for d in downgrade.ops
                    if not (
                        isinstance(d, o.CreateTableOp)
                        and (d.table_name, d.schema) == (op.table_name, op.schema)
                    )
                ]
            upgrade.ops = kept
    return notes


def _owner(op: Any, context: MigrationContext) -> str | None:
    from sqlalchemy import text

    connection = context.connection
    if connection is None:
        return None
    parts = (op.schema, op.table_name)
    name = ".".join('"' + part.replace('"', '""') + '"' for part in parts if part)
    # to_regclass() answers NULL for a name that does not resolve, so the query cannot fail
    # and abort env.py's transaction.
    row = connection.execute(text(_OWNER), {"name": name}).first()
    return str(row[0]) if row else None

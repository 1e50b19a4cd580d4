"""Flatten Alembic's autogenerate ops into findings, each with its op code and model location.

Runs in the worker, where Alembic and the project's models are imported. Ops rather than
``as_diffs()`` tuples: an op renders to the exact code a revision would need.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from migration_check.findings import Finding
from migration_check.worker.autogenerate.alter import alter_findings, type_text
from migration_check.worker.autogenerate.locate import (
    Locator,
)
from migration_check.worker.autogenerate.owned import extension_table
from migration_check.worker.autogenerate.pairs import describe_pair, pair_ops
from migration_check.worker.autogenerate.plugin_ops import (
    Found,
    describe_plugin_op,
    generic_finding,
)

if TYPE_CHECKING:
    from alembic.operations.ops import MigrateOperation, UpgradeOps
    from alembic.runtime.migration import MigrationContext

__all__ = ["findings_from_ops"]


def findings_from_ops(upgrade_ops: UpgradeOps, context: MigrationContext) -> list[Finding]:
    locator = Locator(context.opts.get("target_metadata"))
    dialect = _postgresql(context.dialect)
    pairs, singles = pair_ops(list(_walk(upgrade_ops.ops)))
    found: list[Finding] = []
    for pair in pairs:
        try:
            finding = describe_pair(pair, _table(pair.drop), dialect)
        except Exception:  # an op shape this reading does not know: say it as two findings
            singles += [(pair.drop, pair.wrapper), (pair.create, pair.wrapper)]
            continue
        # Drop first: the create would clash with the old object's name.
        code = "\n".join(
            c for c in (_render(op, pair.wrapper, context) for op in (pair.drop, pair.create)) if c
        )
        column = finding.column or _first_column(pair.create)
        found.append(_with(finding, op=code, location=locator.find(finding.table, column)))
    for op, wrapper in singles:
        for finding, where in _described(op, dialect, context):
            instead = _orphan(op, locator) or extension_table(op, context)
            if instead is not None:
                found.append(_with(finding, **instead))
                continue
            code = _render(op, wrapper, context)
            column = where or finding.column or _first_column(op)
            location = finding.location or locator.find(finding.table, column)
            found.append(_with(finding, op=code, location=location))
    return found


def _postgresql(dialect: Any) -> Any:
    """The dialect whose words findings use: PostgreSQL's, whatever driver env.py chose."""
    if getattr(dialect, "name", None) == "postgresql":
        return dialect
    from sqlalchemy.dialects import postgresql

    return postgresql.dialect()  # type: ignore[no-untyped-call]


def _orphan(op: Any, locator: Locator) -> dict[str, Any] | None:
    """A dropped table whose model module nothing imports: say so, and do not propose a drop."""
    from alembic.operations import ops as o

    if not isinstance(op, o.DropTableOp):
        return None
    orphan = locator.orphan(op.table_name, op.schema)
    if orphan is None:
        return None
    return {
        "message": f"{orphan.location.file} defines {op.table_name} but nothing imports it",
        "location": orphan.location,
        "op": "",
        "hint": f"add `{orphan.import_statement}` to {orphan.package_init}",
    }


def _name(value: object) -> str | None:
    """A constraint's name as text: SQLAlchemy's ``_NoneName`` sentinel means unnamed."""
    return value if isinstance(value, str) else None


def _first_column(op: Any) -> str | None:
    """The column whose line best locates an index or constraint."""
    cols = getattr(op, "columns", None) or getattr(op, "local_cols", None) or []
    for col in cols:
        name = col if isinstance(col, str) else getattr(col, "name", None)
        if name:
            return str(name)
    return None


def _with(finding: Finding, **changes: Any) -> Finding:
    import dataclasses

    return dataclasses.replace(finding, **changes)


def _walk(ops: Iterable[MigrateOperation]) -> Iterator[tuple[Any, Any]]:
    """Yield (op, enclosing ModifyTableOps or None), descending into containers."""
    from alembic.operations import ops as alembic_ops

    for op in ops:
        if isinstance(op, alembic_ops.ModifyTableOps):
            for inner in op.ops:
                yield inner, op
        elif isinstance(op, alembic_ops.OpContainer):
            yield from _walk(op.ops)
        else:
            yield op, None


def _table(op: Any, attr: str = "table_name") -> str | None:
    name = getattr(op, attr, None)
    schema = getattr(op, "schema", None)
    if name is None:
        return None
    return f"{schema}.{name}" if schema else str(name)


def _described(op: Any, dialect: Any, context: MigrationContext) -> list[Found]:
    """Findings for one op, each with the column that locates it (None: its own column)."""
    default_schema = getattr(context.dialect, "default_schema_name", None)
    for klass in type(op).__mro__:  # GeoAlchemy2's ops subclass Alembic's
        describe = _DESCRIBERS.get(klass.__name__) if klass.__module__ == _OPS_MODULE else None
        if describe is not None:
            return [(f, None) for f in describe(op, _table(op), dialect, context)]
    plugin = describe_plugin_op(op, default_schema)
    if plugin is not None:
        return plugin
    return [(generic_finding(op, _table(op)), None)]


_OPS_MODULE = "alembic.operations.ops"


def _create_table(op: Any, table: str | None, *_: Any) -> list[Finding]:
    return [Finding("add_table", table, "table in the models, no revision creates it")]


def _drop_table(op: Any, table: str | None, *_: Any) -> list[Finding]:
    return [Finding("remove_table", table, "table in the database, gone from the models")]


def _add_column(op: Any, table: str | None, dialect: Any, _context: Any) -> list[Finding]:
    col = op.column
    text = f"column {col.name} {type_text(col.type, dialect)} in the models, no revision adds it"
    return [Finding("add_column", table, text, column=col.name)]


def _drop_column(op: Any, table: str | None, *_: Any) -> list[Finding]:
    text = f"column {op.column_name} in the database, gone from the models"
    return [Finding("remove_column", table, text, column=op.column_name)]


def _alter_column(op: Any, table: str | None, dialect: Any, context: Any) -> list[Finding]:
    return list(alter_findings(op, table, dialect, context))


def _create_index(op: Any, table: str | None, *_: Any) -> list[Finding]:
    cols = ", ".join(_index_columns(op))
    unique = "unique " if op.kw.get("unique") or getattr(op, "unique", False) else ""
    text = f"{unique}index {op.index_name} ({cols}) in the models, no revision creates it"
    return [Finding("add_index", table, text, name=op.index_name)]


def _drop_index(op: Any, table: str | None, *_: Any) -> list[Finding]:
    text = f"index {op.index_name} in the database, gone from the models"
    return [Finding("remove_index", table, text, name=op.index_name)]


def _create_fk(op: Any, _table_name: str | None, *_: Any) -> list[Finding]:
    cols = ", ".join(op.local_cols)
    text = (
        f"foreign key {op.constraint_name or ''} ({cols}) -> {op.referent_table} "
        "in the models, no revision creates it".replace("  ", " ")
    )
    column = op.local_cols[0] if len(op.local_cols) == 1 else None
    return [
        Finding("add_fk", _table(op, "source_table"), text, name=_name(op.constraint_name),
                column=column)
    ]  # fmt: skip


def _add_constraint(op: Any, table: str | None, *_: Any) -> list[Finding]:
    kind = {"unique": "add_unique", "check": "add_check", "primary": "add_pk"}.get(
        getattr(op, "constraint_type", "") or "", "add_constraint"
    )
    name = getattr(op, "constraint_name", None)
    cols = [str(c) for c in getattr(op, "columns", None) or []]
    what = {"add_unique": "unique constraint", "add_pk": "primary key"}.get(kind, "constraint")
    named = f" {name}" if name else ""
    listed = f" ({', '.join(cols)})" if cols else ""
    text = f"{what}{named}{listed} in the models, no revision creates it"
    # Unnamed, on one column: that column, as for a foreign key; the catalog's finding for the
    # same constraint (under the name PostgreSQL gives it) is then known for the same change.
    column = cols[0] if not name and len(cols) == 1 else None
    return [Finding(kind, table, text, name=name, column=column)]


def _drop_constraint(op: Any, table: str | None, *_: Any) -> list[Finding]:
    ctype = op.constraint_type or "constraint"
    kind = {"foreignkey": "remove_fk", "unique": "remove_unique", "check": "remove_check"}.get(
        ctype, "remove_constraint"
    )
    text = f"{ctype} constraint {op.constraint_name} in the database, gone from the models"
    return [Finding(kind, table, text, name=_name(op.constraint_name))]


def _create_table_comment(op: Any, table: str | None, *_: Any) -> list[Finding]:
    text = f"table comment is {op.comment!r} in the models, {op.existing_comment!r} in the database"
    return [Finding("modify_table_comment", table, text)]


def _drop_table_comment(op: Any, table: str | None, *_: Any) -> list[Finding]:
    text = f"table comment {op.existing_comment!r} in the database, gone from the models"
    return [Finding("modify_table_comment", table, text)]


# Alembic's op classes by name; an op is described by the first class of its MRO found here.
_DESCRIBERS: dict[str, Callable[[Any, str | None, Any, Any], list[Finding]]] = {
    "CreateTableOp": _create_table,
    "DropTableOp": _drop_table,
    "AddColumnOp": _add_column,
    "DropColumnOp": _drop_column,
    "AlterColumnOp": _alter_column,
    "CreateIndexOp": _create_index,
    "DropIndexOp": _drop_index,
    "CreateForeignKeyOp": _create_fk,
    "AddConstraintOp": _add_constraint,
    "DropConstraintOp": _drop_constraint,
    "CreateTableCommentOp": _create_table_comment,
    "DropTableCommentOp": _drop_table_comment,
}


def _index_columns(op: Any) -> list[str]:
    out = []
    for col in op.columns:
        out.append(getattr(col, "name", None) or str(col))
    return out


def _render(op: Any, wrapper: Any, context: MigrationContext) -> str:
    """The Alembic op code for this one op, as autogenerate would write it."""
    from alembic.autogenerate import render_python_code
    from alembic.operations import ops as o

    if wrapper is not None:
        single: Any = o.ModifyTableOps(wrapper.table_name, [op], schema=wrapper.schema)
    else:
        single = op
    from alembic.runtime.migration import MigrationContext

    opts = context.opts
    try:
        code = render_python_code(
            o.UpgradeOps(ops=[single]),
            # Same dialect for PostgreSQL types, without the autogenerate-only checks.
            migration_context=MigrationContext.configure(dialect=context.dialect),
            render_item=opts.get("render_item"),
            user_module_prefix=opts.get("user_module_prefix"),
            render_as_batch=bool(opts.get("render_as_batch", False)),
        )
    except Exception:  # a custom op without a renderer still deserves a finding
        return ""
    lines = [ln for ln in code.splitlines() if ln.strip() and not ln.strip().startswith("# ###")]
    indent = min((len(ln) - len(ln.lstrip()) for ln in lines), default=0)
    return "\n".join(ln[indent:] for ln in lines)

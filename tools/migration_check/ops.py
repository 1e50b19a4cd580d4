"""Flatten Alembic's autogenerate ops into findings, each with its op code and model location.

Runs in the worker, where Alembic and the project's models are imported. Ops rather than
``as_diffs()`` tuples: an op renders to the exact code a revision would need.
"""

from __future__ import annotations

import ast
import inspect
import os
import re
from collections.abc import Iterable, Iterator
from functools import cache
from typing import TYPE_CHECKING, Any

from migration_check.findings import Finding, Location

if TYPE_CHECKING:
    from alembic.operations.ops import MigrateOperation, UpgradeOps
    from alembic.runtime.migration import MigrationContext

__all__ = ["findings_from_ops"]


def findings_from_ops(upgrade_ops: UpgradeOps, context: MigrationContext) -> list[Finding]:
    locator = _Locator(context.opts.get("target_metadata"))
    found: list[Finding] = []
    for op, wrapper in _walk(upgrade_ops.ops):
        for finding in _describe(op):
            code = _render(op, wrapper, context)
            column = finding.column or _first_column(op)
            found.append(_with(finding, op=code, location=locator.find(finding.table, column)))
    return found


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


def _describe(op: Any) -> list[Finding]:
    from alembic.operations import ops as o

    table = _table(op)
    if isinstance(op, o.CreateTableOp):
        return [Finding("add_table", table, "table in the models, no revision creates it")]
    if isinstance(op, o.DropTableOp):
        return [Finding("remove_table", table, "table in the database, gone from the models")]
    if isinstance(op, o.AddColumnOp):
        col = op.column
        return [
            Finding(
                "add_column",
                table,
                f"column {col.name} {col.type} in the models, no revision adds it",
                column=col.name,
            )
        ]
    if isinstance(op, o.DropColumnOp):
        return [
            Finding(
                "remove_column",
                table,
                f"column {op.column_name} in the database, gone from the models",
                column=op.column_name,
            )
        ]
    if isinstance(op, o.AlterColumnOp):
        return list(_alter_findings(op, table))
    if isinstance(op, o.CreateIndexOp):
        cols = ", ".join(_index_columns(op))
        unique = "unique " if op.kw.get("unique") or getattr(op, "unique", False) else ""
        return [
            Finding(
                "add_index",
                table,
                f"{unique}index {op.index_name} ({cols}) in the models, no revision creates it",
                name=op.index_name,
            )
        ]
    if isinstance(op, o.DropIndexOp):
        return [
            Finding(
                "remove_index",
                table,
                f"index {op.index_name} in the database, gone from the models",
                name=op.index_name,
            )
        ]
    if isinstance(op, o.CreateForeignKeyOp):
        table = _table(op, "source_table")
        cols = ", ".join(op.local_cols)
        return [
            Finding(
                "add_fk",
                table,
                f"foreign key {op.constraint_name or ''} ({cols}) -> {op.referent_table} "
                "in the models, no revision creates it".replace("  ", " "),
                name=_name(op.constraint_name),
                column=op.local_cols[0] if len(op.local_cols) == 1 else None,
            )
        ]
    if isinstance(op, o.AddConstraintOp):
        kind = {"unique": "add_unique", "check": "add_check", "primary": "add_pk"}.get(
            getattr(op, "constraint_type", "") or "", "add_constraint"
        )
        name = getattr(op, "constraint_name", None)
        return [
            Finding(
                kind, table, f"constraint {name} in the models, no revision creates it", name=name
            )
        ]
    if isinstance(op, o.DropConstraintOp):
        ctype = op.constraint_type or "constraint"
        kind = {"foreignkey": "remove_fk", "unique": "remove_unique", "check": "remove_check"}.get(
            ctype, "remove_constraint"
        )
        return [
            Finding(
                kind,
                table,
                f"{ctype} constraint {op.constraint_name} in the database, gone from the models",
                name=_name(op.constraint_name),
            )
        ]
    if isinstance(op, o.CreateTableCommentOp):
        return [
            Finding(
                "modify_table_comment",
                table,
                f"table comment is {op.comment!r} in the models, "
                f"{op.existing_comment!r} in the database",
            )
        ]
    if isinstance(op, o.DropTableCommentOp):
        return [
            Finding(
                "modify_table_comment",
                table,
                f"table comment {op.existing_comment!r} in the database, gone from the models",
            )
        ]
    kind = re.sub(r"(?<!^)(?=[A-Z])", "_", type(op).__name__).lower().removesuffix("_op")
    return [Finding(kind, table, f"{type(op).__name__} pending: a revision is missing")]


def _alter_findings(op: Any, table: str | None) -> Iterator[Finding]:
    col = op.column_name
    if op.modify_type is not None:
        yield Finding(
            "modify_type",
            table,
            f"type is {op.modify_type} in the models, {op.existing_type} in the database",
            column=col,
        )
    if op.modify_nullable is not None:
        models = "NULL" if op.modify_nullable else "NOT NULL"
        database = "NOT NULL" if op.modify_nullable else "NULL"
        yield Finding(
            "modify_nullable",
            table,
            f"{models} in the models, {database} in the database",
            column=col,
        )
    if op.modify_server_default is not False:
        yield Finding(
            "modify_default",
            table,
            f"server default is {_default(op.modify_server_default)} in the models, "
            f"{_default(op.existing_server_default)} in the database",
            column=col,
        )
    if op.modify_comment is not False:
        yield Finding(
            "modify_comment",
            table,
            f"comment is {op.modify_comment!r} in the models, "
            f"{op.existing_comment!r} in the database",
            column=col,
        )
    if op.kw.get("modify_name"):
        yield Finding("modify_name", table, f"renamed to {op.kw['modify_name']}", column=col)


def _default(value: Any) -> str:
    if value is None or value is False:
        return "none"
    arg = getattr(value, "arg", value)
    text = getattr(arg, "text", arg)
    return repr(str(text))


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


class _Locator:
    """Find the model source line that declares a table or column."""

    def __init__(self, metadata: Any) -> None:
        self._tables: dict[str, Any] = {}
        self._metadatas = list(metadata) if isinstance(metadata, list | tuple) else [metadata]
        try:
            from sqlalchemy.orm.mapper import _mapper_registries
        except ImportError:  # pragma: no cover - private API moved
            return
        for registry in list(_mapper_registries):
            for mapper in registry.mappers:
                for table in getattr(mapper, "tables", []):
                    self._tables.setdefault(table.fullname, mapper)

    def find(self, table: str | None, column: str | None) -> Location | None:
        if table is None:
            return None
        mapper = self._tables.get(table)
        if mapper is None:
            return None
        cls = mapper.class_
        if column is not None:
            loc = self._column(mapper, table, column)
            if loc is not None:
                return loc
        return _class_location(cls)

    def _column(self, mapper: Any, table: str, column: str) -> Location | None:
        col = None
        for t in mapper.tables:
            if t.fullname == table and column in t.c:
                col = t.c[column]
        if col is None:
            return None
        try:
            key = mapper.get_property_by_column(col).key
        except Exception:
            key = column
        for klass in mapper.class_.__mro__:
            if key in vars(klass) or key in getattr(klass, "__annotations__", {}):
                loc = _attribute_location(klass, key)
                if loc is not None:
                    return loc
        return None


def _class_location(cls: type) -> Location | None:
    try:
        path = inspect.getsourcefile(cls)
        _, line = inspect.getsourcelines(cls)
    except (OSError, TypeError):
        return None
    if not path:
        return None
    return Location(_rel(path), line)


def _attribute_location(cls: type, key: str) -> Location | None:
    try:
        path = inspect.getsourcefile(cls)
    except TypeError:
        return None
    if not path:
        return None
    tree = _parse(path)
    if tree is None:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == cls.__name__:
            for stmt in node.body:
                targets: list[ast.expr] = []
                if isinstance(stmt, ast.AnnAssign):
                    targets = [stmt.target]
                elif isinstance(stmt, ast.Assign):
                    targets = list(stmt.targets)
                if any(isinstance(t, ast.Name) and t.id == key for t in targets):
                    return Location(_rel(path), stmt.lineno)
    return None


@cache
def _parse(path: str) -> ast.Module | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return ast.parse(fh.read(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return None


def _rel(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel

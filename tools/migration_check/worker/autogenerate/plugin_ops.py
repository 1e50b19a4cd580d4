"""Ops that Alembic extensions add to autogenerate, as findings a reviewer can act on.

Runs in the worker. An extension's op class is looked up by its qualified name, walking the
MRO, so nothing here imports an extension the project does not use. Each describer names
the object as the extension does and locates it at the Python that declares it:

- alembic-postgresql-enum: ENUM labels added, removed or reordered (named and worded as the
  catalog comparison words the same change, which then stays silent about it), ENUM types
  created or dropped.
- alembic-utils: views, functions, triggers, ... (``register_entities``) created, replaced
  or dropped, named ``PGView: public.rich_accounts`` as alembic-utils logs them.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable, Iterator
from typing import Any

from migration_check.findings import Finding, Location
from migration_check.worker.autogenerate.locate import parse_module, relative
from migration_check.worker.catalog.render import enum_change, ident

__all__ = ["ENUM_KINDS", "Found", "declaration", "describe_plugin_op", "entity_name",
           "generic_finding"]  # fmt: skip

# Kinds under which both opinions can report one ENUM type: the catalog's own (labels) and the
# extension's (labels, the type itself). worker/catalog/overlap.py keeps one finding per type.
ENUM_KINDS = frozenset({"add_enum_value", "remove_enum_value", "modify_enum", "add_enum",
                        "remove_enum"})  # fmt: skip

# A finding and the column whose model line locates it (None: the finding's own location).
Found = tuple[Finding, str | None]
_Describer = Callable[[Any, str | None], list[Found]]


def describe_plugin_op(op: Any, default_schema: str | None) -> list[Found] | None:
    """Findings for an extension's op; None when no describer knows its class."""
    for klass in type(op).__mro__:
        describer = _DESCRIBERS.get(f"{klass.__module__}.{klass.__qualname__}")
        if describer is not None:
            return describer(op, default_schema)
    return None


def generic_finding(op: Any, table: str | None) -> Finding:
    """An op no describer knows: still one finding, under one kind, named as well as can be."""
    name = type(op).__name__
    try:
        diff = op.to_diff_tuple()
    except Exception:  # an op without a diff tuple is named by its class alone
        diff = ()
    subject = next((d for d in diff[1:] if isinstance(d, str)), None) if diff else None
    what = f"{name} {subject}" if subject else name
    return Finding(
        "plugin_op",
        table,
        f"{what}: an extension's autogenerate op, pending: a revision is missing",
        name=subject or name,
    )


def _qualified(schema: str | None, name: str, default_schema: str | None) -> str:
    """The ENUM type's name as the catalog comparison prints it: schema only when not the
    default one."""
    if schema and schema != default_schema:
        return f"{ident(schema)}.{ident(name)}"
    return ident(name)


def _table(schema: str | None, name: str, default_schema: str | None) -> str:
    """A table's name as autogenerate's findings give it: the default schema left out."""
    return f"{schema}.{name}" if schema and schema != default_schema else name


def _enum_labels(op: Any, default_schema: str | None) -> list[Found]:
    """AddEnumValuesOp / SyncEnumValuesOp: in the catalog comparison's words."""
    old, new = list(op.old_values), list(op.new_values)
    schema = op.schema if op.schema and op.schema != default_schema else None
    change = enum_change(schema, op.name, old, new, [])
    columns = list(getattr(op, "affected_columns", None) or [])
    table = None
    column = None
    if columns:
        first = columns[0]
        table = _table(getattr(first, "table_schema", None), first.table_name, default_schema)
        column = first.column_name
    finding = Finding(
        change.kind,
        table,
        change.message,
        name=_qualified(op.schema, op.name, default_schema),
        in_database=change.in_database,
        in_models=change.in_models,
    )
    return [(finding, column)]


def _enum_type(op: Any, default_schema: str | None, *, created: bool) -> list[Found]:
    labels = "ENUM (" + ", ".join("'" + v.replace("'", "''") + "'" for v in op.enum_values) + ")"
    name = _qualified(op.schema, op.name, default_schema)
    if created:
        message = f"ENUM {name} `{labels}` in the models, no revision creates it"
        finding = Finding("add_enum", None, message, name=name, in_models=labels)
    else:
        message = f"ENUM {name} `{labels}` in the database, gone from the models"
        finding = Finding("remove_enum", None, message, name=name, in_database=labels)
    return [(finding, None)]


def entity_name(entity: Any) -> str:
    """``PGView: public.rich_accounts``: the entity as alembic-utils names it in its log."""
    return f"{type(entity).__name__}: {entity.schema}.{entity.signature}"


def _entity_table(entity: Any, default_schema: str | None) -> str:
    """What a report groups the entity under: the table a trigger (or policy, grant) is on,
    else the entity itself, the default schema left out as for tables."""
    on = getattr(entity, "on_entity", None)
    if isinstance(on, str) and on:
        schema, _, name = on.rpartition(".")
        return _table(schema or None, name, default_schema)
    return _table(entity.schema, entity.signature, default_schema)


def _entity(op: Any, default_schema: str | None, *, verb: str) -> list[Found]:
    target = op.target
    kind_word = type(target).__name__.removeprefix("PG")
    what = f"{type(target).__name__} {target.schema}.{target.signature}"
    declared = getattr(target, "definition", None)
    in_db = in_models = None
    if verb == "add":
        message = f"{what} is declared (register_entities), no revision creates it"
        in_models = declared
    elif verb == "modify":
        live = getattr(target, "_version_to_replace", None)
        in_db = getattr(live, "definition", None)
        in_models = declared
        message = f"{what}: the declared {kind_word.lower()} differs from the database's"
    else:
        message = f"{what} in the database, no longer declared (register_entities)"
        in_db = declared
    finding = Finding(
        f"{verb}_entity",
        _entity_table(target, default_schema),
        message,
        name=entity_name(target),
        in_database=in_db,
        in_models=in_models,
        location=declaration(target) if verb != "remove" else None,
    )
    return [(finding, None)]


def declaration(obj: Any) -> Location | None:
    """The line of the module-level assignment that binds ``obj`` in a loaded project module.

    alembic-utils compares the very objects given to ``register_entities``, so the module
    whose global names this object is where it is declared (and edited).
    """
    for module in _project_modules():
        try:
            names = [k for k, v in vars(module).items() if v is obj]
        except TypeError:
            continue
        path = getattr(module, "__file__", None)
        if not names or not isinstance(path, str):
            continue
        line = _assignment_line(path, set(names))
        if line is not None:
            return Location(relative(path), line)
    return None


def _project_modules() -> Iterator[Any]:
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if (
            isinstance(path, str)
            and "site-packages" not in path
            and not relative(path).startswith("/")
        ):
            yield module


def _assignment_line(path: str, names: set[str]) -> int | None:
    tree = parse_module(path)
    if tree is None:
        return None
    for stmt in tree.body:
        targets: list[ast.expr] = []
        if isinstance(stmt, ast.Assign):
            targets = list(stmt.targets)
        elif isinstance(stmt, ast.AnnAssign):
            targets = [stmt.target]
        if any(isinstance(t, ast.Name) and t.id in names for t in targets):
            return stmt.lineno
    return None


_DESCRIBERS: dict[str, _Describer] = {
    "alembic_postgresql_enum.operations.add_enum_values.AddEnumValuesOp": _enum_labels,
    "alembic_postgresql_enum.operations.sync_enum_values.SyncEnumValuesOp": _enum_labels,
    "alembic_postgresql_enum.operations.create_enum.CreateEnumOp": lambda op, s: _enum_type(
        op, s, created=True
    ),
    "alembic_postgresql_enum.operations.drop_enum.DropEnumOp": lambda op, s: _enum_type(
        op, s, created=False
    ),
    "alembic_utils.reversible_op.CreateOp": lambda op, s: _entity(op, s, verb="add"),
    "alembic_utils.reversible_op.ReplaceOp": lambda op, s: _entity(op, s, verb="modify"),
    "alembic_utils.reversible_op.DropOp": lambda op, s: _entity(op, s, verb="remove"),
}

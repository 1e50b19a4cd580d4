"""An ``AlterColumnOp`` as findings: one per changed attribute, in PostgreSQL's words.

Types are named by PostgreSQL's type compiler (``TIMESTAMP WITH TIME ZONE``, not ``DATETIME``),
and an identity change, which autogenerate carries as a server default, is called identity.
Runs in the worker.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from migration_check.findings import Finding

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext

__all__ = ["alter_findings", "type_text"]


def type_text(type_: Any, dialect: Any) -> str:
    """A type as PostgreSQL names it (``TIMESTAMP WITH TIME ZONE``, not ``DATETIME``)."""
    try:
        return str(type_.compile(dialect=dialect))
    except Exception:  # a type only its own dialect can compile
        return str(type_)


def alter_findings(
    op: Any, table: str | None, dialect: Any, context: MigrationContext
) -> Iterator[Finding]:
    col = op.column_name
    if op.modify_type is not None:
        models, database = (
            type_text(op.modify_type, dialect),
            type_text(op.existing_type, dialect),
        )
        yield Finding(
            "modify_type",
            table,
            f"type is {models} in the models, {database} in the database",
            column=col,
            in_database=database,
            in_models=models,
        )
    if op.modify_nullable is not None:
        models = "NULL" if op.modify_nullable else "NOT NULL"
        database = "NOT NULL" if op.modify_nullable else "NULL"
        yield Finding(
            "modify_nullable",
            table,
            f"{models} in the models, {database} in the database",
            column=col,
            in_database=database,
            in_models=models,
        )
    if op.modify_server_default is not False:
        identity = _identity_finding(op, table, dialect, context)
        if identity is not None:
            yield identity
        else:
            models, database = (
                _default(op.modify_server_default),
                _default(op.existing_server_default),
            )
            yield Finding(
                "modify_default",
                table,
                f"server default is {models} in the models, {database} in the database",
                column=col,
                in_database=database,
                in_models=models,
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


# Identity options as PostgreSQL words them, in the order it prints them.
_IDENTITY_OPTIONS = {
    "start": "START WITH",
    "increment": "INCREMENT BY",
    "minvalue": "MINVALUE",
    "maxvalue": "MAXVALUE",
    "cache": "CACHE",
    "cycle": "CYCLE",
}


def _identity_finding(
    op: Any, table: str | None, dialect: Any, context: MigrationContext
) -> Finding | None:
    """Autogenerate reports an identity change as a server default; a reviewer says identity."""
    from sqlalchemy import Identity

    models, database = op.modify_server_default, op.existing_server_default
    if not isinstance(models, Identity) and not isinstance(database, Identity):
        return None
    models_text, database_text = _identity_text(models, dialect), _identity_text(database, dialect)
    if isinstance(models, Identity) and isinstance(database, Identity):
        # Only what differs: the database spells out every default the models leave unset.
        try:
            diff, _, _ = context.impl._compare_identity_default(models, database)  # type: ignore[no-untyped-call]
        except Exception:
            diff = set()
        # Models first, as for the server default autogenerate reported this as.
        changes = [
            f"{_identity_option(name, models)} in the models, "
            f"{_identity_option(name, database)} in the database"
            for name in _ordered(diff)
        ]
        message = "identity " + (
            "; ".join(changes) or f"{models_text} in the models, {database_text} in the database"
        )
    else:
        message = f"{models_text} in the models, {database_text} in the database"
    return Finding(
        "modify_identity",
        table,
        message,
        column=op.column_name,
        in_database=database_text,
        in_models=models_text,
    )


def _ordered(names: Iterable[str]) -> list[str]:
    order = ["always", *_IDENTITY_OPTIONS]
    return sorted(names, key=lambda n: (order.index(n) if n in order else len(order), n))


def _identity_option(name: str, identity: Any) -> str:
    value = getattr(identity, name, None)
    if name == "always":
        return "GENERATED ALWAYS" if value else "GENERATED BY DEFAULT"
    if name == "cycle":
        return "CYCLE" if value else "NO CYCLE"
    label = _IDENTITY_OPTIONS.get(name, name.upper())
    return f"{label} {value if value is not None else 'default'}"


def _identity_text(value: Any, dialect: Any) -> str:
    from sqlalchemy import Identity

    if not isinstance(value, Identity):
        return "not an identity column" if value is None else f"default {_default(value)}"
    try:
        return str(dialect.ddl_compiler(dialect, None).visit_identity_column(value))
    except Exception:
        return (
            "GENERATED ALWAYS AS IDENTITY" if value.always else "GENERATED BY DEFAULT AS IDENTITY"
        )


def _default(value: Any) -> str:
    if value is None or value is False:
        return "none"
    arg = getattr(value, "arg", value)
    text = getattr(arg, "text", arg)
    return repr(str(text))

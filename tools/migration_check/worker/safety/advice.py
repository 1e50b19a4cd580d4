"""The safe form of each hazard, as Alembic code to paste in place of the op that caused it.

Built from the op's own call where the revision has one (read from its syntax tree at the line
the statement came from, so names and columns are the user's), else from the names the catalog
gave. Each form is what PostgreSQL's documentation and the measured facts (docs/safety.md)
say takes no long lock.
"""

from __future__ import annotations

import ast
import functools

from migration_check.worker.safety.hazards import Hazard

__all__ = ["safe_form"]

_AUTOCOMMIT = "with op.get_context().autocommit_block():\n    "
_LATER = "# in a later revision (its own transaction):\n"


@functools.cache
def _tree(path: str) -> ast.Module | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return ast.parse(fh.read(), path)
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None


def op_call(path: str, line: int) -> ast.Call | None:
    """The ``op.<name>(...)`` call spanning ``line`` of the revision file, if there is one."""
    tree = _tree(path)
    if tree is None:
        return None
    best: ast.Call | None = None
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "op"
                and node.lineno <= line <= (node.end_lineno or node.lineno)
                and (best is None or node.lineno >= best.lineno)):  # fmt: skip
            best = node
    return best


def _with_keyword(call: ast.Call, name: str) -> str:
    new = ast.Call(call.func, call.args, [k for k in call.keywords if k.arg != name])
    new.keywords.append(ast.keyword(name, ast.Constant(True)))
    return ast.unparse(new)


def _op_name(call: ast.Call | None) -> str:
    return call.func.attr if call is not None and isinstance(call.func, ast.Attribute) else ""


def _arg(call: ast.Call | None, index: int, keyword: str) -> str | None:
    if call is None:
        return None
    for k in call.keywords:
        if k.arg == keyword:
            return ast.unparse(k.value)
    return ast.unparse(call.args[index]) if len(call.args) > index else None


def _sql(text: str) -> str:
    return 'op.execute("' + " ".join(text.split()).replace('"', '\\"') + '")'


def safe_form(h: Hazard) -> str:
    """Pasteable code for ``h``; empty when no mechanical form exists."""
    call = op_call(h.step.file, h.step.line)
    name, table, n = _op_name(call), h.table, h.names
    statement = " ".join(h.step.statement.split())
    if h.kind in ("create_index", "drop_index", "concurrently_in_transaction"):
        if call is not None and name in ("create_index", "drop_index"):
            return _AUTOCOMMIT + _with_keyword(call, "postgresql_concurrently")
        verb = "CREATE INDEX" if h.kind == "create_index" else "DROP INDEX"
        if h.kind == "concurrently_in_transaction":
            return _AUTOCOMMIT + (ast.unparse(call) if call is not None else _sql(statement))
        fixed = statement.replace(verb, f"{verb} CONCURRENTLY", 1).replace(
            "CREATE UNIQUE INDEX", "CREATE UNIQUE INDEX CONCURRENTLY", 1)  # fmt: skip
        return _AUTOCOMMIT + _sql(fixed)
    if h.kind == "constraint_validated":
        con = n["constraint"]
        if call is not None and name in ("create_check_constraint", "create_foreign_key"):
            first = _with_keyword(call, "postgresql_not_valid")
        else:
            first = _sql(f"ALTER TABLE {table} ADD CONSTRAINT {con} {n['definition']} NOT VALID")
        return f"{first}\n{_LATER}{_sql(f'ALTER TABLE {table} VALIDATE CONSTRAINT {con}')}"
    if h.kind == "validate_same_transaction":
        con = n["constraint"]
        return f"{_LATER}{_sql(f'ALTER TABLE {table} VALIDATE CONSTRAINT {con}')}"
    if h.kind == "set_not_null":
        col = n["column"]
        check = f"ck_{table.split('.')[-1]}_{col}_not_null"
        return (
            f'op.create_check_constraint("{check}", "{table}", "{col} IS NOT NULL", '
            f"postgresql_not_valid=True)\n{_LATER}"
            f"{_sql(f'ALTER TABLE {table} VALIDATE CONSTRAINT {check}')}\n"
            f'op.alter_column("{table}", "{col}", nullable=False)  # no scan: the CHECK proves it\n'
            f'op.drop_constraint("{check}", "{table}", type_="check")'
        )
    if h.kind == "unique_constraint":
        index, con, kind = n["index"], n["constraint"], n["type"]
        columns = _arg(call, 2, "columns") or "[...]"
        return (
            f'{_AUTOCOMMIT}op.create_index("{index}", "{table}", {columns}, unique=True, '
            f"postgresql_concurrently=True)\n"
            f"{_sql(f'ALTER TABLE {table} ADD CONSTRAINT {con} {kind} USING INDEX {index}')}"
        )
    if h.kind == "table_rewrite":
        return _rewrite(call, name, table)
    if h.kind == "not_null_without_default":
        col = n["column"]
        return (
            f"# add it nullable (or with a constant server_default), fill it, then:\n"
            f'op.add_column("{table}", sa.Column("{col}", ..., nullable=True))\n'
            f"# backfill in batches, then the SET NOT NULL steps (a NOT VALID CHECK first)"
        )
    return _advice(h)


def _rewrite(call: ast.Call | None, name: str, table: str) -> str:
    if name == "alter_column":
        col = (_arg(call, 1, "column_name") or '"col"').strip("'\"")
        type_ = _arg(call, 99, "type_") or "..."
        return (
            "# expand: a new column, written by the code alongside the old one\n"
            f'op.add_column("{table}", sa.Column("{col}_new", {type_}, nullable=True))\n'
            f"# backfill {col}_new in batches; switch reads; then, in a later revision:\n"
            f'# op.drop_column("{table}", "{col}")\n'
            f'# op.alter_column("{table}", "{col}_new", new_column_name="{col}")'
        )
    if name == "add_column":
        return (
            "# add the column without the volatile default (no rewrite), then set it for new rows\n"
            f"op.add_column({table!r}, sa.Column(..., nullable=True))\n"
            f'op.alter_column("{table}", "...", server_default=sa.text("..."))\n'
            "# and backfill the existing rows in batches"
        )
    return "# copy into a new table (or column) in batches and switch to it, instead of rewriting"


def _advice(h: Hazard) -> str:
    table, n = h.table, h.names
    if h.kind == "lock_timeout":
        return (
            "op.execute(\"SET lock_timeout = '5s'\")  # first line of upgrade(); retry on timeout"
        )
    if h.kind == "lock_held":
        return (
            "# give the locking op its own revision, and each revision its own transaction:\n"
            "# context.configure(..., transaction_per_migration=True) in env.py"
        )
    if h.kind == "drop_column":
        return (
            f"# expand/contract: 1. release code that no longer reads or writes {n['column']}\n"
            "# 2. then drop it in a revision of a later release (this op, unchanged)"
        )
    if h.kind == "rename_column":
        old, new = n["column"], n["new"]
        return (
            f'op.add_column("{table}", sa.Column("{new}", ...))  # expand: both exist\n'
            f"# code writes both; backfill {new} from {old}; code reads {new}; later revision:\n"
            f'# op.drop_column("{table}", "{old}")'
        )
    if h.kind in ("drop_table", "rename_table"):
        return (
            "# expand/contract: release code that no longer uses the old name (for a rename,\n"
            "# a view under the old name bridges the release), then drop it in a later revision"
        )
    if h.kind == "fk_without_index":
        columns = n.get("columns", "...")
        index = f"ix_{table.split('.')[-1]}_{columns.replace(', ', '_')}"
        return (
            f'{_AUTOCOMMIT}op.create_index("{index}", '
            f'"{table}", [{", ".join(repr(c) for c in columns.split(", "))}], '
            "postgresql_concurrently=True)"
        )
    if h.kind == "invalid_index":
        index = n["index"]
        return (
            f'{_AUTOCOMMIT}op.execute("DROP INDEX CONCURRENTLY IF EXISTS {index}")\n'
            "# then build it again, concurrently"
        )
    return ""

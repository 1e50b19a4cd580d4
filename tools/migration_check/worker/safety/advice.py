"""The safe form of each hazard, as Alembic code to paste in place of the op that caused it.

Built from the op's own call where the revision has one (read from its syntax tree at the line
the statement came from, so names and columns are the user's), else from the names the catalog
gave. Each form is what PostgreSQL's documentation and the measured facts (docs/safety.md)
say takes no long lock.
"""

from __future__ import annotations

import ast
import functools
import re

from migration_check.worker.safety import forms_text as t
from migration_check.worker.safety.hazards import Hazard
from migration_check.worker.safety.rewrite_forms import added_column, arg, not_null_steps, rewrite

__all__ = ["op_call", "safe_form"]

_AUTOCOMMIT = t.AUTOCOMMIT + "\n    "


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


_sql = t.sql


def safe_form(h: Hazard) -> str:
    """Pasteable code for ``h``; empty when no mechanical form exists.

    A form that needs two revisions says so: its second part starts at ``forms_text.later()``'s
    label line, and the part before it replaces the op in this revision.
    """
    call = op_call(h.step.file, h.step.line)
    name, table, n = _op_name(call), h.table, h.names
    schema, bare = t.split_table(table)
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
            first = _sql(f"ALTER TABLE {t.table_sql(schema, bare)} ADD CONSTRAINT {t.quote(con)} "
                         f"{n['definition']} NOT VALID")  # fmt: skip
        return (f"{t.FIRST} added NOT VALID: a brief lock, no scan; new rows are checked\n"
                f"{first}\n{t.later()}\n{t.validate_op(schema, bare, con)}"
                "  # scans, under SHARE UPDATE EXCLUSIVE: reads and writes go on")  # fmt: skip
    if h.kind == "validate_same_transaction":
        con = n["constraint"]
        return (f"{t.FIRST} remove this VALIDATE (the constraint stays NOT VALID)\n{t.later()}\n"
                f"{t.validate_op(schema, bare, con)}")  # fmt: skip
    if h.kind == "set_not_null":
        first, second = not_null_steps(schema, bare, n["column"], call)
        return f"{t.FIRST}\n{first}\n{t.later()}\n{second}"
    if h.kind == "unique_constraint":
        return _unique(h, schema, bare)
    if h.kind == "table_rewrite":
        return rewrite(call, h, schema, bare)
    if h.kind == "not_null_without_default":
        return added_column(call, h, schema, bare)
    return _advice(h, call, schema, bare)


_UNIQUE = re.compile(r"^(?P<kind>UNIQUE|PRIMARY KEY)(?P<nulls> NULLS NOT DISTINCT)? "
                     r"\((?P<cols>[^)]*)\)(?: INCLUDE \((?P<include>[^)]*)\))?"
                     r"(?P<tail>.*)$")  # fmt: skip


def _columns(text: str) -> str:
    names = [c.strip().strip('"').replace('""', '"') for c in text.split(",")]
    return "[" + ", ".join(t.py(c) for c in names) + "]"


def _unique(h: Hazard, schema: str | None, table: str) -> str:
    """A unique index built CONCURRENTLY, then the constraint attached to it (no build)."""
    index, con, kind = h.names["index"], h.names["constraint"], h.names["type"]
    m = _UNIQUE.match(h.names.get("definition", ""))
    if m is None or "WHERE" in m["tail"]:
        columns, extra, tail = "[...]", "", ""
    else:
        columns, tail = _columns(m["cols"]), m["tail"].strip()
        extra = ", postgresql_nulls_not_distinct=True" if m["nulls"] else ""
        if m["include"]:
            extra += f", postgresql_include={_columns(m['include'])}"
    on = f", schema={t.py(schema)}" if schema else ""
    lines = [
        "# the unique index built CONCURRENTLY (writes go on), then the constraint on it "
        "(a brief lock, no build)",
        f"{_AUTOCOMMIT}op.create_index(op.f({t.py(index)}), {t.py(table)}, {columns}, "
        f"unique=True{on}{extra}, postgresql_concurrently=True)",
        _sql(t.attach_sql(schema, table, con, kind, index, tail)),
    ]
    if kind == "PRIMARY KEY":
        lines.insert(0, "# its columns must be NOT NULL already: else the ADD scans for NULLs "
                        "(the set_not_null safe form first)")  # fmt: skip
    return "\n".join(lines)


def _advice(h: Hazard, call: ast.Call | None, schema: str | None, table: str) -> str:
    n = h.names
    on = f", schema={t.py(schema)}" if schema else ""
    if h.kind == "lock_timeout":
        return f"{t.sql(t.lock_timeout_sql())}  # first line of upgrade(); retry on timeout"
    if h.kind == "lock_held":
        return (
            "# give the locking op its own revision, and each revision its own transaction:\n"
            "# context.configure(..., transaction_per_migration=True) in env.py"
        )
    if h.kind == "drop_column":
        col = n["column"]
        return (
            f"# expand/contract: first release code that no longer reads or writes {col} (drop\n"
            f"# the attribute from the model), then in {t.later('the next release').lstrip('# ')}\n"
            f"op.drop_column({t.py(table)}, {t.py(col)}{on})"
        )
    if h.kind == "rename_column":
        return _rename_column(call, schema, table, n["column"], n["new"])
    if h.kind == "drop_table":
        return (
            f"# expand/contract: first release code that no longer uses {h.table}, then in\n"
            f"# {t.later('the next release').lstrip('# ')}\nop.drop_table({t.py(table)}{on})"
        )
    if h.kind == "rename_table":
        _, new = t.split_table(n["new"])
        old_sql, new_sql = t.table_sql(schema, table), t.table_sql(schema, new)
        view = f"CREATE VIEW {old_sql} AS SELECT * FROM {new_sql}"
        return (
            f"{t.FIRST} the rename, and a view under the old name for the code still deployed\n"
            f"# (a plain view: its reads and writes go to {new})\n"
            f"op.rename_table({t.py(table)}, {t.py(new)}{on})\n{_sql(view)}\n"
            f"{t.later('the release after the code uses ' + new)}\n"
            f"{_sql('DROP VIEW ' + t.table_sql(schema, table))}"
        )
    if h.kind == "fk_without_index":
        columns = [c.strip().strip('"') for c in n.get("columns", "...").split(",")]
        index = f"ix_{table}_{'_'.join(columns)}"
        return (
            f"{_AUTOCOMMIT}op.create_index(op.f({t.py(index)}), {t.py(table)}, "
            f"[{', '.join(t.py(c) for c in columns)}]{on}, postgresql_concurrently=True)"
        )
    if h.kind == "invalid_index":
        index = n["index"]
        return (
            f'{_AUTOCOMMIT}op.execute("DROP INDEX CONCURRENTLY IF EXISTS {index}")\n'
            "# then build it again, concurrently"
        )
    return ""


def _rename_column(call: ast.Call | None, schema: str | None, table: str, old: str, new: str
                   ) -> str:  # fmt: skip
    """Expand/contract: a new column beside the old one, filled, then the old one dropped."""
    type_ = arg(call, 99, "existing_type") or "...  # the type of " + old
    on = f", schema={t.py(schema)}" if schema else ""
    fill = t.backfill(schema, table, f"{t.quote(new)} = {t.quote(old)}",
                      f"{t.quote(new)} IS DISTINCT FROM {t.quote(old)}")  # fmt: skip
    return (
        f"{t.FIRST} expand: {new} beside {old}; from here the code writes both\n"
        f"op.add_column({t.py(table)}, sa.Column({t.py(new)}, {type_}, nullable=True){on})\n"
        f"{fill}\n{t.later('the release after the code reads ' + new)}\n"
        f"op.drop_column({t.py(table)}, {t.py(old)}{on})"
    )

"""Safe forms that change a column: a rewrite avoided (expand/contract), NOT NULL proved first.

Built from the op's own ``sa.Column(...)`` / ``alter_column(...)`` call (its names, type and
options as the user wrote them), else from the observed statement. The facts each form rests
on (a constant or stable default, SET DEFAULT, a NOT VALID CHECK and ADD GENERATED ... AS
IDENTITY do not rewrite; SET NOT NULL skips its scan when a valid CHECK proves it, PostgreSQL
12+) are measured in docs/safety.md.
"""

from __future__ import annotations

import ast
import re

from migration_check.worker.safety import forms_text as t
from migration_check.worker.safety.hazards import Hazard

__all__ = ["added_column", "arg", "not_null_steps", "rewrite"]


def arg(call: ast.Call | None, index: int, keyword: str) -> str | None:
    """The source of the call's argument ``keyword`` (or its ``index``-th positional one)."""
    if call is None:
        return None
    for k in call.keywords:
        if k.arg == keyword:
            return ast.unparse(k.value)
    return ast.unparse(call.args[index]) if len(call.args) > index else None


def _literal(call: ast.Call | None, index: int, keyword: str) -> object:
    text = arg(call, index, keyword)
    try:
        return ast.literal_eval(text) if text is not None else None
    except (ValueError, SyntaxError):
        return None


def _on(schema: str | None) -> str:
    return f", schema={t.py(schema)}" if schema else ""


def not_null_steps(schema: str | None, table: str, column: str, call: ast.Call | None = None
                   ) -> tuple[str, str]:  # fmt: skip
    """SET NOT NULL without its scan under ACCESS EXCLUSIVE: (this revision, a later one).

    The NOT VALID CHECK takes a brief lock; VALIDATE scans under SHARE UPDATE EXCLUSIVE (reads
    and writes go on); then SET NOT NULL finds the valid CHECK and does not scan. ``call``: the
    user's own ``alter_column(..., nullable=False)``, kept when that is all it does.
    """
    check, on = t.check_name(table, column), _on(schema)
    first = (f"op.create_check_constraint(op.f({t.py(check)}), {t.py(table)}, "
             f"{t.py(t.quote(column) + ' IS NOT NULL')}{on}, postgresql_not_valid=True)"
             "  # a brief lock, no scan; new rows are checked")  # fmt: skip
    only_nullable = (
        call is not None and isinstance(call.func, ast.Attribute)
        and call.func.attr == "alter_column"
        and all(k.arg == "nullable" or (k.arg or "").startswith("existing_") for k in call.keywords)
    )  # fmt: skip
    alter = (ast.unparse(call) if only_nullable and call is not None else
             f"op.alter_column({t.py(table)}, {t.py(column)}, nullable=False{on})")  # fmt: skip
    second = (f"{t.validate_op(schema, table, check, '  # scans; reads and writes go on')}\n"
              f"{alter}  # no scan: the valid CHECK proves it (PostgreSQL 12+)\n"
              f"op.drop_constraint(op.f({t.py(check)}), {t.py(table)}{on}, "
              'type_="check")')  # fmt: skip
    return first, second


def _column_call(call: ast.Call | None) -> ast.Call | None:
    """The ``sa.Column(...)`` an ``add_column`` call adds."""
    if call is None or not isinstance(call.func, ast.Attribute) or call.func.attr != "add_column":
        return None
    col = next((k.value for k in call.keywords if k.arg == "column"), None)
    if col is None and len(call.args) > 1:
        col = call.args[1]
    return col if isinstance(col, ast.Call) else None


def _callee(node: ast.expr) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def _plain(col: ast.Call, *, drop: tuple[str, ...], positional: tuple[str, ...] = (),
           extra: dict[str, str] | None = None) -> ast.Call:  # fmt: skip
    """``col`` without the keywords ``drop`` and the positional calls ``positional``."""
    args = [a for a in col.args if _callee(a) not in positional]
    keywords = [k for k in col.keywords if k.arg not in drop]
    for key, value in (extra or {}).items():
        keywords.append(ast.keyword(key, ast.parse(value, mode="eval").body))
    return ast.Call(col.func, args, keywords)


def _column_type(col: ast.Call) -> str:
    return ast.unparse(col.args[1]) if len(col.args) > 1 else arg(col, 99, "type_") or ""


def _not_null(col: ast.Call) -> bool:
    values = {k.arg: k.value for k in col.keywords}
    flag = values.get("nullable", values.get("primary_key"))
    if "nullable" in values:
        return isinstance(flag, ast.Constant) and flag.value is False
    return isinstance(flag, ast.Constant) and flag.value is True


_RETYPE = re.compile(r"ALTER COLUMN (?P<col>\S+) (?:SET DATA )?TYPE (?P<type>.+?)"
                     r"(?: USING (?P<using>.+))?$", re.IGNORECASE)  # fmt: skip


def rewrite(call: ast.Call | None, h: Hazard, schema: str | None, table: str) -> str:
    """The expand/contract steps that reach the op's end state without rewriting ``table``."""
    name = call.func.attr if call is not None and isinstance(call.func, ast.Attribute) else ""
    if name == "alter_column" and arg(call, 99, "type_") is not None:
        column = _literal(call, 1, "column_name")
        if isinstance(column, str):
            new = f"{column}_new"
            add = (f"op.add_column({t.py(table)}, sa.Column({t.py(new)}, {arg(call, 99, 'type_')}, "
                   f"nullable=True){_on(schema)})")  # fmt: skip
            using = _literal(call, 99, "postgresql_using")
            return _retype(schema, table, column, add, using if isinstance(using, str) else None,
                           not_null=_literal(call, 99, "existing_nullable") is False,
                           default=arg(call, 99, "existing_server_default"))  # fmt: skip
    col = _column_call(call)
    if col is not None and col.args and isinstance(col.args[0], ast.Constant):
        return _added(col, str(col.args[0].value), schema, table)
    m = _RETYPE.search(" ".join(h.step.statement.split()))
    if m is not None:
        column = m["col"].strip('"')
        add = t.sql(f"ALTER TABLE {t.table_sql(schema, table)} ADD COLUMN "
                    f"{t.quote(column + '_new')} {m['type']}")  # fmt: skip
        return _retype(schema, table, column, add, m["using"], not_null=False, default=None)
    return (f"# copy {h.table} into a new table (or column) in batches and switch to it, instead "
            "of rewriting it under ACCESS EXCLUSIVE")  # fmt: skip


def _retype(schema: str | None, table: str, column: str, add: str, using: str | None, *,
            not_null: bool, default: str | None) -> str:  # fmt: skip
    """A type change as a new column filled in batches, then swapped in a later release."""
    new, on = f"{column}_new", _on(schema)
    value = f"({using})" if using else t.quote(column)
    lines = [f"{t.FIRST} expand: {new} of the new type beside {column}; from here the code "
             f"writes both (or a trigger does)", add]  # fmt: skip
    if default:
        lines.append(f"op.alter_column({t.py(table)}, {t.py(new)}, server_default={default}{on})")
    lines.append(t.backfill(schema, table, f"{t.quote(new)} = {value}",
                            f"{t.quote(new)} IS NULL AND {value} IS NOT NULL"))  # fmt: skip
    second: list[str] = []
    if not_null:
        first_nn, second_nn = not_null_steps(schema, table, new)
        lines.append(first_nn)
        second.append(second_nn)
    lines.append(f"# indexes and constraints on {column}: build them on {new} too, concurrently")
    second += [
        f"op.drop_column({t.py(table)}, {t.py(column)}{on})",
        f"op.alter_column({t.py(table)}, {t.py(new)}, new_column_name={t.py(column)}{on})",
    ]
    label = t.later(f"the release after the code reads {new}")
    return "\n".join([*lines, label, *second])


_SERIAL = {"SMALLSERIAL": "sa.SmallInteger()", "BIGSERIAL": "sa.BigInteger()",
           "SERIAL": "sa.Integer()"}  # fmt: skip


def _added(col: ast.Call, column: str, schema: str | None, table: str) -> str:
    """ADD COLUMN that rewrites: a volatile default, serial, identity or a stored generated one."""
    on, type_ = _on(schema), _column_type(col)
    callees = {_callee(a): a for a in col.args}
    serial = next((s for s in _SERIAL if re.search(rf"\b{s}\b", type_, re.IGNORECASE)), None)
    if "Computed" in callees:
        virtual = _plain(col, drop=(), positional=("Computed",))
        computed = callees["Computed"]
        assert isinstance(computed, ast.Call)
        virtual.args.append(ast.Call(computed.func, computed.args,
            [k for k in computed.keywords if k.arg != "persisted"]
            + [ast.keyword("persisted", ast.Constant(False))]))  # fmt: skip
        return ("# a STORED generated column rewrites the table in any order; a VIRTUAL one "
                "(PostgreSQL 18+, computed on read) does not:\n"
                f"op.add_column({t.py(table)}, {ast.unparse(virtual)}{on})\n"
                "# before 18: a plain column kept by a trigger and filled in batches")  # fmt: skip
    target = t.table_sql(schema, table)
    plain = _plain(col, drop=("server_default", "nullable", "primary_key", "autoincrement"),
                   positional=("Identity",), extra={"nullable": "True"})  # fmt: skip
    if serial is not None:
        plain.args[1] = ast.parse(_SERIAL[serial], mode="eval").body
    lines = [f"{t.FIRST} the column without its default (no rewrite), the default for new rows, "
             "then the existing rows in batches", f"op.add_column({t.py(table)}, "
             f"{ast.unparse(plain)}{on})"]  # fmt: skip
    sequence = f"{table}_{column}_seq"[:63]
    identity = callees.get("Identity")
    if serial is not None or identity is not None:
        seq = t.table_sql(schema, sequence)
        lines.append(t.sql(f"CREATE SEQUENCE {seq} OWNED BY {target}.{t.quote(column)}"))
        default = f"sa.text({t.py(f'nextval({seq!r}::regclass)')})"
    else:
        default = arg(col, 99, "server_default") or "..."
    lines.append(f"op.alter_column({t.py(table)}, {t.py(column)}, server_default={default}{on})")
    lines.append(t.backfill(schema, table, f"{t.quote(column)} = DEFAULT",
                            f"{t.quote(column)} IS NULL"))  # fmt: skip
    if not (_not_null(col) or identity is not None or serial is not None):
        return "\n".join(lines)
    first, second = not_null_steps(schema, table, column)
    lines += [first, t.later()]
    lines.append(second)
    if identity is not None:
        always = "ALWAYS" if "always=True" in ast.unparse(identity) else "BY DEFAULT"
        literal = t.py(target).strip('"').replace("'", "''")
        lines += [
            f"op.alter_column({t.py(table)}, {t.py(column)}, server_default=None{on})",
            t.sql(f"DROP SEQUENCE {t.table_sql(schema, sequence)}"),
            t.sql(f"ALTER TABLE {target} ALTER COLUMN {t.quote(column)} ADD GENERATED {always} "
                  "AS IDENTITY"),
            t.sql(f"SELECT setval(pg_get_serial_sequence('{literal}', '{column}'), "
                  f"(SELECT max({t.quote(column)}) FROM {target}))"),
        ]  # fmt: skip
    return "\n".join(lines)


# A constant (or stable) default per type: existing rows get it without a rewrite (PG 11+).
_CONSTANTS = (("interval", "'0'"), ("json", "'{}'"), ("array", "'{}'"), ("bool", "false"),
              ("datetime|timestamp", "now()"), ("date", "CURRENT_DATE"), ("time", "'00:00'"),
              ("uuid", "'00000000-0000-0000-0000-000000000000'"), ("binary|bytea", "''"),
              ("int|numeric|decimal|float|double|real", "0"),
              ("string|text|char|unicode", "''"))  # fmt: skip


def added_column(call: ast.Call | None, h: Hazard, schema: str | None, table: str) -> str:
    """NOT NULL without a default on a table with rows: a constant default, dropped after."""
    column, on = h.names["column"], _on(schema)
    col = _column_call(call)
    type_ = _column_type(col).lower() if col is not None else ""
    constant = next((v for k, v in _CONSTANTS if re.search(k, type_)), None) if type_ else None
    if col is not None and constant is not None:
        with_default = _plain(col, drop=("server_default",),
                              extra={"server_default": f"sa.text({t.py(constant)})"})  # fmt: skip
        return (f"# {constant}: what the existing rows get (no rewrite, PostgreSQL 11+); pick "
                "their value; the ALTER drops the default for new rows\n"
                f"op.add_column({t.py(table)}, {ast.unparse(with_default)}{on})\n"
                f"op.alter_column({t.py(table)}, {t.py(column)}, "
                f"server_default=None{on})")  # fmt: skip
    first, second = not_null_steps(schema, table, column)
    return (f"{t.FIRST} add {column} nullable; the code writes it from here; fill the existing "
            f"rows (the value is yours)\n# op.add_column({t.py(table)}, sa.Column({t.py(column)},"
            f" <its type>, nullable=True){on})\n{first}\n{t.later()}\n{second}")  # fmt: skip

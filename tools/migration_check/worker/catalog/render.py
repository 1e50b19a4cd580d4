"""Catalog differences in a reviewer's words, and the revision code to write for each by hand.

Both sides are quoted as PostgreSQL prints them. The op code is what autogenerate would write
if it could see the change: ``op.*`` calls where Alembic has one that says it exactly, else
``op.execute()`` with the statement built from the models database's own catalog text.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence as Seq
from dataclasses import dataclass

from migration_check.worker.catalog.sql import Column, Constraint, Index, Sequence

__all__ = ["Change", "TableRef", "column_changes", "constraint_change", "enum_change", "ident",
           "index_change", "keep_defaults", "table_comment_change"]  # fmt: skip

_CONSTRAINT_WORDS = {"c": "CHECK constraint", "f": "foreign key", "p": "primary key",
                     "u": "unique constraint", "x": "exclusion constraint"}  # fmt: skip
_FAMILY = {"c": "check", "f": "fk", "p": "pk", "u": "unique", "x": "exclude"}
_DROP_TYPE = {"c": "check", "f": "foreignkey", "p": "primary", "u": "unique"}


@dataclass(frozen=True)
class TableRef:
    """A table compared on both sides: its name as findings show it and as SQL needs it."""

    fullname: str  # ``table`` or ``schema.table``, as autogenerate's findings name it
    name: str
    schema: str | None  # None: the default schema

    @property
    def sql(self) -> str:
        return f"{_ident(self.schema)}.{_ident(self.name)}" if self.schema else _ident(self.name)

    def args(self) -> str:
        """``'table'`` or ``'table', schema='s'`` for an op call after the object's name."""
        return repr(self.name) + (f", schema={self.schema!r}" if self.schema else "")


@dataclass(frozen=True)
class Change:
    kind: str
    message: str
    in_database: str | None
    in_models: str | None
    op: str
    column: str | None = None
    name: str | None = None


def ident(name: str) -> str:
    """``name`` as SQL needs it: quoted unless a plain lower-case identifier."""
    if name.isidentifier() and name.islower() and name.isascii():
        return name
    return '"' + name.replace('"', '""') + '"'


_ident = ident


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _execute(sql: str) -> str:
    """``op.execute("...")``; a long statement as adjacent literals, so no line passes 100
    columns once the revision's formatter has indented it (no formatter splits a string)."""
    one = f"op.execute({sql!r})"
    if len(one) <= 80:
        return one
    pieces: list[str] = []
    line = ""
    for word in sql.split(" "):
        if line and len(line) + len(word) > 60:
            pieces.append(line)
            line = ""
        line += word + " "
    pieces.append(line.rstrip(" "))
    body = "\n".join(f"    {piece!r}" for piece in pieces)
    return f"op.execute(\n{body}\n)"


def _show(value: str | None, none: str = "none") -> str:
    return f"`{value}`" if value is not None else none


def _alter(table: TableRef, column: str, clause: str) -> str:
    return _execute(f"ALTER TABLE {table.sql} ALTER COLUMN {_ident(column)} {clause}")


def column_changes(
    table: TableRef,
    db: Column,
    models: Column,
    db_seq: Sequence | None,
    models_seq: Sequence | None,
) -> list[Change]:
    """Every way one column differs; each a separate problem with its own fix."""
    out: list[Change] = []
    col = db.name

    def add(kind: str, message: str, was: str | None, now: str | None, op: str) -> None:
        out.append(Change(kind, message, was, now, op, column=col))

    def alter_column(**kw: object) -> str:
        args = "".join(f", {k}={v}" for k, v in kw.items())
        schema = f", schema={table.schema!r}" if table.schema else ""
        return f"op.alter_column({table.name!r}, {col!r}{args}{schema})"

    if db.type != models.type:
        using = f"TYPE {models.type} USING {_ident(col)}::{models.type}"
        message = f"type is `{models.type}` in the models, `{db.type}` in the database"
        add("modify_type", message, db.type, models.type, _alter(table, col, using))
    if db.not_null != models.not_null:
        m, d = ("NOT NULL", "NULL") if models.not_null else ("NULL", "NOT NULL")
        message = f"{m} in the models, {d} in the database"
        add("modify_nullable", message, d, m, alter_column(nullable=not models.not_null))
    if db.identity != models.identity:
        was, now = _identity(db.identity), _identity(models.identity)
        op = _identity_op(table, col, db.identity, models)
        add("modify_identity", f"{now} in the models, {was} in the database", was, now, op)
    elif db_seq is not None and models_seq is not None and db_seq.owner == models_seq.owner:
        _sequence_change(table, col, db_seq, models_seq, add)
    if db.generated != models.generated or db.generated_kind != models.generated_kind:
        message = (
            f"generated as {_generated(models)} in the models, {_generated(db)} in the database"
        )
        was_sql, now_sql = _generated_sql(db), _generated_sql(models)
        add("modify_computed", message, was_sql, now_sql, _computed_op(table, models))
    elif (
        db.default != models.default
        and db.identity == models.identity
        and not _both_serial(db, models, db_seq, models_seq)
    ):
        new = f"sa.text({models.default!r})" if models.default else "None"
        message = (
            f"server default is {_show(models.default)} in the models, "
            f"{_show(db.default)} in the database"
        )
        add("modify_default", message, db.default, models.default, alter_column(server_default=new))
    if db.collation != models.collation and db.type == models.type:
        coll = models.collation or 'pg_catalog."default"'
        message = (
            f"collation is {models.collation or 'the default'} in the models, "
            f"{db.collation or 'the default'} in the database"
        )
        op = _alter(table, col, f"TYPE {models.type} COLLATE {coll}")
        add("modify_collation", message, db.collation, models.collation, op)
    if db.comment != models.comment:
        message = f"comment is {models.comment!r} in the models, {db.comment!r} in the database"
        op = alter_column(comment=repr(models.comment))
        add("modify_comment", message, db.comment, models.comment, op)
    return out


def _sequence_change(
    table: TableRef, col: str, db: Sequence, models: Sequence, add: Callable[..., None]
) -> None:
    """A serial's or identity's sequence options (never its name: see ``Sequence.options``)."""
    old, new = db.options(), models.options()
    changed = {k: v for k, v in new.items() if old.get(k) != v}
    if not changed:
        return
    clause = " ".join(_seq_option(k, v) for k, v in changed.items())
    was = " ".join(_seq_option(k, old[k]) for k in changed)
    if db.owner == "i":
        what = "identity"
        op = _alter(table, col, " ".join(f"SET {_seq_option(k, v)}" for k, v in changed.items()))
    else:
        what = f"sequence {db.name}"
        op = _execute(f"ALTER SEQUENCE {_ident(db.name)} {clause}")
    message = f"{what} has {clause} in the models, {was} in the database"
    add("modify_sequence", message, was, clause, op)


def _both_serial(db: Column, models: Column, a: Sequence | None, b: Sequence | None) -> bool:
    """Serial defaults name their sequence, which keeps its old name when a table is renamed."""
    return (
        a is not None
        and b is not None
        and bool(db.default and db.default.startswith("nextval("))
        and bool(models.default and models.default.startswith("nextval("))
    )


def _identity(code: str) -> str:
    return {"a": "GENERATED ALWAYS AS IDENTITY", "d": "GENERATED BY DEFAULT AS IDENTITY"}.get(
        code, "no identity"
    )


def _identity_op(table: TableRef, col: str, was: str, models: Column) -> str:
    if not models.identity:
        return _alter(table, col, "DROP IDENTITY")
    when = "ALWAYS" if models.identity == "a" else "BY DEFAULT"
    if not was:
        return _alter(table, col, f"ADD GENERATED {when} AS IDENTITY")
    return _alter(table, col, f"SET GENERATED {when}")


def _seq_option(key: str, value: object) -> str:
    if key == "CYCLE":
        return "CYCLE" if value else "NO CYCLE"
    return f"{key} {value}"


def _generated(col: Column) -> str:
    if col.generated is None:
        return "not generated"
    return f"`{_generated_sql(col)}`"


def _generated_sql(col: Column) -> str | None:
    if col.generated is None:
        return None
    stored = "VIRTUAL" if col.generated_kind == "v" else "STORED"
    return f"GENERATED ALWAYS AS ({col.generated}) {stored}"


def _computed_op(table: TableRef, models: Column) -> str:
    if models.generated is None:
        return _alter(table, models.name, "DROP EXPRESSION")
    # PostgreSQL before 17 cannot change a generation expression in place.
    return "\n".join([
        _execute(f"ALTER TABLE {table.sql} DROP COLUMN {_ident(models.name)}"),
        _execute(f"ALTER TABLE {table.sql} ADD COLUMN {_ident(models.name)} {models.type} "
                 f"{_generated_sql(models)}"),
    ])  # fmt: skip


def table_comment_change(table: TableRef, db: str | None, models: str | None) -> Change:
    if models is None:
        op = f"op.drop_table_comment({table.args()})"
    else:
        op = f"op.create_table_comment({table.args()}, {models!r})"
    return Change("modify_table_comment", f"table comment is {models!r} in the models, "
                  f"{db!r} in the database", db, models, op)  # fmt: skip


def constraint_family(ctype: str) -> str:
    return _FAMILY.get(ctype, "constraint")


def _drop_constraint(table: TableRef, c: Constraint) -> str:
    type_ = _DROP_TYPE.get(c.type)
    return (
        f"op.drop_constraint(op.f({c.name!r}), {table.args()}"
        + (f", type_={type_!r}" if type_ else "")
        + ")"
    )


def _create_constraint(table: TableRef, c: Constraint) -> str:
    if c.type == "c" and c.definition.startswith("CHECK "):
        expr = c.definition.removeprefix("CHECK ")
        return f"op.create_check_constraint(op.f({c.name!r}), {table.args()}, {expr!r})"
    if c.type == "p" and c.definition.startswith("PRIMARY KEY (") and c.columns:
        return f"op.create_primary_key(op.f({c.name!r}), {table.args()}, {list(c.columns)!r})"
    return _execute(f"ALTER TABLE {table.sql} ADD CONSTRAINT {_ident(c.name)} {c.definition}")


def constraint_change(table: TableRef, db: Constraint | None, models: Constraint | None) -> Change:
    """One constraint added, removed, edited or renamed."""
    some = models or db
    assert some is not None
    family = constraint_family(some.type)
    words = _CONSTRAINT_WORDS.get(some.type, "constraint")
    if db is None:
        assert models is not None
        return Change(f"add_{family}", f"{words} {models.name} `{models.definition}` in the "
                      "models, no revision creates it", None, models.definition,
                      _create_constraint(table, models), name=models.name)  # fmt: skip
    if models is None:
        return Change(f"remove_{family}", f"{words} {db.name} `{db.definition}` in the "
                      "database, gone from the models", db.definition, None,
                      _drop_constraint(table, db), name=db.name)  # fmt: skip
    if db.definition == models.definition:
        return Change("rename_constraint", f"{words} `{db.definition}` is named {models.name} "
                      f"in the models, {db.name} in the database", db.name, models.name,
                      _execute(f"ALTER TABLE {table.sql} RENAME CONSTRAINT {_ident(db.name)} "
                               f"TO {_ident(models.name)}"), name=models.name)  # fmt: skip
    kind = "modify_primary_key" if family == "pk" else f"modify_{family}"
    return Change(kind, f"{words} {models.name} is `{db.definition}` in the database, "
                  f"`{models.definition}` in the models", db.definition, models.definition,
                  _drop_constraint(table, db) + "\n" + _create_constraint(table, models),
                  name=models.name)  # fmt: skip


def _index_text(ix: Index) -> str:
    """``[UNIQUE ]USING method (columns) ...``: the definition without name and table."""
    unique = "UNIQUE " if ix.definition.startswith("CREATE UNIQUE ") else ""
    _, _, rest = ix.definition.partition(" USING ")
    return f"{unique}USING {rest}" if rest else ix.definition


def index_change(table: TableRef, db: Index | None, models: Index | None) -> Change:
    drop = "op.drop_index(op.f({!r}), table_name={!r}" + (
        f", schema={table.schema!r})" if table.schema else ")"
    )
    if db is None:
        assert models is not None
        return Change("add_index", f"index {models.name} `{_index_text(models)}` in the models, "
                      "no revision creates it", None, _index_text(models),
                      _execute(models.statement), name=models.name)  # fmt: skip
    if models is None:
        return Change("remove_index", f"index {db.name} `{_index_text(db)}` in the database, "
                      "gone from the models", _index_text(db), None,
                      drop.format(db.name, table.name), name=db.name)  # fmt: skip
    if db.definition == models.definition:
        return Change("rename_index", f"index `{_index_text(db)}` is named {models.name} in the "
                      f"models, {db.name} in the database", db.name, models.name,
                      _execute(f"ALTER INDEX {_ident(db.name)} RENAME TO {_ident(models.name)}"),
                      name=models.name)  # fmt: skip
    return Change("modify_index", f"index {models.name} is `{_index_text(db)}` in the database, "
                  f"`{_index_text(models)}` in the models", _index_text(db), _index_text(models),
                  drop.format(db.name, table.name) + "\n" + _execute(models.statement),
                  name=models.name)  # fmt: skip


def keep_defaults(code: str, defaults: Seq[tuple[TableRef, str, str]]) -> str:
    """An ENUM rebuild's ``code`` with each column's default dropped before and set after.

    The default's text (``'new'::order_status``) names the type by name, so once the rebuild
    has replaced the type, the same text means the new type's label.
    """
    drops = [_alter(t, c, "DROP DEFAULT") for t, c, _ in defaults]
    sets = [_alter(t, c, f"SET DEFAULT {d}") for t, c, d in defaults]
    return "\n".join([*drops, code, *sets])


def _enum_sql(labels: list[str]) -> str:
    return "ENUM (" + ", ".join(_lit(v) for v in labels) + ")"


def enum_change(
    schema: str | None,
    name: str,
    db: list[str],
    models: list[str],
    users: list[tuple[TableRef, str]],
) -> Change:
    """An ENUM type's labels: added (ALTER TYPE ... ADD VALUE), or removed or reordered."""
    prefix = f"{_ident(schema)}." if schema else ""
    qualified = prefix + _ident(name)
    in_db, in_models = _enum_sql(db), _enum_sql(models)
    added = [v for v in models if v not in db]
    removed = [v for v in db if v not in models]
    kept_order = [v for v in models if v in db] == [v for v in db if v in models]
    if added and not removed and kept_order:
        lines = []
        for value in added:
            i = models.index(value)
            where = f" BEFORE {_lit(models[i + 1])}" if i + 1 < len(models) else ""
            lines.append(_execute(f"ALTER TYPE {qualified} ADD VALUE {_lit(value)}{where}"))
        values = ", ".join(_lit(v) for v in added)
        return Change("add_enum_value", f"ENUM {qualified} has {values} in the models, not in "
                      f"the database: `{in_models}` in the models, `{in_db}` in the database",
                      in_db, in_models, "\n".join(lines), name=qualified)  # fmt: skip
    # PostgreSQL cannot drop or move a label: rebuild the type and convert its columns.
    old_name = _ident(f"{name}_old")
    old = prefix + old_name
    lines = [
        _execute(f"ALTER TYPE {qualified} RENAME TO {old_name}"),
        _execute(f"CREATE TYPE {qualified} AS {in_models}"),
    ]
    for table, column in users:
        c = _ident(column)
        lines.append(_execute(f"ALTER TABLE {table.sql} ALTER COLUMN {c} TYPE {qualified} "
                              f"USING {c}::text::{qualified}"))  # fmt: skip
    lines.append(_execute(f"DROP TYPE {old}"))
    if removed and not added and kept_order:
        values = ", ".join(_lit(v) for v in removed)
        return Change("remove_enum_value", f"ENUM {qualified} has {values} in the database, "
                      f"gone from the models: `{in_models}` in the models, `{in_db}` in the "
                      "database", in_db, in_models, "\n".join(lines), name=qualified)  # fmt: skip
    return Change("modify_enum", f"ENUM {qualified} is `{in_db}` in the database, `{in_models}` "
                  "in the models", in_db, in_models, "\n".join(lines), name=qualified)  # fmt: skip

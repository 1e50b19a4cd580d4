"""The pieces of text a safe form is made of, shared by the findings and the revision writer.

The finding's safe form (advice.py, rewrite_forms.py) and the writer's rewritten revision
(worker/safe_forms.py) say the same SQL for the same step (a VALIDATE, a UNIQUE ... USING
INDEX, a lock timeout): it is written here once, so the text pasted from a finding and the
revision the writer wrote cannot drift apart. Identifiers are quoted as PostgreSQL's dialect
quotes them (only when needed), Python literals as ``ast.unparse`` would not (always double
quotes, the way the revision template writes them).
"""

from __future__ import annotations

from sqlalchemy.dialects import postgresql

__all__ = [
    "AUTOCOMMIT",
    "DEFAULT_LOCK_TIMEOUT",
    "FIRST",
    "attach_sql",
    "backfill",
    "check_name",
    "later",
    "lock_timeout_sql",
    "py",
    "quote",
    "split_table",
    "sql",
    "table_sql",
    "validate_op",
    "validate_sql",
]

_PREPARER = postgresql.dialect().identifier_preparer  # type: ignore[no-untyped-call]
# The cli's revision.DEFAULT_LOCK_TIMEOUT too (the CLI side never imports the worker).
DEFAULT_LOCK_TIMEOUT = "5s"
AUTOCOMMIT = "with op.get_context().autocommit_block():"
# The label lines of a two-revision form: tests and users split the text at the second one.
FIRST = "# revision 1 (this one):"
BATCH = 5000


def later(why: str = "") -> str:
    """The label of a form's second part: it must not share the first one's transaction."""
    when = why or "a later deploy, or transaction_per_migration=True in env.py"
    return f"# revision 2 (a later one, in its own transaction: {when}):"


def quote(name: str) -> str:
    """``name`` as an SQL identifier (quoted only when PostgreSQL needs it)."""
    return str(_PREPARER.quote(name))


def split_table(shown: str) -> tuple[str | None, str]:
    """``schema.table`` (the findings' spelling; ``public`` is left out) into its parts."""
    schema, _, table = shown.rpartition(".")
    return schema or None, table


def table_sql(schema: str | None, table: str) -> str:
    quoted = quote(table)
    return f"{_PREPARER.quote_schema(schema)}.{quoted}" if schema else quoted


def validate_sql(schema: str | None, table: str, name: str) -> str:
    return f"ALTER TABLE {table_sql(schema, table)} VALIDATE CONSTRAINT {quote(name)}"


def validate_op(schema: str | None, table: str, name: str, comment: str = "") -> str:
    """The VALIDATE of a form's second part, in ``autocommit_block()``: under Alembic's default
    env.py every revision of one upgrade shares a transaction, and a VALIDATE there would still
    run under the lock of the ADD before it (the check's validate_same_transaction)."""
    return f"{AUTOCOMMIT}\n    {sql(validate_sql(schema, table, name))}{comment}"


def attach_sql(schema: str | None, table: str, name: str, kind: str = "UNIQUE",
               index: str | None = None, tail: str = "") -> str:  # fmt: skip
    """``ADD CONSTRAINT ... USING INDEX``: a constraint on an index built beforehand."""
    using = quote(index or name)
    text = f"ALTER TABLE {table_sql(schema, table)} ADD CONSTRAINT {quote(name)} {kind}"
    return f"{text} USING INDEX {using}" + (f" {tail}" if tail else "")


def lock_timeout_sql(value: str = DEFAULT_LOCK_TIMEOUT) -> str:
    return f"SET lock_timeout = '{value}'"


def py(text: str) -> str:
    """A Python string literal, double-quoted."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sql(text: str) -> str:
    """``op.execute("...")`` of one SQL statement, on one line."""
    return f"op.execute({py(' '.join(text.split()))})"


def check_name(table: str, column: str) -> str:
    """The name of the CHECK (column IS NOT NULL) that proves a SET NOT NULL, within 63 bytes."""
    name = f"ck_{table}_{column}_not_null"
    return name if len(name.encode()) <= 63 else name[:54] + "_not_null"


def backfill(schema: str | None, table: str, assignment: str, pending: str) -> str:
    """The existing rows updated in batches, each committed (no long row locks, no bloat spike).

    ``pending`` selects the rows still to do; each batch makes them not pending, so the loop ends.
    """
    target = table_sql(schema, table)
    statement = (
        f"UPDATE {target} SET {assignment} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {target} "
        f"WHERE {pending} LIMIT {BATCH}))"
    )
    return (
        f"{AUTOCOMMIT}  # each batch commits\n"
        f"    while op.get_bind().execute(sa.text({py(statement)})).rowcount:\n"
        "        pass"
    )

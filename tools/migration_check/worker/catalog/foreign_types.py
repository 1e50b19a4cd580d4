"""What only a revision creates and the models use: copied into the models' database.

A model may use an ENUM declared with ``create_type=False``, a domain, a function in a CHECK or
DEFAULT, or a sequence a revision made by hand (``text("nextval('ticket_no_seq')")``).
``create_all()`` creates none of them, so the models' database gets them from the migrated
database. Copied objects read the same on both sides, so they can hide nothing the models
define; what the models create themselves is never copied.
"""

from __future__ import annotations

from typing import Any

__all__ = ["copy_foreign_objects", "created_names"]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_USER = "n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'"
_NOT_EXTENSION = (
    "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '{cat}'::regclass "
    "AND d.objid = {oid} AND d.deptype = 'e')"
)

# Sequences no column owns (a serial's and an identity's are the models' own).
_SEQUENCES = f"""
SELECT n.nspname, c.relname, format_type(q.seqtypid, NULL), q.seqstart, q.seqincrement,
       q.seqmin, q.seqmax, q.seqcache, q.seqcycle
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_sequence q ON q.seqrelid = c.oid
WHERE c.relkind = 'S' AND {_USER} AND {_NOT_EXTENSION.format(cat="pg_class", oid="c.oid")}
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype IN ('a', 'i'))
ORDER BY c.oid
"""


def _statements(migrated: Any, created: set[tuple[str | None, str]]) -> list[str]:
    def ours(schema: str, name: str) -> bool:
        return (schema, name) in created or (None, name) in created

    statements: list[str] = []
    for schema, name, labels in migrated.exec_driver_sql(
        "SELECT n.nspname, t.typname, array_agg(e.enumlabel::text ORDER BY e.enumsortorder) "
        "FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid "
        "JOIN pg_namespace n ON n.oid = t.typnamespace "
        "WHERE n.nspname !~ '^pg_' GROUP BY n.nspname, t.typname, t.oid ORDER BY t.oid"
    ):
        if not ours(schema, name):
            values = ", ".join(_literal(v) for v in labels)
            statements.append(f"CREATE TYPE {_ident(schema)}.{_ident(name)} AS ENUM ({values})")
    for schema, name, base, not_null, checks in migrated.exec_driver_sql(
        "SELECT n.nspname, t.typname, format_type(t.typbasetype, t.typtypmod), t.typnotnull, "
        "ARRAY(SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c "
        "WHERE c.contypid = t.oid AND c.contype = 'c' ORDER BY c.oid) "
        "FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
        f"WHERE t.typtype = 'd' AND {_USER} ORDER BY t.oid"
    ):
        if not ours(schema, name):
            extra = (" NOT NULL" if not_null else "") + "".join(f" {c}" for c in checks or ())
            statements.append(f"CREATE DOMAIN {_ident(schema)}.{_ident(name)} AS {base}{extra}")
    for schema, name, type_, start, step, low, high, cache, cycle in migrated.exec_driver_sql(
        _SEQUENCES
    ):
        if not ours(schema, name):
            statements.append(
                f"CREATE SEQUENCE {_ident(schema)}.{_ident(name)} AS {type_} START WITH {start} "
                f"INCREMENT BY {step} MINVALUE {low} MAXVALUE {high} CACHE {cache} "
                + ("CYCLE" if cycle else "NO CYCLE")
            )
    for (definition,) in migrated.exec_driver_sql(
        "SELECT pg_get_functiondef(p.oid) FROM pg_proc p "
        "JOIN pg_namespace n ON n.oid = p.pronamespace "
        f"WHERE {_USER} AND p.prokind IN ('f', 'p') "
        f"AND {_NOT_EXTENSION.format(cat='pg_proc', oid='p.oid')} ORDER BY p.oid"
    ):
        statements.append(definition)
    return statements


def copy_foreign_objects(migrated: Any, conn: Any, created: set[tuple[str | None, str]]) -> None:
    """Enums, domains, sequences and functions of the migrated database the models do not
    create, copied onto ``conn`` (the models' database, psycopg) in one transaction."""
    statements = _statements(migrated, created)
    with conn.transaction():
        # A function body may name tables the models do not have yet, or at all.
        conn.execute("SET LOCAL check_function_bodies = off")
        for statement in statements:
            try:
                with conn.transaction():  # a savepoint: one bad copy is not fatal
                    conn.execute(statement)
            except Exception:  # the retry of create_all() says what failed
                continue


def created_names(metadatas: list[Any]) -> set[tuple[str | None, str]]:
    """(schema, name) of the named types and sequences ``create_all()`` creates itself."""
    out: set[tuple[str | None, str]] = set()
    for metadata in metadatas:
        for seq in getattr(metadata, "_sequences", {}).values():
            out.add((seq.schema, seq.name))
        for table in metadata.tables.values():
            for column in table.columns:
                default = column.default
                if type(default).__name__ == "Sequence":
                    out.add((getattr(default, "schema", None) or table.schema, default.name))
                kind = getattr(column.type, "item_type", column.type)  # ARRAY(ENUM)
                name = getattr(kind, "name", None)
                if not isinstance(name, str) or not getattr(kind, "create_type", True):
                    continue
                if getattr(kind, "native_enum", True) is False:
                    continue
                if hasattr(kind, "enums") or type(kind).__name__ == "DOMAIN":
                    out.add((getattr(kind, "schema", None) or table.schema, name))
    return out

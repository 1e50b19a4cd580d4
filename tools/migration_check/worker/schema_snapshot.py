"""The schema of one database as the PostgreSQL catalog prints it, for the round trip's equality.

Small on purpose, and not worker/catalog/sql.py's snapshot: that one leaves out what only
migrations create (functions, triggers, views), which a downgrade must remove all the same.
"""

from __future__ import annotations

from typing import Any

__all__ = ["catalog_snapshot", "snapshot_differences", "snapshot_of"]

# The schema as the catalog prints it, one query per kind of object; keys name the object.
_SYSTEM = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' "
    "AND n.nspname NOT LIKE 'pg\\_temp%' "
    # Objects an extension owns come and go with the extension, which is listed itself.
    "AND NOT EXISTS (SELECT 1 FROM pg_depend dep WHERE dep.objid = {oid} AND dep.deptype = 'e')"
)
_QUERIES = {
    "schema": "SELECT n.nspname, '' FROM pg_namespace n WHERE " + _SYSTEM.format(oid="n.oid"),
    "extension": "SELECT extname, extversion FROM pg_extension",
    "relation": "SELECT n.nspname || '.' || c.relname, c.relkind::text FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r','p','v','m','f','S') "
    "AND " + _SYSTEM.format(oid="c.oid"),
    "column": "SELECT n.nspname || '.' || c.relname || '.' || a.attname, "
    "concat_ws(' ', format_type(a.atttypid, a.atttypmod), "
    "CASE WHEN a.attnotnull THEN 'NOT NULL' END, "
    "'DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), "
    "CASE a.attidentity WHEN 'a' THEN 'IDENTITY ALWAYS' WHEN 'd' THEN 'IDENTITY BY DEFAULT' END, "
    "CASE WHEN a.attgenerated <> '' THEN 'GENERATED' END, "
    "'COMMENT ' || quote_literal(col_description(c.oid, a.attnum))) "
    "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
    "WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r','p','v','m','f') "
    "AND " + _SYSTEM.format(oid="c.oid"),
    "constraint": "SELECT n.nspname || '.' || c.relname || '.' || con.conname, "
    "pg_get_constraintdef(con.oid) FROM pg_constraint con "
    "JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE " + _SYSTEM.format(oid="c.oid"),
    "index": "SELECT n.nspname || '.' || t.relname || '.' || c.relname, pg_get_indexdef(c.oid) "
    "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE " + _SYSTEM.format(oid="c.oid"),
    "type": "SELECT n.nspname || '.' || t.typname, t.typtype::text || ' ' || coalesce(("
    "SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e "
    "WHERE e.enumtypid = t.oid), format_type(t.typbasetype, t.typtypmod)) FROM pg_type t "
    "JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typtype IN ('e', 'd') "
    "AND " + _SYSTEM.format(oid="t.oid"),
    "view": "SELECT n.nspname || '.' || c.relname, pg_get_viewdef(c.oid) FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('v', 'm') "
    "AND " + _SYSTEM.format(oid="c.oid"),
    "function": "SELECT n.nspname || '.' || p.proname || '(' "
    "|| pg_get_function_identity_arguments(p.oid) || ')', md5(pg_get_functiondef(p.oid)) "
    "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.prokind IN ('f','p') "
    "AND " + _SYSTEM.format(oid="p.oid"),
    "trigger": "SELECT t.tgrelid::regclass::text || '.' || t.tgname, pg_get_triggerdef(t.oid) "
    "FROM pg_trigger t WHERE NOT t.tgisinternal",
}


def catalog_snapshot(url: str, version_table: tuple[str, str | None]) -> dict[str, str]:
    """``snapshot_of`` the database at ``url``, over a connection of its own."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return snapshot_of(conn, version_table)
    finally:
        engine.dispose()


def snapshot_of(conn: Any, version_table: tuple[str, str | None]) -> dict[str, str]:
    """``{"kind name": definition}`` of everything a revision can create, as PostgreSQL prints it.

    ``conn`` is a SQLAlchemy connection; inside a migration's transaction it sees that
    transaction's DDL. Alembic's version table is left out: its rows are the one thing a
    downgrade must change.
    """
    from sqlalchemy import text

    table, schema = version_table
    where = schema or str(conn.execute(text("SELECT current_schema()")).scalar())
    skip = f"{where}.{table}"
    snapshot: dict[str, str] = {}
    for kind, query in _QUERIES.items():
        for name, definition in conn.execute(text(query)):
            if name == skip or str(name).startswith(skip + "."):
                continue
            snapshot[f"{kind} {name}"] = str(definition)
    return snapshot


def snapshot_differences(downgraded: dict[str, str], base: dict[str, str]) -> list[str]:
    """What the downgraded database has that the base does not, and the reverse; sorted."""
    out = []
    for key in sorted(set(downgraded) | set(base)):
        if key not in base:
            out.append(f"{key} is left behind")
        elif key not in downgraded:
            out.append(f"{key} is missing")
        elif downgraded[key] != base[key]:
            out.append(f"{key} is {downgraded[key]!r}, the base has {base[key]!r}")
    return out

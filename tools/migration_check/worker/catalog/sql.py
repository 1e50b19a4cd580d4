"""The PostgreSQL catalog of one database, read in a few bulk queries.

Both databases (the migrated one and the one ``create_all()`` built from the models) are read
with the same queries, so what PostgreSQL canonicalised on one side reads the same on the other:
``pg_get_constraintdef``, ``pg_get_indexdef``, ``pg_get_expr`` and ``format_type`` print an
expression the same way whether a revision or ``create_all()`` created it.

Objects an extension owns (``pg_depend.deptype = 'e'``) are left out: the extension, not the
project, defines them. The queries take no parameters, so they run unchanged on every driver.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Column", "Constraint", "Index", "Sequence", "Snapshot", "read_snapshot"]

# Schemas PostgreSQL itself owns; '^pg_' covers pg_catalog, pg_toast and temporary schemas.
_USER_SCHEMA = "n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'"
_NOT_EXTENSION = (
    "NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = {cat}::regclass "
    "AND e.objid = {oid} AND e.deptype = 'e')"
)

_TABLES = f"""
SELECT n.nspname, c.relname, obj_description(c.oid, 'pg_class')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND {_USER_SCHEMA}
  AND {_NOT_EXTENSION.format(cat="'pg_class'", oid="c.oid")}
"""

_COLUMNS = f"""
SELECT n.nspname, c.relname, a.attname, a.attnum,
       format_type(a.atttypid, a.atttypmod),
       a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid, true),
       a.attgenerated::text,
       a.attidentity::text,
       CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation THEN
            CASE WHEN cn.nspname = 'pg_catalog' THEN quote_ident(co.collname)
                 ELSE quote_ident(cn.nspname) || '.' || quote_ident(co.collname) END
       END,
       col_description(c.oid, a.attnum),
       CASE WHEN t.typtype = 'e' THEN tn.nspname END,
       CASE WHEN t.typtype = 'e' THEN t.typname END
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_namespace tn ON tn.oid = t.typnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_collation co ON co.oid = a.attcollation
LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p') AND {_USER_SCHEMA}
"""

# 'n' (NOT NULL constraints, PostgreSQL 18) is nullability, compared per column; 't'
# (constraint triggers) only a revision can create.
_CONSTRAINTS = f"""
SELECT n.nspname, c.relname, con.conname, con.contype::text,
       pg_get_constraintdef(con.oid, true), con.convalidated,
       ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(num, ord)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num
             ORDER BY k.ord)
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE con.contype IN ('c', 'f', 'p', 'u', 'x') AND c.relkind IN ('r', 'p') AND {_USER_SCHEMA}
"""

# Indexes behind a PRIMARY KEY, UNIQUE or EXCLUDE constraint are compared as that constraint.
_INDEXES = f"""
SELECT n.nspname, c.relname, i.relname, quote_ident(i.relname),
       pg_get_indexdef(ix.indexrelid, 0, true),
       ARRAY(SELECT a.attname::text FROM unnest(ix.indkey) WITH ORDINALITY k(num, ord)
             JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.num
             ORDER BY k.ord)
FROM pg_index ix
JOIN pg_class i ON i.oid = ix.indexrelid
JOIN pg_class c ON c.oid = ix.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND {_USER_SCHEMA}
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = ix.indexrelid
                  AND k.conrelid = ix.indrelid AND k.contype IN ('p', 'u', 'x'))
"""

_ENUMS = f"""
SELECT n.nspname, t.typname, array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
FROM pg_type t
JOIN pg_enum e ON e.enumtypid = t.oid
JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE {_USER_SCHEMA} AND {_NOT_EXTENSION.format(cat="'pg_type'", oid="t.oid")}
GROUP BY n.nspname, t.typname
"""

# 'a': a serial column's sequence (OWNED BY); 'i': an identity column's.
_SEQUENCES = f"""
SELECT n.nspname, c.relname, a.attname, s.relname, d.deptype::text,
       format_type(q.seqtypid, NULL), q.seqstart, q.seqincrement, q.seqmin, q.seqmax,
       q.seqcache, q.seqcycle
FROM pg_depend d
JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_sequence q ON q.seqrelid = s.oid
JOIN pg_class c ON c.oid = d.refobjid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.refobjsubid
WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
  AND d.deptype IN ('a', 'i') AND {_USER_SCHEMA}
"""

TableKey = tuple[str, str]


@dataclass(frozen=True)
class Column:
    name: str
    position: int
    type: str
    not_null: bool
    default: str | None  # the DEFAULT expression; None for a generated column
    generated: str | None  # the generation expression of a GENERATED ALWAYS AS column
    generated_kind: str  # 's' stored, 'v' virtual (PostgreSQL 18), '' none
    identity: str  # 'a' ALWAYS, 'd' BY DEFAULT, '' none
    collation: str | None  # only when it differs from the type's default
    comment: str | None
    enum: tuple[str, str] | None  # (schema, name) of its ENUM type


@dataclass(frozen=True)
class Constraint:
    name: str
    type: str  # pg_constraint.contype: c, f, p, u, x
    definition: str  # pg_get_constraintdef, pretty, without NOT VALID
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Index:
    name: str
    definition: str  # pg_get_indexdef without the index's name
    columns: tuple[str, ...]  # the plain columns; expressions are not listed
    statement: str  # pg_get_indexdef as is: the CREATE INDEX to run


@dataclass(frozen=True)
class Sequence:
    name: str
    owner: str  # 'a' serial (OWNED BY), 'i' identity
    type: str
    start: int
    increment: int
    minimum: int
    maximum: int
    cache: int
    cycle: bool

    def options(self) -> dict[str, Any]:
        """Everything but the name: a renamed table keeps its serial's old name, harmlessly."""
        return {
            "AS": self.type,
            "START WITH": self.start,
            "INCREMENT BY": self.increment,
            "MINVALUE": self.minimum,
            "MAXVALUE": self.maximum,
            "CACHE": self.cache,
            "CYCLE": self.cycle,
        }


@dataclass
class Snapshot:
    """What one database holds, by table: the input of the comparison."""

    default_schema: str
    tables: dict[TableKey, str | None] = field(default_factory=dict)  # -> table comment
    columns: dict[TableKey, dict[str, Column]] = field(default_factory=dict)
    constraints: dict[TableKey, list[Constraint]] = field(default_factory=dict)
    indexes: dict[TableKey, list[Index]] = field(default_factory=dict)
    enums: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    sequences: dict[tuple[str, str, str], Sequence] = field(default_factory=dict)


def read_snapshot(conn: Any) -> Snapshot:
    """Read the catalog through a SQLAlchemy connection (six queries, whatever the size)."""

    def rows(sql: str) -> list[Any]:
        return list(conn.exec_driver_sql(sql).fetchall())

    snap = Snapshot(default_schema=str(conn.exec_driver_sql("SELECT current_schema()").scalar()))
    for schema, table, comment in rows(_TABLES):
        snap.tables[(schema, table)] = comment
    for r in rows(_COLUMNS):
        snap.columns.setdefault((r[0], r[1]), {})[r[2]] = Column(
            name=r[2],
            position=int(r[3]),
            type=r[4],
            not_null=bool(r[5]),
            default=r[6] if not r[7] else None,
            generated=r[6] if r[7] else None,
            generated_kind=r[7] or "",
            identity=r[8] or "",
            collation=r[9],
            comment=r[10],
            enum=(r[11], r[12]) if r[12] else None,
        )
    for schema, table, name, ctype, definition, validated, cols in rows(_CONSTRAINTS):
        # SQLAlchemy cannot declare NOT VALID: a revision that adds a constraint NOT VALID
        # (to validate it later) has the constraint the models declare.
        text = definition.removesuffix(" NOT VALID") if not validated else definition
        snap.constraints.setdefault((schema, table), []).append(
            Constraint(name, ctype, text, tuple(cols or ()))
        )
    for schema, table, name, quoted, statement, cols in rows(_INDEXES):
        definition = statement.replace(f" INDEX {quoted} ON ", " INDEX ON ", 1)
        snap.indexes.setdefault((schema, table), []).append(
            Index(name, definition, tuple(c for c in cols or () if c), statement)
        )
    for schema, name, labels in rows(_ENUMS):
        snap.enums[(schema, name)] = list(labels)
    for r in rows(_SEQUENCES):
        snap.sequences[(r[0], r[1], r[2])] = Sequence(
            name=r[3],
            owner=r[4],
            type=r[5],
            start=int(r[6]),
            increment=int(r[7]),
            minimum=int(r[8]),
            maximum=int(r[9]),
            cache=int(r[10]),
            cycle=bool(r[11]),
        )
    return snap

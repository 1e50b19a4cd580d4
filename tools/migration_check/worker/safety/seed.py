"""One row in each table that existed before the new revisions: they then behave as in production.

On an empty table ``ADD COLUMN ... NOT NULL`` without a default succeeds and a unique build has
nothing to build; with one row each behaves as it would on a populated table. Each table's row
is inserted under a savepoint, parents before children (a foreign key takes its parent's row);
a table whose constraints no generic row satisfies is left empty and said so.

Round trips are most of its cost (one per statement): the CHECK constraints are read once, not
after each rejected row, and a table's attempts share one savepoint (``ROLLBACK TO`` keeps it),
so a rejected row costs its INSERT and one ROLLBACK TO.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SeedReport", "seed"]

_COLUMNS = """
SELECT c.oid::bigint, quote_ident(n.nspname) || '.' || quote_ident(c.relname), a.attnum,
       quote_ident(a.attname), format_type(a.atttypid, a.atttypmod),
       coalesce(bt.typcategory, t.typcategory), coalesce(bt.typname, t.typname), a.attnotnull,
       (d.adbin IS NOT NULL OR a.attidentity <> '' OR a.attgenerated <> ''),
       (SELECT e.enumlabel FROM pg_enum e WHERE e.enumtypid = a.atttypid
        ORDER BY e.enumsortorder LIMIT 1)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid LEFT JOIN pg_type bt ON bt.oid = t.typbasetype
LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend dep WHERE dep.objid = c.oid AND dep.deptype = 'e')
ORDER BY c.oid, a.attnum
"""
_FKS = """
SELECT con.conrelid::bigint, con.confrelid::bigint, con.conkey, con.confkey,
       quote_ident(n.nspname) || '.' || quote_ident(p.relname)
FROM pg_constraint con JOIN pg_class p ON p.oid = con.confrelid
JOIN pg_namespace n ON n.oid = p.relnamespace WHERE con.contype = 'f'
"""
# Candidates, first tried first: a CHECK that rejects a column's value moves it to the next
# (an ISO code, a hex digest, an address, a later date for "end > start").
_BY_NAME = {"date": ["2000-01-01", "2100-01-01"], "time": ["12:00"], "timetz": ["12:00+00"],
            "interval": ["1 day"], "uuid": ["00000000-0000-0000-0000-000000000001"],
            "json": ["{}"], "jsonb": ["{}"], "bytea": ["\\x00"], "xml": ["<x/>"],
            "inet": ["127.0.0.1"], "cidr": ["127.0.0.0/8"], "macaddr": ["08:00:2b:01:02:03"],
            "money": ["1"]}  # fmt: skip
# "100" before "0.5": an integer column refuses "0.5" as text, which ends the search.
_BY_CATEGORY = {"N": ["1", "100", "0.5", "0"], "S": ["x", "AAA", "a" * 64, "a@example.com",
                "daily", "0"], "B": ["true", "false"],
                "D": ["2000-01-01 00:00:00+00", "2100-01-01 00:00:00+00"], "A": ["{}"],
                "T": ["1 day"], "V": ["1"]}  # fmt: skip
_CHECK_COLUMNS = ("SELECT conkey, pg_get_constraintdef(oid) FROM pg_constraint "
                  "WHERE conrelid = {oid} AND conname = {name}")  # fmt: skip
# A domain's CHECK names no table: the columns of that domain are the ones it rejected.
_DOMAIN_COLUMNS = ("SELECT array_agg(a.attnum::int ORDER BY a.attnum), "
                   "min(pg_get_constraintdef(con.oid)) FROM pg_constraint con "
                   "JOIN pg_attribute a ON a.atttypid = con.contypid "
                   "WHERE a.attrelid = {oid} AND con.conname = {name} AND NOT a.attisdropped "
                   "HAVING count(*) > 0")  # fmt: skip
# Every table CHECK, read once: a row a CHECK rejects names it (a table's constraint names are
# unique). One not found here (a domain's) is asked with _CHECK_COLUMNS, as each was before.
_CHECKS = ("SELECT conrelid::bigint, conname, conkey, pg_get_constraintdef(oid) FROM pg_constraint "
           "WHERE contype = 'c' AND conrelid <> 0")  # fmt: skip
_SAVEPOINT = "check_migrations_seed"
_LITERAL = re.compile(r"'((?:[^']|'')*)'")
_ATTEMPTS = 24


@dataclass
class SeedReport:
    seeded: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # table -> why


@dataclass
class _Column:
    number: int
    name: str
    type: str
    candidates: list[str]
    not_null: bool
    filled: bool
    choice: int = 0

    @property
    def literal(self) -> str | None:
        return self.candidates[self.choice] if self.candidates else None


def _candidates(category: str, typname: str, label: str | None) -> list[str]:
    if category == "E":
        return [label] if label is not None else []
    return list(_BY_NAME.get(typname, _BY_CATEGORY.get(category, [])))


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def seed(connection: Any, version_table: str) -> SeedReport:
    """Insert a row into each empty table of ``connection``'s database (committed by the caller)."""
    tables: dict[int, tuple[str, list[_Column]]] = {}
    for row in connection.exec_driver_sql(_COLUMNS):
        oid, name, num, col, typ, cat, typname, not_null, filled, label = row
        entry = tables.setdefault(oid, (name, []))
        entry[1].append(_Column(num, col, typ, _candidates(cat, typname, label), not_null, filled))
    parents: dict[int, list[tuple[int, list[int], list[int], str]]] = {}
    for child, parent, keys, refs, parent_name in connection.exec_driver_sql(_FKS):
        parents.setdefault(child, []).append((parent, list(keys), list(refs), parent_name))
    checks: dict[tuple[int, str], tuple[Any, str]] = {
        (int(table), name): (keys, definition)
        for table, name, keys, definition in connection.exec_driver_sql(_CHECKS)
    }
    report = SeedReport()
    for oid in _parents_first(tables, parents):
        name, columns = tables[oid]
        if name.split(".")[-1].strip('"') == version_table:
            continue
        if connection.exec_driver_sql(f"SELECT EXISTS (SELECT 1 FROM {name})").scalar():
            continue  # the history's own rows: already populated
        refs = _references(oid, parents, tables)
        error = _insert_one(connection, oid, name, columns, refs, checks)
        if error:
            report.skipped[name] = error
        else:
            report.seeded.append(name)
    return report


def _insert_one(connection: Any, oid: int, name: str, columns: list[_Column],
                refs: dict[int, str], checks: dict[tuple[int, str], tuple[Any, str]]
                ) -> str:  # fmt: skip
    """Insert the row, moving the columns a CHECK names to their next candidates; "" or why not."""
    error = "no row could be built"
    connection.exec_driver_sql(f"SAVEPOINT {_SAVEPOINT}")
    for only_required in (False, True):
        for col in columns:
            col.choice = 0
        for _attempt in range(_ATTEMPTS):
            try:
                connection.exec_driver_sql(
                    _insert(name, columns, refs, only_required=only_required)
                )
            except Exception as exc:  # a constraint no generic row meets
                connection.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
                orig = getattr(exc, "orig", exc)
                error = str(orig).strip().splitlines()[0]
                check = getattr(getattr(orig, "diag", None), "constraint_name", None)
                # psycopg 3 says sqlstate, psycopg2 (SQLAlchemy 1.4) pgcode.
                state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
                if state != "23514" or not check:
                    break
                found = checks.get((int(oid), check))
                for query in (_CHECK_COLUMNS, _DOMAIN_COLUMNS) if found is None else ():
                    found = connection.exec_driver_sql(
                        query.format(oid=int(oid), name=_quote(check))
                    ).first()
                    if found is not None:
                        break
                if found is None:
                    break
                keys, definition = found
                named = [c for c in columns if c.number in (keys or [])]
                # A CHECK listing allowed values (IN, = ANY): those values are candidates.
                for literal in reversed(_LITERAL.findall(definition)[:1]):
                    for col in named:
                        if literal.replace("''", "'") not in col.candidates and col.candidates:
                            col.candidates.insert(col.choice + 1, literal.replace("''", "'"))
                if not _advance(named):
                    break
            else:
                connection.exec_driver_sql(f"RELEASE SAVEPOINT {_SAVEPOINT}")
                return ""
    connection.exec_driver_sql(f"RELEASE SAVEPOINT {_SAVEPOINT}")
    return error


def _advance(columns: list[_Column]) -> bool:
    """The next combination of candidates, last column fastest (an odometer); False when done."""
    for col in reversed(columns):
        if col.choice + 1 < len(col.candidates):
            col.choice += 1
            return True
        col.choice = 0
    return False


def _parents_first(tables: dict[int, Any], parents: dict[int, list[Any]]) -> list[int]:
    done: list[int] = []
    placed: set[int] = set()

    def visit(oid: int, path: set[int]) -> None:
        if oid in placed or oid in path or oid not in tables:
            return
        for parent, *_rest in parents.get(oid, []):
            visit(parent, path | {oid})
        placed.add(oid)
        done.append(oid)

    for oid in sorted(tables):
        visit(oid, set())
    return done


def _references(
    oid: int, parents: dict[int, list[Any]], tables: dict[int, tuple[str, list[_Column]]]
) -> dict[int, str]:
    """Column number -> the parent's key, read from the parent's one row."""
    out: dict[int, str] = {}
    for parent, keys, refs, parent_name in parents.get(oid, []):
        if parent == oid:
            continue  # a self-reference stays NULL (or the row is not built)
        names = {c.number: c.name for c in tables.get(parent, ("", []))[1]}
        for key, ref in zip(keys, refs, strict=False):
            if ref in names:
                out[key] = f"(SELECT {names[ref]} FROM {parent_name} LIMIT 1)"
    return out


def _insert(name: str, columns: list[_Column], refs: dict[int, str], *, only_required: bool
            ) -> str:  # fmt: skip
    names, values = [], []
    for col in columns:
        if col.filled or (only_required and not col.not_null and col.number not in refs):
            continue
        if col.number in refs:
            value = refs[col.number]
        elif col.literal is not None:
            value = f"{_quote(col.literal)}::{col.type}"
        else:
            continue  # NULL, or the default: the insert says whether that is allowed
        names.append(col.name)
        values.append(value)
    if not names:
        return f"INSERT INTO {name} DEFAULT VALUES"
    return f"INSERT INTO {name} ({', '.join(names)}) VALUES ({', '.join(values)})"

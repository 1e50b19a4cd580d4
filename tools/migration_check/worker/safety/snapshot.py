"""One snapshot of what the migration's own backend can see, taken before and after a statement.

Read through the raw DBAPI connection (a cursor of its own), so the query runs inside the
migration's transaction and never re-enters SQLAlchemy's cursor events. One query, one round
trip: the observation runs once per statement (an after-snapshot is the next before), and it is
most of the observation's cost (bench/safety.py), so the query reads each thing once:
``pg_settings`` (a function listing every setting) once for both timeouts, and the scan counts
straight from ``pg_stat_get_xact_numscans`` with ``pg_stat_xact_user_tables``' own filters, not
from the view (which groups every table with its indexes for columns not read here);
tests/worker/safety/test_observed_cost.py holds both against the views. Timeouts count only
when the migration set them (``SET`` in env.py or a revision: source ``session``): the checker's
own ``lock_timeout`` comes through PGOPTIONS, and production will not have it. In milliseconds,
"0" for none. The facts behind each part are in /work/shared/SAFETY.md and docs/safety.md.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Column", "Constraint", "Relation", "Snapshot", "take"]

# User objects only: catalogs (and OIDs below FirstNormalObjectId) are never a finding.
_USER = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%'"
_SNAPSHOT_SQL = f"""
SELECT json_build_object(
  'xid', txid_current(),
  'timeouts', (SELECT json_object_agg(name, CASE WHEN source = 'session' THEN setting ELSE '0' END)
               FROM pg_settings WHERE name IN ('lock_timeout', 'statement_timeout')),
  'locks', (SELECT coalesce(json_agg(json_build_array(l.relation::bigint, l.mode)), '[]')
            FROM pg_locks l WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation'
            AND l.granted AND l.relation >= 16384),
  'rels', (SELECT coalesce(json_agg(json_build_array(c.oid::bigint, c.relkind,
                  pg_relation_filenode(c.oid), n.nspname, c.relname, i.indrelid::bigint,
                  i.indisvalid)), '[]')
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           LEFT JOIN pg_index i ON i.indexrelid = c.oid
           WHERE c.relkind IN ('r', 'm', 'i', 'p', 'I') AND {_USER}
             AND @REL@),
  'scans', (SELECT coalesce(json_agg(json_build_array(c.oid::bigint,
                  pg_stat_get_xact_numscans(c.oid))), '[]')
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 't', 'm', 'p') AND n.nspname NOT IN ('pg_catalog',
              'information_schema') AND n.nspname !~ '^pg_toast' AND @SCAN@),
  'cons', (SELECT coalesce(json_agg(json_build_array(con.conrelid::bigint, con.conname,
                  con.contype, con.convalidated, con.conindid::bigint, con.confrelid::bigint,
                  con.conkey, pg_get_constraintdef(con.oid))), '[]')
           FROM pg_constraint con JOIN pg_namespace n ON n.oid = con.connamespace
           WHERE con.conrelid <> 0 AND {_USER} AND @CON@),
  'cols', (SELECT coalesce(json_agg(json_build_array(a.attrelid::bigint, a.attnum, a.attname,
                  a.attnotnull, a.attisdropped)), '[]')
           FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE a.attnum > 0 AND c.relkind IN ('r', 'p') AND {_USER} AND @COL@)
)
"""


@dataclass(frozen=True)
class Relation:
    oid: int
    kind: str  # pg_class.relkind
    filenode: int | None  # None: no storage of its own (a partitioned table or index)
    schema: str
    name: str
    table: int | None  # an index's table
    valid: bool | None  # an index's indisvalid

    @property
    def shown(self) -> str:
        return self.name if self.schema == "public" else f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class Constraint:
    table: int
    name: str
    kind: str  # pg_constraint.contype: c, f, u, p, x, n
    validated: bool
    index: int  # the index it is built on (0: none)
    referenced: int  # a foreign key's referenced table (0: none)
    columns: tuple[int, ...]
    definition: str


@dataclass(frozen=True)
class Column:
    table: int
    number: int
    name: str
    not_null: bool
    dropped: bool


@dataclass
class Snapshot:
    xid: int
    lock_timeout: str
    statement_timeout: str
    locks: dict[int, set[str]] = field(default_factory=dict)
    relations: dict[int, Relation] = field(default_factory=dict)
    scans: dict[int, int] = field(default_factory=dict)
    constraints: dict[tuple[int, str], Constraint] = field(default_factory=dict)
    columns: dict[tuple[int, int], Column] = field(default_factory=dict)


def _sql(old: Collection[int] | None) -> str:
    """The query, limited to the relations in ``old`` (and their indexes) when given.

    Only what existed before the new revisions can be a finding, and a long history's catalog
    is much larger than what a change touches. The OIDs are integers, inlined: no parameter
    style is common to every driver env.py may use.
    """
    if old is None:
        filters = dict.fromkeys(("@REL@", "@SCAN@", "@CON@", "@COL@"), "TRUE")
    else:
        array = "'{" + ",".join(str(int(o)) for o in sorted(old)) + "}'::oid[]"
        filters = {
            "@REL@": f"(c.oid = ANY({array}) OR i.indrelid = ANY({array}))",
            "@SCAN@": f"c.oid = ANY({array})",
            "@CON@": f"con.conrelid = ANY({array})",
            "@COL@": f"c.oid = ANY({array})",
        }
    sql = _SNAPSHOT_SQL
    for marker, text in filters.items():
        sql = sql.replace(marker, text)
    return sql


def take(dbapi_connection: Any, old: Collection[int] | None = None) -> Snapshot:
    """A snapshot on ``dbapi_connection``, in whatever transaction it is in."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(_sql(old))
        row = cursor.fetchone()
    finally:
        cursor.close()
    raw = row[0]
    data: dict[str, Any] = json.loads(raw) if isinstance(raw, str) else raw
    timeouts = data["timeouts"]
    snap = Snapshot(int(data["xid"]), timeouts["lock_timeout"], timeouts["statement_timeout"])
    for oid, mode in data["locks"]:
        snap.locks.setdefault(int(oid), set()).add(str(mode))
    for oid, kind, filenode, schema, name, table, valid in data["rels"]:
        snap.relations[int(oid)] = Relation(int(oid), kind, filenode, schema, name, table, valid)
    snap.scans = {int(oid): int(n) for oid, n in data["scans"]}
    for table, name, kind, validated, index, referenced, columns, definition in data["cons"]:
        snap.constraints[(int(table), name)] = Constraint(
            int(table), name, kind, bool(validated), int(index), int(referenced),
            tuple(columns or ()), definition,
        )  # fmt: skip
    for table, number, name, not_null, dropped in data["cols"]:
        snap.columns[(int(table), int(number))] = Column(
            int(table), int(number), name, bool(not_null), bool(dropped)
        )
    return snap

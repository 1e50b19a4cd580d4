"""Indexes the new revisions leave INVALID, read from the end state (``pg_index.indisvalid``).

Two ways to get one on a table that existed before: a CONCURRENTLY build that failed (and was
caught, or the upgrade would have stopped), which leaves an index that every write maintains
and no query uses; or ``CREATE INDEX ... ON ONLY`` a partitioned table, valid only once an index
of each partition is attached (``ALTER INDEX ... ATTACH PARTITION``), and until then the
partitions lack it. The second's safe form is the rest of that procedure, named from the
catalog; the first's is advice.py's (drop it concurrently, build it again).
"""

from __future__ import annotations

import re
from typing import Any

from migration_check.worker.safety.hazards import Hazard
from migration_check.worker.safety.observe import Step
from migration_check.worker.safety.snapshot import Snapshot

__all__ = ["invalid_indexes"]

_INVALID = """
SELECT i.indexrelid::bigint, i.indrelid::bigint, c.relname, c.relkind,
       pg_get_indexdef(i.indexrelid)
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE NOT i.indisvalid
"""
# The partitions of a partitioned table with no index attached to the given partitioned index.
_UNATTACHED = """
SELECT n.nspname, p.relname, p.relkind FROM pg_inherits h
JOIN pg_class p ON p.oid = h.inhrelid JOIN pg_namespace n ON n.oid = p.relnamespace
WHERE h.inhparent = {table} AND NOT EXISTS (
  SELECT 1 FROM pg_inherits hi JOIN pg_index x ON x.indexrelid = hi.inhrelid
  WHERE hi.inhparent = {index} AND x.indrelid = p.oid)
ORDER BY p.relname
"""
# CREATE [UNIQUE] INDEX name ON ONLY table USING ...: what follows the table is the partition's.
_DEFINITION = re.compile(r"^CREATE (?P<unique>UNIQUE )?INDEX \S+ ON ONLY \S+ (?P<rest>USING .*)$")


def invalid_indexes(conn: Any, origin: dict[str, Step], steps: list[Step], baseline: Snapshot
                    ) -> list[Hazard]:  # fmt: skip
    """An ``invalid_index`` hazard per index the steps left INVALID on an existing table."""
    old_invalid = {o for o, r in baseline.relations.items() if r.valid is False}
    out: list[Hazard] = []
    for oid, table, name, kind, definition in conn.exec_driver_sql(_INVALID).fetchall():
        rel = baseline.relations.get(table)
        taker = origin.get(name) or _named_in(steps, name)
        if taker is None or rel is None or oid in old_invalid:
            continue
        if kind != "I":
            out.append(Hazard("invalid_index", taker, rel.shown, "",
                f"leaves {name} INVALID (a failed CONCURRENTLY build): it costs every write "
                "and serves no query", {"index": name}))  # fmt: skip
            continue
        missing = conn.exec_driver_sql(_UNATTACHED.format(table=int(table), index=int(oid)))
        parts = [(_shown(schema, part), k) for schema, part, k in missing.fetchall()]
        names = ", ".join(p for p, _k in parts) or "a partition"
        hazard = Hazard("invalid_index", taker, rel.shown, "",
            f"leaves {name} INVALID: an index ON ONLY {rel.shown} is valid only once every "
            f"partition's index is attached; {names} {'has' if len(parts) == 1 else 'have'} "
            "none, so queries on them scan", {"index": name})  # fmt: skip
        hazard.form = _attach(name, definition, parts)
        out.append(hazard)
    return out


def _named_in(steps: list[Step], name: str) -> Step | None:
    """The last CREATE INDEX naming ``name``: a failed build has no after-snapshot to show it."""
    word = re.compile(rf'(?<![\w$"]){re.escape(name)}(?![\w$"])|"{re.escape(name)}"')
    found = None
    for step in steps:
        if "create" in step.statement.lower() and word.search(step.statement):
            found = step
    return found


def _shown(schema: str, name: str) -> str:
    return name if schema == "public" else f"{schema}.{name}"


def _attach(index: str, definition: str, parts: list[tuple[str, str]]) -> str:
    """Each partition's index built concurrently, then attached: the parent becomes valid."""
    match = _DEFINITION.match(definition)
    if match is None or not parts:
        return ""
    unique, rest = match["unique"] or "", match["rest"].replace('"', '\\"')
    notes, built, attached = [], [], []
    for part, kind in parts:
        child = f"{index}_{part.split('.')[-1]}"[:63]
        if kind == "p":  # CONCURRENTLY cannot build on a partitioned table: one level down
            notes.append(f"# {part} is partitioned: give it {child} the same way (ON ONLY, its "
                         "partitions' indexes attached), then:")  # fmt: skip
        else:
            built.append(f'    op.execute("CREATE {unique}INDEX CONCURRENTLY IF NOT EXISTS '
                         f'{child} ON {part} {rest}")')  # fmt: skip
        attached.append(f'op.execute("ALTER INDEX {index} ATTACH PARTITION {child}")')
    block = ["with op.get_context().autocommit_block():", *built] if built else []
    return "\n".join([*notes, *block, *attached])

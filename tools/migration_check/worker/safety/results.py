"""Hazards into findings (source ``safety``), and every observation into the report's records.

Severity: with ``safety = "error"`` a hazard on a table that existed before is an error (exit 1)
and advice (hazards.ADVICE) a warning; with ``"warn"`` everything is a warning. A comment in the
revision, ``# check-migrations: allow <kind> on <table>`` (a reason may follow), accepts the
findings of that kind on that table from that revision: they stay in the records, marked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from migration_check.findings import Finding, Location
from migration_check.worker.safety.advice import safe_form
from migration_check.worker.safety.hazards import ADVICE, Hazard, strongest
from migration_check.worker.safety.invalid import invalid_indexes
from migration_check.worker.safety.observe import Observer, Step
from migration_check.worker.safety.seed import SeedReport
from migration_check.worker.safety.snapshot import Snapshot

__all__ = ["allowed", "final_hazards", "to_findings"]

_ALLOW = re.compile(r"#\s*check-migrations:\s*allow\s+(?P<kind>[\w-]+)\s+on\s+(?P<table>[\w.\"]+)"
                    r"(?P<reason>.*)$")  # fmt: skip
_UNINDEXED_FKS = """
SELECT con.conrelid::bigint, con.conname,
       array_to_string(ARRAY(SELECT quote_ident(a.attname) FROM unnest(con.conkey) k
                             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k),
                       ', ')
FROM pg_constraint con WHERE con.contype = 'f' AND NOT EXISTS (
  SELECT 1 FROM pg_index i WHERE i.indrelid = con.conrelid
  AND (i.indkey::int2[])[0:cardinality(con.conkey) - 1] @> con.conkey)
"""


def final_hazards(url: str, observer: Observer, baseline: Snapshot) -> list[Hazard]:
    """What only the end state shows: indexes left invalid, new foreign keys without an index."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    tables = {o for o, r in baseline.relations.items() if r.kind in ("r", "p")}
    origin: dict[str, Step] = {}
    for step in observer.steps:
        if step.after is not None:
            for key in set(step.after.constraints) - set(step.before.constraints):
                origin.setdefault(key[1], step)
            for oid in set(step.after.relations) - set(step.before.relations):
                origin.setdefault(step.after.relations[oid].name, step)
    out: list[Hazard] = []
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            out += invalid_indexes(conn, origin, observer.steps, baseline)
            for table, name, columns in conn.exec_driver_sql(_UNINDEXED_FKS):
                taker = origin.get(name)
                if taker is None or table not in tables or (table, name) in baseline.constraints:
                    continue
                shown = baseline.relations[table].shown
                out.append(Hazard("fk_without_index", taker, shown, "",
                    f"adds {name} with no index on {shown} ({columns}): each delete or key "
                    f"update of the referenced row scans {shown}", {"columns": columns},
                ))  # fmt: skip
    finally:
        engine.dispose()
    return out


def allowed(path: str) -> dict[tuple[str, str], str]:
    """(kind, table) -> reason, from the revision's allow comments."""
    out: dict[tuple[str, str], str] = {}
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                m = _ALLOW.search(line)
                if m:
                    kind = m["kind"].replace("-", "_")
                    out[(kind, m["table"].strip('"'))] = m["reason"].strip(" :-()") or "allowed"
    except (OSError, UnicodeDecodeError):
        pass
    return out


def _accepted(h: Hazard) -> str | None:
    allows = allowed(h.step.file)
    bare = h.table.split(".")[-1]
    return allows.get((h.kind, h.table)) or allows.get((h.kind, bare))


def to_findings(
    hazards: Iterable[Hazard], observer: Observer, mode: str, seeded: SeedReport
) -> tuple[list[Finding], list[Finding], list[dict[str, Any]]]:
    """(errors, warnings, records): the findings by severity, and one record per revision."""
    errors: list[Finding] = []
    warnings: list[Finding] = []
    marks: dict[int, list[dict[str, str]]] = {}
    hazards = list(hazards)
    # A failed CONCURRENTLY build the revision caught: what lasts is the invalid index it left.
    left_invalid = {id(h.step) for h in hazards if h.kind == "invalid_index"}
    hazards = [h for h in hazards if h.kind != "fails_with_rows" or id(h.step) not in left_invalid]
    for h in hazards:
        reason = _accepted(h)
        marks.setdefault(id(h.step), []).append(
            {"kind": h.kind, "table": h.table, **({"allowed": reason} if reason else {})}
        )
        if reason is not None:
            continue
        finding = _finding(h)
        (warnings if mode == "warn" or h.kind in ADVICE else errors).append(finding)
    return errors, warnings, _records(observer, marks, seeded)


def _finding(h: Hazard) -> Finding:
    step = h.step
    statement = " ".join(step.statement.split())
    if len(statement) > 160:  # the whole statement is in the JSON record
        statement = statement[:157] + "..."
    return Finding(
        kind=h.kind,
        table=h.table or None,
        column=h.names.get("column"),
        name=h.names.get("index") or h.names.get("constraint") or step.revision,
        message=h.why + (f"; statement: {statement}" if statement else ""),
        op=h.form or safe_form(h),
        location=Location(step.file, step.line),
        hint=f"use the safe form above, or accept it with `# check-migrations: allow "
        f"{h.kind.replace('_', '-')} on {h.table or '<table>'}` and a reason in the revision",
        source="safety",
    )


def _records(
    observer: Observer, marks: dict[int, list[dict[str, str]]], seeded: SeedReport
) -> list[dict[str, Any]]:
    """One record per revision; each statement's ``locks`` are the existing tables it took a new
    lock mode on, rewrote or scanned, each with the strongest mode then held."""
    baseline = observer.baseline
    old = set(baseline.relations) if baseline is not None else set()
    steps = observer.steps
    by_revision: dict[str, dict[str, Any]] = {}
    for step in steps:
        rec = by_revision.setdefault(step.revision, {
            "revision": step.revision, "file": step.file, "statements": [],
            "seeded": seeded.seeded, "not_seeded": seeded.skipped})  # fmt: skip
        after = step.after
        locks = {}
        rewritten, scanned = [], []
        if after is not None:
            for oid in sorted(set(after.locks) & old):
                rel = step.before.relations.get(oid)
                if rel is None or rel.kind not in ("r", "p", "m"):
                    continue
                if rel.name == observer.version_table:
                    continue
                a = after.relations.get(oid)
                if a is not None and rel.filenode is not None and a.filenode != rel.filenode:
                    rewritten.append(rel.shown)
                if after.scans.get(oid, 0) > step.before.scans.get(oid, 0):
                    scanned.append(rel.shown)
                new = after.locks[oid] - step.before.locks.get(oid, set())
                if new or rel.shown in rewritten or rel.shown in scanned:
                    locks[rel.shown] = strongest(after.locks[oid])
        found = marks.get(id(step), [])
        rec["statements"].append({
            "line": step.line, "statement": " ".join(step.statement.split()),
            "transaction": step.transaction, "autocommit": step.autocommit, "locks": locks,
            "rewritten": rewritten, "scanned": scanned, "error": step.error or None,
            "lock_timeout": step.before.lock_timeout,
            "statement_timeout": step.before.statement_timeout, "findings": found,
        })  # fmt: skip
    return list(by_revision.values())

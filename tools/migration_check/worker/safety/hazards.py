"""Observations into hazards: what each statement's two snapshots say it did to existing tables.

Only relations that existed before the new revisions ran count (``baseline``): a table the same
change creates is empty and unknown to the application, so nothing it does to it can block
anyone. Facts behind each rule: docs/safety.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from migration_check.worker.safety.observe import Step
from migration_check.worker.safety.snapshot import Snapshot

__all__ = ["ADVICE", "MODES", "Hazard", "find_hazards", "in_transaction_hazard", "strongest"]

# pg_locks' mode names, weakest first.
MODES = ("AccessShareLock", "RowShareLock", "RowExclusiveLock", "ShareUpdateExclusiveLock",
         "ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock")  # fmt: skip
_BLOCKING = set(MODES[MODES.index("ShareLock") :])  # blocks writes; ACCESS EXCLUSIVE reads too
_AEL = "AccessExclusiveLock"
# Kinds that are advice (warn by default) rather than hazards (error by default).
ADVICE = frozenset({"lock_timeout", "lock_held", "drop_column", "rename_column", "drop_table",
                    "rename_table", "fk_without_index"})  # fmt: skip


def strongest(modes: set[str] | None) -> str:
    """``ACCESS EXCLUSIVE``: the strongest of ``modes`` as PostgreSQL's documentation names it."""
    if not modes:
        return ""
    top = max(modes, key=lambda m: MODES.index(m) if m in MODES else -1)
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", top.removesuffix("Lock")).upper()


@dataclass
class Hazard:
    """One hazard of one statement: kind, where, what, and the names the safe form needs."""

    kind: str
    step: Step
    table: str
    lock: str
    why: str
    names: dict[str, str] = field(default_factory=dict)
    # The safe form, when the hazard's own module builds it from the catalog (worker/safety/
    # invalid.py); else advice.safe_form writes it from the kind and the op.
    form: str = ""


def find_hazards(steps: list[Step], baseline: Snapshot) -> list[Hazard]:
    """Every hazard the steps show, in the order the statements ran."""
    tables = {o for o, r in baseline.relations.items() if r.kind in ("r", "p", "m")}
    found: list[Hazard] = []
    not_valid_in: dict[tuple[int, str], int] = {}
    timeout_told: set[str] = set()
    for step in steps:
        if step.after is None:
            found.extend(_failure(step, baseline))
            continue
        before, after = step.before, step.after
        found.extend(_storage(step, tables, baseline))
        found.extend(_indexes(step, tables, baseline))
        found.extend(_constraints(step, tables, not_valid_in))
        found.extend(_columns(step, tables))
        blocking = [t for t in tables if (after.locks.get(t, set()) - before.locks.get(t, set()))
                    & _BLOCKING]  # fmt: skip
        quiet = step.autocommit or step.revision in timeout_told
        if blocking and not quiet and before.lock_timeout in ("0", "0ms"):
            timeout_told.add(step.revision)
            t = blocking[0]
            lock = strongest(after.locks.get(t))
            found.append(Hazard("lock_timeout", step, _name(baseline, t), lock,
                f"waits for {lock} with lock_timeout = 0: behind one long transaction on "
                "the table, it queues every query that comes after it"))  # fmt: skip
    found.extend(_held(steps, tables))
    return found


def _name(snap: Snapshot, oid: int) -> str:
    rel = snap.relations.get(oid)
    return rel.shown if rel is not None else str(oid)


def _scanned(step: Step, oid: int) -> bool:
    assert step.after is not None
    return step.after.scans.get(oid, 0) > step.before.scans.get(oid, 0)


def _held(steps: list[Step], tables: set[int]) -> list[Hazard]:
    """ACCESS EXCLUSIVE taken by a statement: every later one of its transaction runs under it.

    Alembic runs every new revision in one transaction unless env.py sets
    ``transaction_per_migration``: the lock lasts until COMMIT, across revisions.
    """
    out: list[Hazard] = []
    taken: dict[tuple[int, int], Step] = {}
    later: dict[tuple[int, int], list[Step]] = {}
    for step in steps:
        if step.after is None or step.autocommit:
            continue
        for key in [k for k in taken if k[0] == step.transaction]:
            later[key].append(step)
        for t in sorted(tables):
            key = (step.transaction, t)
            if _AEL in step.after.locks.get(t, set()) and key not in taken:
                taken[key], later[key] = step, []
    for key, taker in taken.items():
        if not later[key]:
            continue
        table = _name(taker.before, key[1])
        shown = "; ".join(f"{s.file}:{s.line} {_short(s.statement, 40)}" for s in later[key][:4])
        more = f"; and {len(later[key]) - 4} more" if len(later[key]) > 4 else ""
        out.append(Hazard("lock_held", taker, table, "ACCESS EXCLUSIVE",
            f"takes ACCESS EXCLUSIVE on {table}, held until COMMIT while {len(later[key])} "
            f"later statement(s) run: {shown}{more}"))  # fmt: skip
    return out


def _short(statement: str, width: int = 60) -> str:
    one = " ".join(statement.split())
    return one if len(one) <= width else one[: width - 3] + "..."


def _storage(step: Step, tables: set[int], baseline: Snapshot) -> list[Hazard]:
    assert step.after is not None
    out: list[Hazard] = []
    if step.statement.lstrip().lower().startswith("truncate"):
        return out  # a new, empty file: not a rewrite of rows
    for t in sorted(tables):
        b, a = step.before.relations.get(t), step.after.relations.get(t)
        if b is None or a is None or b.filenode is None or b.filenode == a.filenode:
            continue
        lock = strongest(step.after.locks.get(t))
        out.append(Hazard("table_rewrite", step, a.shown, lock,
                          f"rewrites every row of {a.shown} and rebuilds its indexes under "
                          f"{lock}: reads and writes wait for the whole copy"))  # fmt: skip
    return out


def _indexes(step: Step, tables: set[int], baseline: Snapshot) -> list[Hazard]:
    assert step.after is not None
    before, after = step.before, step.after
    out: list[Hazard] = []
    gone = {r.name for o, r in before.relations.items() if o not in after.relations}
    backed = {c.index: c for c in after.constraints.values() if c.index}
    for oid, rel in after.relations.items():
        if oid in before.relations or rel.kind not in ("i", "I") or rel.table not in tables:
            continue
        if rel.name in gone:
            continue  # rebuilt by a type change: the rewrite is the finding
        if rel.kind == "I" and rel.valid is False:
            continue  # ON ONLY a partitioned table: it builds nothing (invalid_index tells)
        table = _name(after, rel.table)
        con = backed.get(oid)
        if con is not None and con.kind in ("u", "p"):
            if not step.autocommit:
                lock = strongest(after.locks.get(rel.table))
                out.append(Hazard("unique_constraint", step, table, lock,
                    f"builds the index of {con.name} under {lock}: every read and write of "
                    f"{table} waits for the build", {"index": rel.name, "constraint": con.name,
                    "type": "PRIMARY KEY" if con.kind == "p" else "UNIQUE",
                    "definition": con.definition}))  # fmt: skip
            continue
        if con is None and _not_concurrent(step):
            lock = strongest(after.locks.get(rel.table)) or "SHARE"
            out.append(Hazard("create_index", step, table, lock,
                f"builds {rel.name} under {lock}: every write to {table} waits for the build",
                {"index": rel.name}))  # fmt: skip
    was_backed = {c.index for c in before.constraints.values() if c.index}
    back = {r.name for o, r in after.relations.items() if o not in before.relations}
    for oid, rel in before.relations.items():
        if (oid in after.relations or rel.kind not in ("i", "I") or oid not in baseline.relations
                or oid in was_backed or rel.name in back or rel.table not in after.relations
                or not _not_concurrent(step)):  # fmt: skip
            continue
        table = _name(after, rel.table or 0)
        lock = strongest(after.locks.get(rel.table or 0)) or "ACCESS EXCLUSIVE"
        out.append(Hazard("drop_index", step, table, lock,
            f"drops {rel.name} under {lock} on {table}: it waits for every running query on the "
            "table, and every query waits behind it", {"index": rel.name}))  # fmt: skip
    return out


def _not_concurrent(step: Step) -> bool:
    # Outside a transaction the locks are gone before they can be read: there the statement's
    # own keyword is all there is to go on.
    return not step.autocommit or "concurrently" not in step.statement.lower()


def _constraints(step: Step, tables: set[int], not_valid_in: dict[tuple[int, str], int]
                 ) -> list[Hazard]:  # fmt: skip
    assert step.after is not None
    before, after = step.before, step.after
    out: list[Hazard] = []
    for key, con in after.constraints.items():
        if con.table not in tables or con.kind not in ("c", "f", "n"):
            continue
        old = before.constraints.get(key)
        table = _name(after, con.table)
        if old is None and not con.validated:
            not_valid_in[key] = step.transaction
        elif old is None and con.kind in ("c", "f") and _scanned(step, con.table):
            lock = strongest(after.locks.get(con.table))
            what = "CHECK" if con.kind == "c" else "FOREIGN KEY"
            out.append(Hazard("constraint_validated", step, table, lock,
                f"adds {what} {con.name} and checks every row of {table} under {lock}",
                {"constraint": con.name, "definition": con.definition, "type": what}))  # fmt: skip
        elif (old is not None and not old.validated and con.validated
              and not_valid_in.get(key) == step.transaction):  # fmt: skip
            lock = strongest(after.locks.get(con.table))
            out.append(Hazard("validate_same_transaction", step, table, lock,
                f"validates {con.name} in the transaction that added it NOT VALID: the "
                f"ACCESS EXCLUSIVE lock of the ADD is still held during the scan of {table}",
                {"constraint": con.name}))  # fmt: skip
    return out


def _columns(step: Step, tables: set[int]) -> list[Hazard]:
    assert step.after is not None
    before, after = step.before, step.after
    out: list[Hazard] = []
    for key, col in before.columns.items():
        if col.table not in tables or col.dropped:
            continue
        table = _name(before, col.table)
        lock = strongest(after.locks.get(col.table)) or "ACCESS EXCLUSIVE"
        now = after.columns.get(key)
        if col.table not in after.relations:
            continue
        names = {"column": col.name}
        if now is None or now.dropped:
            out.append(Hazard("drop_column", step, table, lock,
                f"drops {table}.{col.name}: code still deployed that reads or writes it fails "
                "until it is released", names))  # fmt: skip
        elif now.name != col.name:
            out.append(Hazard("rename_column", step, table, lock,
                f"renames {table}.{col.name} to {now.name}: code still deployed that uses the "
                "old name fails until the new code is out", {**names, "new": now.name},
            ))  # fmt: skip
        elif now.not_null and not col.not_null and _scanned(step, col.table):
            out.append(Hazard("set_not_null", step, table, lock,
                f"SET NOT NULL on {table}.{col.name} reads every row under {lock} (no valid "
                f"CHECK ({col.name} IS NOT NULL) to rely on)", names))  # fmt: skip
    for oid in tables:
        b, a = before.relations.get(oid), after.relations.get(oid)
        if b is not None and a is None:
            out.append(Hazard("drop_table", step, b.shown, "ACCESS EXCLUSIVE",
                f"drops {b.shown}: code still deployed that uses it fails"))  # fmt: skip
        elif b is not None and a is not None and a.name != b.name:
            out.append(Hazard("rename_table", step, b.shown, strongest(after.locks.get(oid)),
                f"renames {b.shown} to {a.shown}: code still deployed that uses the old name "
                "fails", {"new": a.shown}))  # fmt: skip
    return out


_NULLS = re.compile(r'column "(?P<column>[^"]+)" of relation "(?P<table>[^"]+)" contains null')


def _failure(step: Step, baseline: Snapshot) -> list[Hazard]:
    """A statement that failed here but not on the empty tables of the check's own upgrade."""
    if step.sqlstate == "25001" or "cannot run inside a transaction block" in step.error:
        return [in_transaction_hazard(step, "")]
    match = _NULLS.search(step.error)
    if match is not None:
        return [Hazard("not_null_without_default", step, match["table"], "ACCESS EXCLUSIVE",
                       f"fails on a table that has rows: {step.error}",
                       {"column": match["column"]})]  # fmt: skip
    return [
        Hazard(
            "fails_with_rows",
            step,
            "",
            "",
            f"fails once the existing tables have a row each: {step.error}",
        )
    ]


def in_transaction_hazard(step: Step, table: str) -> Hazard:
    """A statement PostgreSQL refuses in a transaction block (SQLSTATE 25001), as Alembic runs it.

    It fails every deployment, not only a populated one: the upgrade stops at it. Outside a
    transaction a CONCURRENTLY build or drop takes SHARE UPDATE EXCLUSIVE, which lets reads and
    writes go on; VACUUM FULL would still take ACCESS EXCLUSIVE, so no lock is claimed for others.
    """
    on = f" on {table}" if table else ""
    concurrent = "concurrently" in step.statement.lower()
    lock = "SHARE UPDATE EXCLUSIVE" if concurrent else ""
    outside = (f"outside one (autocommit_block()) it takes only {lock}{on}, and reads and writes "
               "go on") if concurrent else "run it outside one, in autocommit_block()"  # fmt: skip
    return Hazard("concurrently_in_transaction", step, table, lock,
                  f"fails: {step.error or 'it cannot run inside a transaction block'}: Alembic "
                  f"runs each revision in a transaction, so the upgrade stops here on every "
                  f"database; {outside}")  # fmt: skip

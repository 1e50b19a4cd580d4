"""The history itself, worker side: which heads are by design, and do new revisions round-trip.

Two checks beyond "do the models match the migrations":

- Heads. A history whose heads carry branch labels (expand/contract layouts) is upgraded to
  ``heads`` and checked whole; only unlabeled heads that were never merged, or two heads with
  one label, are the ``multiple_heads`` finding. The ``heads`` setting names the count or the
  labels a project expects, and then only a different set is a finding.
- Round trips. The revisions a change adds (the CLI finds them with git, run/untracked.py) are
  downgraded, the schema compared through the catalog with a database upgraded only to the
  base's heads, then upgraded again. Only the new revisions: a full up/down walk of a long
  history is what makes such checks too slow to keep (pytest-alembic's issue #85).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from migration_check.findings import CheckResult, Finding, Location
from migration_check.protocol import Emit, ProgressEvent, WorkerRequest
from migration_check.worker.admin import recreate_database
from migration_check.worker.diagnose import Failure
from migration_check.worker.envpy import run_env
from migration_check.worker.safety.run import SafetyRun
from migration_check.worker.schema_snapshot import (
    catalog_snapshot,
    snapshot_differences,
    snapshot_of,
)

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import Script, ScriptDirectory

__all__ = ["BaseCatch", "heads_problem", "round_trip", "round_trip_scratch"]

_MERGE_HINT = 'alembic merge heads -m "merge heads"'


def _labels(script: ScriptDirectory, head: str) -> set[str]:
    # Alembic copies a label onto the descendants of the revision declaring it, up to the
    # next branch point, so a head carries the label of the branch it ends.
    return set(script.get_revision(head).branch_labels)


def heads_problem(
    script: ScriptDirectory, heads: Sequence[str], expected: int | Sequence[str] | None
) -> Finding | None:
    """The ``multiple_heads`` finding, or None when the heads are the ones by design."""
    heads = sorted(heads)
    labels = {h: _labels(script, h) for h in heads}
    shown = ", ".join(f"{h} ({', '.join(sorted(labels[h]))})" if labels[h] else h for h in heads)
    if expected is not None:
        if isinstance(expected, int):
            ok = len(heads) == expected
            wanted = f"{expected} head{'s' if expected != 1 else ''}"
        else:
            ok = len(heads) == len(expected) and all(
                sum(label in labels[h] for h in heads) == 1 for label in expected
            )
            ok = ok and all(labels[h] & set(expected) for h in heads)
            wanted = f"one head per label {', '.join(expected)}"
        if ok:
            return None
        return Finding(
            kind="multiple_heads",
            table=None,
            name=", ".join(heads) or "base",
            message=f"the heads setting expects {wanted}; the history has {len(heads)}: "
            f"{shown or 'none'}",
            hint=f"{_MERGE_HINT}, or change heads in [tool.check-migrations]",
            source="history",
        )
    if len(heads) <= 1:
        return None
    unlabeled = [h for h in heads if not labels[h]]
    shared = sorted(
        {lb for h in heads for lb in labels[h] if sum(lb in labels[o] for o in heads) > 1}
    )
    if len(unlabeled) <= 1 and not shared:
        return None  # branches by design: every head but at most one is labelled
    if shared:
        message = (
            f"branch {', '.join(shared)} has more than one head: {shown}; merge them, or give "
            "the new branch its own label"
        )
    else:
        message = f"the history has {len(unlabeled)} heads without branch labels: {shown}"
    return Finding(
        kind="multiple_heads",
        table=None,
        name=", ".join(heads),
        message=message,
        hint=_MERGE_HINT,
        source="history",
    )


def _order(revs: Iterable[Script]) -> list[Script]:
    """Parents before children (dependencies too), among ``revs`` only; stable by id."""
    pending = {r.revision: r for r in revs}
    done: list[Script] = []
    placed: set[str] = set()
    while pending:
        ready = sorted(
            rid
            for rid, r in pending.items()
            if all(d in placed or d not in pending for d in r._all_down_revisions)
        )
        if not ready:  # a cycle: Alembic refuses such a map before we get here
            ready = sorted(pending)
        for rid in ready:
            done.append(pending.pop(rid))
            placed.add(rid)
    return done


def _def_line(path: str, name: str) -> int:
    try:
        with open(path, encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if line.startswith(f"def {name}("):
                    return number
    except OSError:
        pass
    return 1


def _run_steps(
    cfg: Config, script: ScriptDirectory, url: str, revs: list[Script], *, upgrade: bool
) -> None:
    """Apply exactly ``revs`` (in the given order) up or down through env.py."""
    from alembic.runtime.migration import MigrationStep

    state: dict[str, Any] = {"current": None}

    def tracked(rev: Script, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(**kw: Any) -> Any:
            state["current"] = rev
            result = fn(**kw)
            state["current"] = None
            return result

        return run

    def steps_fn(_rev: Any, _context: MigrationContext) -> list[Any]:
        steps = []
        for rev in revs:
            make = (
                MigrationStep.upgrade_from_script
                if upgrade
                else MigrationStep.downgrade_from_script
            )
            step = make(script.revision_map, rev)
            step.migration_fn = tracked(rev, step.migration_fn)
            steps.append(step)
        return steps

    run_env(
        cfg,
        script,
        url,
        steps_fn,
        phase="upgrade" if upgrade else "downgrade",
        state=state,
        starting_rev=None,
        destination_rev=None,
        tag=None,
    )


def round_trip(
    cfg: Config,
    script: ScriptDirectory,
    url: str,
    added: Iterable[str],
    recreate: Callable[[], None],
    version_table: tuple[str, str | None],
    emit: Emit,
    reference: dict[str, str] | None = None,
    safety: SafetyRun | None = None,
    into: CheckResult | None = None,
) -> list[Finding]:
    """Down, compare with a database at the base's heads, up again: for new revisions only.

    ``added`` are absolute paths of files new relative to the base; the database at ``url`` is
    at every head when called. The base's schema is ``reference`` when the upgrade caught it on
    the way (``BaseCatch``); else the database is rebuilt by ``recreate`` (empty) and upgraded
    to the base's heads, which costs a replay of the base's history.
    """
    wanted = {os.path.realpath(p) for p in added}
    revisions = list(script.walk_revisions())
    new = [r for r in revisions if r.path and os.path.realpath(r.path) in wanted]
    if not new:
        return []
    new_ids = {r.revision for r in new}
    old = [r for r in revisions if r.revision not in new_ids]
    if any(set(r._all_down_revisions) & new_ids for r in old):
        return []  # an old revision now builds on a new one: no base state to go back to
    names = ", ".join(sorted(new_ids))
    first = sorted(new, key=lambda r: r.revision)[0]
    where = Location(os.path.relpath(first.path), _def_line(first.path, "downgrade"))
    up = _order(new)
    how = "base schema caught on the way up" if reference is not None else "base replayed"
    emit(ProgressEvent(f"round trip of {names}: downgrade, compare, upgrade ({how})"))
    try:
        _run_steps(cfg, script, url, list(reversed(up)), upgrade=False)
    except Failure as exc:
        if exc.kind != "migration":
            raise
        failed = [_finding("downgrade_failed", names, f"downgrade failed: {exc.message}", where)]
        if safety is not None:  # observed on a replay of the base instead
            failed += safety.run(cfg, script, up, _order(old), _run_steps, into)
        return failed
    downgraded = catalog_snapshot(url, version_table)
    if safety is not None:
        safety.keep_base()  # the base's schema, for the observation (worker/safety/run.py)
    findings: list[Finding] = []
    try:
        _run_steps(cfg, script, url, up, upgrade=True)
    except Failure as exc:
        if exc.kind != "migration":
            raise
        findings.append(
            _finding(
                "reupgrade_failed",
                names,
                f"upgrade after the downgrade failed: {exc.message}",
                where,
            )
        )
    if reference is None:
        recreate()
        _run_steps(cfg, script, url, _order(old), upgrade=True)
        reference = catalog_snapshot(url, version_table)
    differences = snapshot_differences(downgraded, reference)
    if differences:
        shown = "; ".join(differences[:5]) + (
            f"; and {len(differences) - 5} more" if len(differences) > 5 else ""
        )
        findings.insert(
            0,
            _finding(
                "downgrade_incomplete",
                names,
                f"downgrade does not undo the upgrade: {shown}",
                where,
            ),
        )
    if safety is not None:
        findings += safety.run(cfg, script, up, _order(old), _run_steps, into,
                               replay=bool(differences))  # fmt: skip
    return findings


def round_trip_scratch(
    cfg: Config,
    script: ScriptDirectory,
    req: WorkerRequest,
    admin: Any,
    emit: Emit,
    reference: dict[str, str] | None = None,
    into: CheckResult | None = None,
) -> list[Finding]:
    """``round_trip`` on the worker's scratch database, rebuilt empty over ``admin``."""

    def recreate() -> None:
        recreate_database(admin, req.database, throwaway=req.throwaway_server)

    version_table = cfg.attributes.get("check_migrations.version_table", ("alembic_version", None))
    try:
        return round_trip(
            cfg,
            script,
            req.sync_url,
            req.history_added or [],
            recreate,
            version_table,
            emit,
            reference,
            SafetyRun(req, admin, req.safety, emit) if req.safety != "off" else None,
            into,
        )
    finally:
        admin.close()


def _finding(kind: str, names: str, message: str, where: Location) -> Finding:
    # The upgrade's advice ("the history does not build from empty") is wrong here: keep the
    # revision and the database error only.
    cut = message.find(" (SQLSTATE ")
    if cut != -1 and ")" in message[cut:]:
        message = message[: message.index(")", cut) + 1]
    return Finding(
        kind=kind,
        table=None,
        name=names,
        message=message,
        location=where,
        hint=f"make downgrade() of {names} undo exactly what upgrade() does",
        source="history",
    )


class BaseCatch:
    """The base's schema, caught during the check's own upgrade instead of replayed later.

    When every old revision has run (or was already in the database) before the first new one
    runs, the database at that moment is exactly a database upgraded to the base's heads: the
    same revisions applied to an empty database. Its catalog is read then, on the migration's
    own connection (inside its transaction). If a new revision is already in the database (a
    cached migrated database) or runs before some old one (interleaved branches), nothing is
    caught and the round trip replays the base. tests/worker/history/ compares both paths.
    """

    def __init__(self, added: Iterable[str]) -> None:
        self.wanted = {os.path.realpath(p) for p in added}
        self.snapshot: dict[str, str] | None = None
        self._new: set[str] = set()
        self._pending_old: set[str] = set()
        self._spoiled = True
        self._context: MigrationContext | None = None

    def plan(
        self, script: ScriptDirectory, steps: Sequence[Any], context: MigrationContext
    ) -> None:
        """Called with the upgrade's steps, before any runs."""
        revisions = list(script.walk_revisions())
        self._new = {
            r.revision for r in revisions if r.path and os.path.realpath(r.path) in self.wanted
        }
        running = {step.revision.revision for step in steps}
        self._pending_old = running - self._new
        # A new revision already applied (not among the steps): the base state is gone.
        self._spoiled = not self._new or not self._new <= running
        self._context = context
        self.snapshot = None

    def before(self, step: Any) -> None:
        """Called before each step's migration function."""
        rid = step.revision.revision
        if rid not in self._new:
            self._pending_old.discard(rid)
            return
        if self._spoiled or self.snapshot is not None or self._context is None:
            return
        if self._pending_old:  # a new revision before an old one: no base state on the way
            self._spoiled = True
            return
        version_table = (self._context.version_table, self._context.version_table_schema)
        conn = self._context.connection
        try:
            # A savepoint: should a query fail, the migration's transaction must not abort.
            with conn.begin_nested():  # type: ignore[union-attr]
                self.snapshot = snapshot_of(conn, version_table)
        except Exception:
            self._spoiled, self.snapshot = True, None  # then the round trip replays the base

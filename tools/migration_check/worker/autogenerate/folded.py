"""The comparison folded into the upgrade's run of env.py when that run applies nothing.

A check whose scratch database is already at head (a reused migrated-database cache entry, a
``--start-from`` dump at head) ran env.py twice: once to upgrade nothing, once to compare.
``alembic check`` compares from the function it hands env.py, inside ``run_migrations``, with
the MigrationContext env.py configured and the database's heads as ``rev``: exactly where the
upgrade's function stands when it finds no step to apply, with the same heads. So the
comparison (compare.py's ``Comparison``, the same code) runs there, and env.py runs once.

Decided in two steps. Before the upgrade (``folding``), no fold:
- multidb: each database has its context and its comparison, and no cache serves the run;
- a migrated-database cache whose entry is not reused: the entry stored after the upgrade
  records the upgrade's window of env.py alone (worker/replay_record.py);
- an env.py that reads which command runs it (``get_revision_argument``, ``destination_rev``,
  ...): the upgrade's run answers "head" where ``alembic check``'s answers None, so env.py
  could configure the comparison differently.
In the upgrade's function (worker/upgrade.py), only with nothing to apply, no multiple-heads
problem (which skips the comparison) and no stale answer from the cache's record.

The revision writer, the round trip, a Flask app's context and an async env.py all fold: the
writer and the round trip run env.py themselves after the comparison, and a Flask context or
an async env.py's event loop wraps the upgrade's run as it wrapped the comparison's.

After the run the cache may still find its entry stale (``after_upgrade``): the fold's
findings, or its failure, are then discarded (``discard``) and the check replays and compares
as before. A failure inside the fold is kept until the comparison's result is read, so the
upgrade's own checks (``_verify_reached_head``, the cache's) come first, as they did.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from migration_check.findings import Finding
from migration_check.protocol import Emit, ProgressEvent
from migration_check.worker.autogenerate.compare import Comparison
from migration_check.worker.diagnose import Failure

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

__all__ = ["Fold", "folding"]

# What env.py can ask of its EnvironmentContext that differs between `alembic upgrade head`
# and `alembic check` (the tag and -x arguments are the same in both).
_RUN_KIND = frozenset(
    ["get_revision_argument", "get_starting_revision_argument", "destination_rev",
     "starting_rev", "revision_context"]
)  # fmt: skip


class Fold:
    """The comparison to run from the upgrade's function, and what it found or raised."""

    def __init__(self, comparison: Comparison, emit: Emit, record: Any) -> None:
        self.comparison = comparison
        self.emit = emit
        self.record = record  # the cache's ReplayRecord, None without a cache
        self.ran = False
        self.failure: Failure | None = None
        self.discarded = False

    def context_kw(self) -> dict[str, Any]:
        """The upgrade's run gets what ``alembic check``'s gets (env.py's template_args)."""
        return self.comparison.context_kw()

    def compare(self, rev: Any, context: MigrationContext, state: dict[str, Any]) -> None:
        """From the upgrade's function, nothing to apply: compare in this run of env.py."""
        self.emit(ProgressEvent("comparing the database with the models"))
        self.ran = True
        state["phase"] = "compare"  # run_env names a failure from here as the comparison's
        # Neither traced nor its SQL taken for env.py's: the record's window is the upgrade's.
        with self.record.outside() if self.record is not None else contextlib.nullcontext():
            self.comparison.retrieve(rev, context)
        del state["phase"]

    def caught(self, exc: Failure, state: dict[str, Any]) -> bool:
        """Keep the comparison's failure (True) for ``findings``; any other is the upgrade's."""
        if state.get("phase") != "compare":
            return False
        self.failure = exc
        return True

    def discard(self) -> None:
        """The cache found its entry stale after the run: the check compares again."""
        self.discarded = True

    @property
    def used(self) -> bool:
        return self.ran and not self.discarded

    def findings(self) -> list[Finding]:
        if self.failure is not None:
            raise self.failure
        return self.comparison.found


def folding(
    cfg: Config,
    script: ScriptDirectory,
    emit: Emit,
    seen: dict[str, Any],
    on_configured: Callable[[dict[str, Any]], None],
    *,
    multidb: bool,
    cache: tuple[bool, Any] | None,
) -> Fold | None:
    """The fold this check may make, or None (the module's docstring says when).

    ``cache``: (its entry is reused, its ReplayRecord), None without a cache.
    """
    if multidb or (cache is not None and not cache[0]) or _reads_run_kind(script):
        return None
    comparison = Comparison(cfg, script, seen, on_configured=on_configured)
    return Fold(comparison, emit, cache[1] if cache is not None else None)


def _reads_run_kind(script: ScriptDirectory) -> bool:
    """Does env.py's code name what tells an upgrade's run from a comparison's?"""
    import ast

    path = os.path.join(script.dir, "env.py")
    try:
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read(), path)
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return True  # the run names what is wrong with it; nothing is folded meanwhile
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in _RUN_KIND:
            return True
        if isinstance(node, ast.Name) and node.id in _RUN_KIND:
            return True
        if isinstance(node, ast.Constant) and node.value in _RUN_KIND:
            return True
    return False

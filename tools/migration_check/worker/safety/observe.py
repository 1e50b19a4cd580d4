"""The cursor hook: a snapshot before and after every statement the new revisions run.

Installed on SQLAlchemy's ``Engine`` class for the length of the observed upgrade, so it sees
the migration's connection whichever way env.py made it (the handed connection, its own
engine, an async engine's sync proxy). Each statement becomes a ``Step``: what changed between
its two snapshots, on the relations that existed before the new revisions ran.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from migration_check.worker.safety.snapshot import Snapshot, take

__all__ = ["Observer", "Step"]

# Reads, and the session settings Alembic or env.py issue: never a hazard, and not shown.
_QUIET = ("select", "show", "set ", "reset", "begin", "commit", "rollback", "savepoint",
          "release")  # fmt: skip


@dataclass
class Step:
    """One observed statement: where it came from, and what it did."""

    revision: str
    file: str
    line: int
    statement: str
    before: Snapshot
    after: Snapshot | None = None  # None: the statement failed
    autocommit: bool = False
    error: str = ""
    sqlstate: str = ""

    @property
    def transaction(self) -> int:
        return self.before.xid


@dataclass
class Observer:
    """Collects ``Step``s for the statements run from the revision files in ``files``.

    ``files`` maps a revision file's real path to its revision id: the Python stack at the
    moment of execution says which revision (and which line of it) issued a statement.
    """

    files: dict[str, str]
    version_table: str
    steps: list[Step] = field(default_factory=list)
    baseline: Snapshot | None = None
    # The relations that existed before (set with ``baseline``): the snapshots read only them.
    old: frozenset[int] | None = None
    _pending: dict[int, Step] = field(default_factory=dict)
    _last: Step | None = None
    # The last after-snapshot, while nothing has run since: it is the next statement's before.
    _fresh: Snapshot | None = None
    # The cost (bench/safety.py, -v): snapshots taken and their seconds, the statements' seconds.
    snapshots: int = 0
    snapshot_seconds: float = 0.0
    statement_seconds: float = 0.0
    _started: float = 0.0
    _real: dict[str, str] = field(default_factory=dict)  # a code file's name -> its realpath

    @contextmanager
    def installed(self) -> Iterator[None]:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        hooks: list[tuple[str, Callable[..., Any]]] = [
            ("before_cursor_execute", self._before),
            ("after_cursor_execute", self._after),
            ("handle_error", self._error),
            ("commit", self._moved),
            ("rollback", self._moved),
            ("begin", self._moved),
        ]
        for name, fn in hooks:
            event.listen(Engine, name, fn)
        try:
            yield
        finally:
            for name, fn in hooks:
                event.remove(Engine, name, fn)

    def _origin(self) -> tuple[str, str, int] | None:
        # The frames themselves, innermost first (what traceback.extract_stack lists, without
        # reading each file's source lines), each code file resolved once: a statement is
        # dozens of frames below its revision's line, and realpath is a stat per component.
        frame: FrameType | None = sys._getframe(1)
        while frame is not None:
            name = frame.f_code.co_filename
            real = self._real.get(name)
            if real is None:
                real = os.path.realpath(name)
                if os.path.isabs(name):  # a relative name depends on the working directory
                    self._real[name] = real
            rev = self.files.get(real)
            if rev is not None:
                return rev, os.path.relpath(name), frame.f_lineno or 1
            frame = frame.f_back
        return None

    def _observed(self, statement: str) -> bool:
        text = statement.lstrip().lower()
        if text.startswith(_QUIET):
            return False
        # Alembic's own bookkeeping of the version table.
        return self.version_table.lower() not in text.split("(", 1)[0]

    def _moved(self, *_args: Any) -> None:
        self._fresh = None  # a transaction boundary: locks and counters are not the same

    def _before(
        self, conn: Any, cursor: Any, statement: str, _params: Any, _context: Any, _many: bool
    ) -> None:
        fresh, self._fresh = self._fresh, None
        if not self._observed(statement):
            return
        origin = self._origin()
        if origin is None:
            return  # env.py's or the checker's own statement, not a revision's
        raw = conn.connection.dbapi_connection
        autocommit = bool(getattr(raw, "autocommit", False))
        snap = fresh if fresh is not None and not autocommit else self._take(raw)
        if self.baseline is None:
            self.baseline = snap
        step = Step(*origin, statement=statement.strip(), before=snap, autocommit=autocommit)
        self._pending[id(cursor)] = self._last = step
        self.steps.append(step)
        self._started = time.perf_counter()

    def _after(
        self, conn: Any, cursor: Any, _statement: str, _params: Any, _context: Any, _many: bool
    ) -> None:
        step = self._pending.pop(id(cursor), None)
        if step is not None:
            self.statement_seconds += time.perf_counter() - self._started
            step.after = self._take(conn.connection.dbapi_connection)
            self._last = None
            self._fresh = step.after

    def _take(self, raw: Any) -> Snapshot:
        start = time.perf_counter()
        try:
            return take(raw, self.old)
        finally:
            self.snapshots += 1
            self.snapshot_seconds += time.perf_counter() - start

    def _error(self, context: Any) -> None:
        # The failing statement is the one started last and not finished.
        step, self._last = self._last, None
        if step is None or step.after is not None or step.error:
            return
        orig = context.original_exception
        step.error = str(orig).strip().splitlines()[0] if str(orig).strip() else repr(orig)
        step.sqlstate = str(getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", "") or "")

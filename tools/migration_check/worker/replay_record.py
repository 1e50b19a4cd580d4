"""What a replay consumed of the modules the revisions did not import: the migrated database's
record (issue 20), so a model edit need not replay the history.

The migrated database depends on a model module only where the upgrade ran its code or read its
data. This records both, over the upgrade's run of env.py:

- every import statement a project module executes (``__import__`` and
  ``importlib.import_module``), so the revisions' own closure is known: the revision files and
  what they import, however deep;
- every call into project code once env.py reaches the migrations (``sys.settrace``, and
  ``threading.settrace`` for threads started meanwhile): a ``@compiles`` override, an event
  listener, a ``TypeDecorator`` method of a model module all show up;
- every attribute the upgrade reads from the target metadata (its class is swapped for a
  recording subclass while the migrations run): the naming convention Alembic's ``op.*`` build
  with, and anything else, by value;
- the options env.py passed to ``context.configure``, as a digest;
- the SQL env.py ran around the migrations (outside ``MigrationContext.run_migrations``).

``verdict`` turns that into the entry's record, or into the one reason the record cannot vouch
for the replay (the entry is then keyed on every loaded module, as before). On a run that reuses
an entry, ``begin`` compares the metadata and the options with the entry's before anything is
applied, and ``sql_changed`` the SQL afterwards; a difference replays from empty.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import importlib
import os
import sys
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from migration_check.fingerprints.model_record import model_digest, shown_path

__all__ = ["ReplayRecord"]

# context.opts entries that are the checker's own or objects of this run, not env.py's choice.
_RUN_OPTS = frozenset(
    [
        "connection",
        "target_metadata",
        "fn",
        "script",
        "output_buffer",
        "starting_rev",
        "destination_rev",
        "tag",
        "as_sql",
        "template_args",
        "revision_context",
    ]
)
_CHECKER = os.path.dirname(os.path.dirname(os.path.realpath(__file__))) + os.sep


def plain(value: Any, depth: int = 0) -> str | None:
    """A stable rendering of a value made of data (and named callables); None for any other."""
    if depth > 6:
        return None
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return repr(value)
    if isinstance(value, Mapping):
        items = []
        for k, v in value.items():
            key, val = plain(k, depth + 1), plain(v, depth + 1)
            if key is None or val is None:
                return None
            items.append(f"{key}:{val}")
        return "{" + ",".join(sorted(items)) + "}"
    if isinstance(value, list | tuple | set | frozenset):
        parts = [plain(v, depth + 1) for v in value]
        if any(p is None for p in parts):
            return None
        shown = [p for p in parts if p is not None]
        return "[" + ",".join(sorted(shown) if isinstance(value, set | frozenset) else shown) + "]"
    module, qualname = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
    if (callable(value) or isinstance(value, type)) and module and qualname:
        # A function's code is keyed by its file: env.py's by content, a model module's by
        # model_digest, a library's by version.
        return f"<{module}:{qualname}>"
    return None


class ReplayRecord:
    """One worker's record; ``upgrade_window`` wraps each upgrade's run of env.py."""

    def __init__(self, expected: dict[str, Any] | None = None) -> None:
        from migration_check.fingerprints.closure import library_dirs

        stdlib, libs = library_dirs()
        self._not_project = (*stdlib, *libs, _CHECKER)
        self._kinds: dict[str, bool] = {}
        self.expected = expected  # the cached entry's record, when its database is reused
        self.edges: dict[str, set[str]] = {}
        self.reason: str | None = None
        self.stale: str | None = None
        # What env.py loaded before its first run reached the migrations: a replay from empty
        # after a stale entry sees the revisions' imports loaded already.
        self.loaded_before: set[str] | None = None
        self._reset()
        self._install_imports()

    def _reset(self) -> None:
        self.calls: dict[str, set[str]] = {}  # file -> the qualnames called in it
        self.reads: dict[str, Any] = {}
        self.options: str | None = None
        self.sql: list[str] = []
        self.applied: list[str] = []
        self._in_alembic = 0
        self._recording = False
        self._swapped: list[tuple[Any, type]] = []
        self.stale = None
        # The checker's own work inside the window (a folded comparison), and the threads it
        # started: their SQL is not env.py's (``outside``).
        self._outside = False
        self._checker_threads: set[threading.Thread] = set()

    def project(self, filename: str) -> bool:
        """Is ``filename`` the project's code (not the stdlib, a library or the checker)?"""
        kind = self._kinds.get(filename)
        if kind is None:
            real = os.path.realpath(filename) if filename and filename[0] != "<" else ""
            kind = bool(real) and not real.startswith(self._not_project)
            self._kinds[filename] = kind
        return kind

    # Imports: the revisions' own closure.

    def _install_imports(self) -> None:
        original, import_module = builtins.__import__, importlib.import_module
        record = self

        def recording_import(name: str, globals: Any = None, locals: Any = None,
                             fromlist: Any = (), level: int = 0) -> Any:  # fmt: skip
            module = original(name, globals, locals, fromlist, level)
            with contextlib.suppress(Exception):
                record._edge(globals, name, fromlist, level)
            return module

        def recording_import_module(name: str, package: str | None = None) -> Any:
            module = import_module(name, package)
            with contextlib.suppress(Exception):
                caller = sys._getframe(1).f_globals
                absolute = importlib.util.resolve_name(name, package) if name[:1] == "." else name
                record._edge(caller, absolute, (), 0)
            return module

        builtins.__import__ = recording_import
        importlib.import_module = recording_import_module

    def _edge(self, globals: Any, name: str, fromlist: Any, level: int) -> None:
        importer = globals.get("__file__") if isinstance(globals, dict) else None
        if not isinstance(importer, str) or not self.project(importer):
            return
        if level:
            name = importlib.util.resolve_name("." * level + name, globals.get("__package__"))
        parts = name.split(".")
        names = [".".join(parts[: i + 1]) for i in range(len(parts))]
        names += [f"{name}.{item}" for item in fromlist or () if isinstance(item, str)]
        targets = self.edges.setdefault(os.path.realpath(importer), set())
        for modname in names:
            path = getattr(sys.modules.get(modname), "__file__", None)
            if isinstance(path, str) and self.project(path):
                targets.add(os.path.realpath(path))

    def closure_of(self, roots: list[str]) -> dict[str, str]:
        """Every project file ``roots`` import, however deep: {file: the root importing it}."""
        seen: dict[str, str] = {}
        for root in roots:
            todo = [root]
            while todo:
                for target in self.edges.get(todo.pop(), ()):
                    if target not in seen:
                        seen[target] = root
                        todo.append(target)
        return seen

    # The upgrade's window.

    @contextlib.contextmanager
    def upgrade_window(self) -> Iterator[None]:
        """Around one run of env.py for the upgrade: the SQL it runs outside the migrations."""
        from alembic.runtime.migration import MigrationContext
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        self._reset()
        record = self
        run_migrations = MigrationContext.run_migrations

        def counted(context: Any, **kw: Any) -> Any:
            record._in_alembic += 1
            try:
                return run_migrations(context, **kw)
            finally:
                record._in_alembic -= 1

        def statement(conn: Any, cursor: Any, sql: str, params: Any, *_: Any) -> None:
            if record._in_alembic or record._outside:
                return
            if threading.current_thread() not in record._checker_threads:
                record.sql.append(hashlib.sha256(f"{sql}\0{params!r}".encode()).hexdigest())

        MigrationContext.run_migrations = counted  # type: ignore[method-assign,assignment]
        event.listen(Engine, "before_cursor_execute", statement)
        try:
            yield
        finally:
            self._stop()
            event.remove(Engine, "before_cursor_execute", statement)
            MigrationContext.run_migrations = run_migrations  # type: ignore[method-assign]

    @contextlib.contextmanager
    def outside(self) -> Iterator[None]:
        """The checker's own work inside the window: the comparison folded into the upgrade's
        run of env.py (worker/autogenerate/folded.py).

        Tracing ends first (and the target metadata gets its class back): a reused entry's
        record is only compared (``begin``, ``sql_changed``), never recorded again, and a trace
        would slow the comparison. No SQL run meanwhile is env.py's, nor, until the window
        ends, any of a thread started meanwhile (the models' database build's), whatever
        ``_in_alembic`` says: it counts for every thread.
        """
        self._stop()
        before = set(threading.enumerate())
        self._outside = True
        try:
            yield
        finally:
            self._outside = False
            self._checker_threads |= set(threading.enumerate()) - before

    def begin(self, context: Any) -> str | None:
        """env.py reached the migrations: check the entry's record, start tracing.

        Returns why the reused database is stale (nothing must be applied then), or None.
        """
        if self.loaded_before is None:
            self.loaded_before = {
                os.path.realpath(p)
                for m in list(sys.modules.values())
                if isinstance(p := getattr(m, "__file__", None), str) and self.project(p)
            }
        opts = {k: v for k, v in context.opts.items() if k not in _RUN_OPTS}
        rendered = {k: plain(v) for k, v in sorted(opts.items())}
        odd = [k for k, v in rendered.items() if v is None]
        if odd:
            self.reason = self.reason or (
                f"env.py passed context.configure({odd[0]}=...) a value the record cannot compare"
            )
        self.options = hashlib.sha256(repr(sorted(rendered.items())).encode()).hexdigest()
        targets = self._targets(context.opts.get("target_metadata"))
        if self.expected is not None:
            stale = self._compare(targets)
            if stale is not None:
                self.stale = stale
                return stale
        if sys.gettrace() is not None:
            self.reason = self.reason or "a trace could not be taken (another tracer is set)"
        else:
            self._start(targets)
        return None

    def _targets(self, metadata: Any) -> list[Any]:
        if metadata is None:
            return []
        return list(metadata) if isinstance(metadata, list | tuple) else [metadata]

    def _compare(self, targets: list[Any]) -> str | None:
        assert self.expected is not None
        if self.expected.get("options") != self.options:
            return "the options env.py passes to context.configure changed"
        reads = self.expected.get("metadata") or {}
        for key, shown in reads.items():
            index, _, attr = key.partition(":")
            value = getattr(targets[int(index)], attr, None) if int(index) < len(targets) else None
            if plain(value) != shown:
                return f"the target metadata's {attr} changed"
        return None

    def _start(self, targets: list[Any]) -> None:
        for index, metadata in enumerate(targets):
            self._swap(index, metadata)
        self._recording = True
        threading.settrace(self._trace)
        sys.settrace(self._trace)

    def _stop(self) -> None:
        if self._recording:
            sys.settrace(None)
            threading.settrace(None)
            self._recording = False
        for metadata, cls in self._swapped:
            with contextlib.suppress(TypeError):
                metadata.__class__ = cls
        self._swapped = []

    def _trace(self, frame: Any, event: str, arg: Any) -> None:
        code = frame.f_code
        if event == "call" and self.project(code.co_filename):
            self.calls.setdefault(os.path.realpath(code.co_filename), set()).add(code.co_qualname)

    def _swap(self, index: int, metadata: Any) -> None:
        """Record what the upgrade reads from ``metadata``: its class, for the window."""
        cls = type(metadata)
        reads, record = self.reads, self

        getter: Any = cls.__getattribute__

        def __getattribute__(obj: Any, name: str) -> Any:
            value = getter(obj, name)
            if record._recording and not name.startswith("__"):
                reads.setdefault(f"{index}:{name}", value)
            return value

        recording = type(cls.__name__, (cls,), {"__getattribute__": __getattribute__,
                                                "__module__": cls.__module__})  # fmt: skip
        try:
            metadata.__class__ = recording
        except TypeError:
            self.reason = self.reason or "the target metadata's reads could not be recorded"
            return
        self._swapped.append((metadata, cls))

    # After the upgrade.

    def sql_changed(self) -> str | None:
        if self.expected is None or self.expected.get("sql") == self._sql_digest():
            return None
        return "the SQL env.py runs around the migrations changed"

    def _sql_digest(self) -> str:
        return hashlib.sha256("\n".join(self.sql).encode()).hexdigest()

    def verdict(
        self,
        *,
        env_py: str,
        root: str,
        revisions: list[str],
        closure: list[str],
        cached_closure: list[str],
    ) -> tuple[dict[str, Any] | None, str | None]:
        """The entry's record and the model files it leaves to ``model_digest``, or the reason
        the record cannot vouch for the replay."""
        from migration_check.worker.replay_envpy import envpy_reads_models

        if self.reason is not None:
            return None, self.reason
        # The trace's own check: every revision it applied ran code the trace saw (a trace that
        # does not follow env.py into a thread or a greenlet must not vouch for anything).
        applied = [os.path.realpath(p) for p in self.applied]
        missed = [r for r in applied if not self.calls.get(r, set()) - {"<module>"}]
        if missed:
            return None, f"a trace could not be taken (it saw no call into {shown_path(missed[0])})"
        before = self.loaded_before or set()
        reached = self.closure_of(revisions)
        own = (set(reached) | set(cached_closure) | set(revisions)) - before
        for path, names in sorted(self.calls.items()):
            if path not in own and path != env_py:
                return None, f"the upgrade called {shown_path(path)}:{sorted(names)[0]}"
        for path, importer in sorted(reached.items()):
            if path in before and path != env_py:
                return None, f"{shown_path(importer)} imports {shown_path(path)}"
        # Only what env.py loaded from the project's tree is left to model_digest: a module from
        # elsewhere (a start-up patch on PYTHONPATH) stays keyed by its content.
        top = root.rstrip(os.sep) + os.sep
        models = sorted(
            p for p in set(closure) & before if p.startswith(top) and p not in own and p != env_py
        )
        why = envpy_reads_models(env_py, set(models))
        if why is not None:
            return None, why
        for key, value in sorted(self.reads.items()):
            if plain(value) is None:
                return None, f"the upgrade read the target metadata's {key.partition(':')[2]}"
        digests = {path: model_digest(path) for path in models}
        unreadable = [p for p, d in digests.items() if d is None]
        if unreadable:
            return None, f"{shown_path(unreadable[0])} could not be parsed"
        return {
            "metadata": {k: plain(v) for k, v in sorted(self.reads.items())},
            "options": self.options,
            "sql": self._sql_digest(),
            "closure": sorted(own),
            "models": digests,
        }, None

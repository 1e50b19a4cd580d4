"""The migrated-database cache, the worker's side: validate the copied database, snapshot it.

The CLI picked a candidate entry by re-hashing what it recorded (caches/migrated.py); here, once the
script directory is resolved, the rest of the key is checked for real (library versions,
options, the closure of loaded modules, everything the cached upgrade read as fingerprints/inputs.py
recorded it), and after env.py ran the worker checks that the revision
map it saw is the one the entry extends. When anything disagrees the cached database is dropped
and the history replayed from empty. After a successful upgrade the database is copied
(``CREATE DATABASE ... TEMPLATE``) before the comparison runs env.py again.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migration_check.fingerprints.closure import closure_changed, record_closure
from migration_check.fingerprints.digests import file_digests, unchanged
from migration_check.fingerprints.inputs import merge_inputs
from migration_check.fingerprints.model_record import models_changed
from migration_check.protocol import MIGRATED_FORMAT as FORMAT
from migration_check.protocol import ProgressEvent, WorkerRequest
from migration_check.worker.envpy import toml_file_name

if TYPE_CHECKING:
    from migration_check.fingerprints.inputs import InputRecorder

__all__ = ["WorkerCache", "open_worker_cache", "worker_environment"]

# Distributions whose version changes what a replay builds, whether or not a module of theirs
# is loaded yet when the entry is validated (the closure records the rest).
_LIBRARIES = ("alembic", "sqlalchemy", "psycopg", "psycopg-binary", "psycopg2", "psycopg2-binary",
              "asyncpg", "pg8000")  # fmt: skip


def worker_environment(
    *, pg_fingerprint: str, name: str, x_args: list[str], drivername: str, startup: Any
) -> dict[str, Any]:
    """Everything outside the project's files that changes what a replay builds."""
    from importlib import metadata

    libs: dict[str, str] = {}
    for dist in _LIBRARIES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            libs[dist] = metadata.version(dist)
    return {
        "format": FORMAT,
        "python": sys.version,
        "pg": pg_fingerprint,
        "libraries": libs,
        "name": name,
        "x_args": list(x_args),
        "driver": drivername,
        # The interpreter and the variables read below os.environ (fingerprints/startup.py), from
        # the CLI.
        "startup": startup,
    }


def _version_locations(script: Any) -> list[Path]:
    """The version locations as configured, computed without Alembic's memoised property.

    ``ScriptDirectory._version_locations`` is memoised on first use: reading it before env.py
    runs would freeze the locations env.py may still set (a real project shape, DESIGN.md).
    """
    from alembic.util import coerce_resource_to_filename

    if script.version_locations:
        return [Path(coerce_resource_to_filename(p)).absolute() for p in script.version_locations]
    return [Path(script.dir, "versions").absolute()]


class WorkerCache:
    """The worker's side: validate the copied database, replay from empty if stale, snapshot.

    ``admin`` is a psycopg connection to the maintenance database, opened before the worker's
    connection guard, so the cache's own statements never pass through it.
    """

    def __init__(
        self,
        request: dict[str, Any],
        admin: Any,
        database: str,
        emit: Any,
        recorder: InputRecorder | None,
    ) -> None:
        self.entry: dict[str, Any] | None = request.get("entry")
        self.pg_fingerprint = str(request.get("pg_fingerprint", ""))
        self.startup = request.get("startup")
        self.replay_reason = request.get("replay_reason")
        self.recorder = recorder
        self.admin = admin
        self.database = database
        self.emit = emit
        self.used = False
        # --start-from: reloads the dump into a database recreated empty (worker/main.py).
        self.reload: Callable[[], None] | None = None
        self.snapshot: str | None = None
        self.env: dict[str, Any] = {}
        self.locations: list[str] = []
        self.files: dict[str, str] = {}
        self.meta: dict[str, Any] = {}
        from migration_check.worker.replay_record import ReplayRecord

        # Installed before env.py runs: its import hooks see every module the revisions import.
        self.record = ReplayRecord((self.entry or {}).get("record"))

    @property
    def cached_revisions(self) -> int:
        return len(self.entry.get("revisions", [])) if self.used and self.entry else 0

    def _progress(self, message: str) -> None:
        self.emit(ProgressEvent(message))

    def _sql(self, statement: str, *names: str) -> None:
        from psycopg import sql

        self.admin.execute(sql.SQL(statement).format(*(sql.Identifier(n) for n in names)))

    def recreate_empty(self) -> None:
        from migration_check.worker.admin import (
            create_database,
            drop_database,
            drop_history_roles,
        )

        # The cache serves the throwaway server only (runner._cache_plan), whose cluster came
        # from the entry: as fresh as a new one again, but for the databases of this run.
        drop_database(self.admin, self.database)
        drop_history_roles(self.admin)
        create_database(self.admin, self.database, throwaway=True)
        if self.reload is not None:
            self.reload()
        self.used = False
        self.record.expected = None

    def prepare(self, req: WorkerRequest, cfg: Any, script: Any, drivername: str) -> None:
        """Hash what the history depends on; keep the copied database only if none of it moved."""
        self.env = worker_environment(
            pg_fingerprint=self.pg_fingerprint,
            name=req.name,
            x_args=list(req.x_args),
            drivername=drivername,
            startup=self.startup,
        )
        # Every module env.py and the revisions load is recorded after the upgrade
        # (take_snapshot, fingerprints/closure.py); here only the files named before anything runs.
        env_py = Path(script.dir).resolve() / "env.py"
        locations = _version_locations(script)
        self.locations = [str(p.resolve()) for p in locations]
        # pyproject.toml's [tool.alembic] (Alembic 1.16+ layouts) configures the history too.
        toml_name = toml_file_name(cfg)
        toml = [Path(toml_name).resolve()] if toml_name else []
        with self._own_reads():
            self.files = file_digests(
                [Path(cfg.config_file_name).resolve(), env_py, *toml],
                recurse=[p for p in locations if p.is_dir()],
            )
        if self.entry is None:
            if self.replay_reason:
                self._progress(f"replaying the history: {self.replay_reason}")
            return
        with self._own_reads():
            reason = self._stale_reason()
        if reason is None:
            self.used = True
            heads = ", ".join(self.entry.get("heads", []))
            self._progress(
                f"using cached migrated database ({len(self.entry.get('revisions', []))} "
                f"revision(s), head {heads})"
            )
            return
        self._progress(f"cached migrated database is stale ({reason}); replaying from empty")
        self.recreate_empty()

    def _stale_reason(self) -> str | None:
        assert self.entry is not None
        if self.entry.get("env") != self.env:
            return "PostgreSQL, Python, library version or options changed"
        recorded: dict[str, str] = self.entry.get("files", {})
        for path, digest in recorded.items():
            now = self.files.get(path) or file_digests([Path(path)]).get(path)
            if now != digest:
                return f"{os.path.relpath(path)} changed" if now else f"{path} is gone"
        inputs = self.entry.get("inputs")
        if not isinstance(inputs, dict):
            return "it holds no record of what its upgrade read"
        # Environment variables were compared by the CLI (choose_entry), which builds ours.
        return (
            unchanged(inputs)
            or closure_changed(self.entry.get("closure", {}))
            or models_changed((self.entry.get("record") or {}).get("models"))
        )

    def _own_reads(self) -> contextlib.AbstractContextManager[None]:
        """The cache's bookkeeping reads files too; they are the checker's, not the project's."""
        return self.recorder.paused() if self.recorder is not None else contextlib.nullcontext()

    def entry_inputs(self) -> dict[str, Any] | None:
        """What the cached entry's upgrade read (verified unchanged), when it was used."""
        if not self.used or self.entry is None:
            return None
        inputs = self.entry.get("inputs")
        return inputs if isinstance(inputs, dict) else None

    def after_upgrade(self, script: Any, heads: list[str]) -> bool:
        """Check the history env.py ran against the one hashed; False: replay from empty."""
        revisions = {rev.revision: rev for rev in script.walk_revisions()}
        unhashed = [
            r
            for r in revisions.values()
            if r.path and str(Path(r.path).resolve()) not in self.files
        ]
        if unhashed:
            # env.py pointed Alembic at revisions outside the locations hashed before it ran.
            self.env = {}
        if not self.used or self.entry is None:
            return True
        stale = self.record.stale or self.record.sql_changed()
        if stale is not None:
            self._progress(f"replaying the history: {stale}")
            return False
        cached = set(self.entry.get("revisions", []))
        cached_heads = set(self.entry.get("heads", []))
        new = set(revisions) - cached
        extends = cached <= set(revisions) and all(
            set(revisions[r]._all_down_revisions) <= new | cached_heads for r in new
        )
        if extends and not unhashed:
            return True
        self._progress("the history does not extend the cached one; replaying from empty")
        return False

    def take_snapshot(self, script: Any, heads: list[str], applied: int) -> None:
        """Copy the freshly upgraded database, before the comparison runs env.py again."""
        import psycopg

        if not self.env or len(heads) != 1 or (self.used and applied == 0):
            return
        inputs = self.recorder.peek() if self.recorder is not None else None
        if inputs is None:
            why = self.recorder.refused if self.recorder is not None else "nothing was recorded"
            self._progress(f"not caching the migrated database: the upgrade {why}")
            return
        inputs = merge_inputs(self.entry_inputs(), _without_listings(inputs, self.locations))
        revisions = sorted(rev.revision for rev in script.walk_revisions())
        with self._own_reads():
            closure = record_closure(Path.cwd())
        if self.used and self.entry is not None:
            # The cached revisions' upgrade() did not run here, so what they import inside it
            # is not loaded now; the entry recorded it, and it was found unchanged.
            cached = self.entry.get("closure", {})
            closure["files"] = {**cached.get("files", {}), **closure["files"]}
            closure["libraries"] = {**cached.get("libraries", {}), **closure["libraries"]}
            closure["stamps"] = {**cached.get("stamps", {}), **closure["stamps"]}
        record, replay_reason = self._record(script, closure)
        if record is not None:
            # The models are keyed by what of them can run during an upgrade (model_digest).
            models = record["models"]
            closure["files"] = {p: d for p, d in closure["files"].items() if p not in models}
            kept = {p: d for p, d in inputs["files"].items() if p not in models}
            inputs = {**inputs, "files": kept}
        name = f"check_migrations_tpl_{secrets.token_hex(6)}"
        self._progress("copying the migrated database for the cache")
        try:
            self._sql("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY", name, self.database)
        except psycopg.Error as exc:  # env.py left a connection open: no entry, same verdict
            self._progress(f"not caching the migrated database: {str(exc).strip()}")
            return
        self.snapshot = name
        self.meta = {
            "env": self.env,
            "files": self.files,
            "closure": closure,
            "inputs": inputs,
            "revisions": revisions,
            "heads": sorted(heads),
            "database": name,
            "record": record,
            "replay_reason": replay_reason,
        }

    def _record(self, script: Any, closure: dict[str, Any]) -> tuple[Any, str | None]:
        """The replay's record (worker/replay_record.py), or why the entry keys every module."""
        cached = (self.entry or {}) if self.used else {}
        if cached.get("replay_reason"):
            # The cached revisions' upgrade did not run here: what it was seen to do still holds.
            return None, str(cached["replay_reason"])
        if self.used and not isinstance(cached.get("record"), dict):
            return None, "the cached database was keyed on every module"
        earlier = cached.get("record") or {}
        with self._own_reads():
            record, why = self.record.verdict(
                env_py=str((Path(script.dir) / "env.py").resolve()),
                root=str(Path.cwd().resolve()),
                revisions=[str(Path(r.path).resolve()) for r in script.walk_revisions() if r.path],
                closure=list(closure["files"]),
                cached_closure=list(earlier.get("closure", [])),
            )
        if record is not None:
            record["metadata"] = {**earlier.get("metadata", {}), **record["metadata"]}
        return record, why

    def finish(self) -> dict[str, Any] | None:
        """After the comparison: leave only the snapshot in the cluster; return what to store."""
        import psycopg

        if self.snapshot is None:
            return None
        try:
            self._sql("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.database)
        except psycopg.Error:
            return None
        return self.meta

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.admin.close()


def _without_listings(inputs: dict[str, Any], locations: list[str]) -> dict[str, Any]:
    """The entry's inputs without the version locations' listings: a new revision file there is
    what the entry is built to extend (``after_upgrade`` checks the revision map it makes), and
    every file already there is hashed in the entry's ``files``."""
    roots = tuple(loc.rstrip(os.sep) for loc in locations)
    kept = {
        d: v
        for d, v in inputs.get("dirs", {}).items()
        if not any(d == r or d.startswith(r + os.sep) for r in roots)
    }
    return {**inputs, "dirs": kept}


def open_worker_cache(
    req: WorkerRequest, emit: Any, recorder: InputRecorder | None
) -> WorkerCache | None:
    """Connect for the cache's statements; None when the run has no cache."""
    if not req.cache:
        return None
    from migration_check.worker.admin import connect_admin

    return WorkerCache(req.cache, connect_admin(req), req.database, emit, recorder)

"""The migrated-database cache: an unchanged history costs no replay.

Replaying every revision on each check is the one cost that grows with the project's age. After a
successful upgrade the worker snapshots the scratch database (``CREATE DATABASE ... TEMPLATE``),
the CLI stops the server with a checkpoint and keeps the whole data directory in the cache
directory, next to the initialised cluster. A later check starts its private server from a copy of
that directory and upgrades the cached database in place: nothing when the history is unchanged,
only the new revisions when it only gained revisions on top of the cached heads.

What the key covers (``env`` and ``files`` of an entry's ``meta.json``): the PostgreSQL build, the
Python version, the versions of Alembic, SQLAlchemy and the drivers, the section name and ``-x``
arguments, and the content of alembic.ini, env.py, every file under every version location, the
project's own modules that a revision imports (and the versions of third-party ones). A recorded
file that changed or disappeared invalidates the entry; a new file is a new revision, replayed on
top. Not covered: files a revision reads at run time (``open("x.sql")``) outside the version
locations, and modules env.py imports; ``--no-cache`` is the way out for such projects.

Two processes share the work, so the light CLI process never imports Alembic: the CLI picks a
candidate by re-hashing the files an entry recorded (cheap, no imports) and copies it; the worker
validates it for real once the script directory is resolved, and after env.py has run it checks
that the revision map it saw is the one the entry extends (env.py may set ``version_locations`` at
run time). When anything disagrees the worker drops the cached database and replays from empty.

Entries are written under a temporary name and renamed into place, so a concurrent run sees a
whole entry or none; the cache keeps the ``CHECK_MIGRATIONS_CACHE_ENTRIES`` (default 5) most
recently used entries and prunes the rest.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "FORMAT",
    "CachePlan",
    "Entry",
    "choose_entry",
    "file_digests",
    "prune",
    "store_entry",
    "worker_environment",
]

FORMAT = 1
_PREFIX = "migrated-"
_DEFAULT_ENTRIES = 5
_SKIP_DIRS = {"__pycache__", ".git", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
# Distributions whose version changes what a replay builds; a revision's other third-party
# imports are added per entry (see ``revision_dependencies``).
_LIBRARIES = ("alembic", "sqlalchemy", "psycopg", "psycopg-binary", "psycopg2", "psycopg2-binary",
              "asyncpg", "pg8000")  # fmt: skip


def max_entries() -> int:
    raw = os.environ.get("CHECK_MIGRATIONS_CACHE_ENTRIES", "")
    try:
        return max(1, int(raw)) if raw else _DEFAULT_ENTRIES
    except ValueError:
        return _DEFAULT_ENTRIES


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def file_digests(paths: Iterable[Path], *, recurse: Iterable[Path] = ()) -> dict[str, str]:
    """sha256 of each file in ``paths``, and of every file below each directory in ``recurse``."""
    out: dict[str, str] = {}
    for path in paths:
        digest = _digest(path)
        if digest is not None:
            out[str(path)] = digest
    for top in recurse:
        # Absolute: the CLI re-hashes these paths from its own working directory.
        for root, dirs, files in os.walk(Path(top).resolve()):
            dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
            for name in files:
                if name.endswith((".pyc", ".pyo")):
                    continue
                path = Path(root) / name
                digest = _digest(path)
                if digest is not None:
                    out[str(path)] = digest
    return out


def changed_files(recorded: dict[str, str]) -> list[str]:
    """The recorded files whose content changed or that disappeared."""
    return [path for path, digest in recorded.items() if _digest(Path(path)) != digest]


def worker_environment(
    *, pg_fingerprint: str, name: str, x_args: list[str], drivername: str
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
    }


def scope_key(*, pg_fingerprint: str, uid: int, ini: Path, name: str) -> str:
    """Names a project's entries, so a run only considers its own."""
    raw = f"{FORMAT}|{pg_fingerprint}|{uid}|{ini}|{name}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


@dataclass
class Entry:
    """One cached migrated cluster: ``data/`` (a stopped data directory) and ``meta.json``."""

    path: Path
    meta: dict[str, Any]

    @property
    def data(self) -> Path:
        return self.path / "data"

    @property
    def database(self) -> str:
        return str(self.meta["database"])


def _base() -> Path:
    """Where entries live: CHECK_MIGRATIONS_CACHE_DIR when set, else beside the run directories.

    Run directories are on tmpfs when there is one, and an entry is then stored by renaming
    the stopped data directory (no copy) and copied back at tmpfs speed. Copying a 40 MB entry to
    the disk cache took 0.08 s idle and 0.77 s while tests ran; the price is that entries live
    in memory (at most ``max_entries()`` of them) and do not survive a reboot.
    """
    from migration_check.server import _default_base, _private_dir, cache_base_dir

    if os.environ.get("CHECK_MIGRATIONS_CACHE_DIR"):
        return cache_base_dir()
    root = Path(os.environ.get("CHECK_MIGRATIONS_RUN_DIR") or _default_base())
    base = root / f"check-migrations-cache-{os.geteuid()}"
    _private_dir(base, 0o700)  # refuses a link or someone else's directory in a shared /dev/shm
    return base


def _entries(base: Path, scope: str | None = None) -> list[Entry]:
    pattern = f"{_PREFIX}{scope}-*" if scope else f"{_PREFIX}*"
    found = []
    for path in base.glob(pattern):
        try:
            meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(meta, dict) and meta.get("format") == FORMAT:
            found.append(Entry(path, meta))
    return found


def _last_used(entry: Entry) -> float:
    try:
        return (entry.path / "meta.json").stat().st_mtime
    except OSError:
        return 0.0


def choose_entry(scope: str, ini: Path) -> Entry | None:
    """The entry whose recorded files are all unchanged, with the longest history.

    A heuristic only (the worker re-validates): it lets the CLI copy the right data directory
    without importing Alembic.
    """
    best: Entry | None = None
    for entry in _entries(_base(), scope):
        files = entry.meta.get("files", {})
        if str(ini) not in files or changed_files(files):
            continue
        key = (len(entry.meta.get("revisions", [])), _last_used(entry))
        if best is None or key > (len(best.meta.get("revisions", [])), _last_used(best)):
            best = entry
    if best is not None:
        with contextlib.suppress(OSError):
            os.utime(best.path / "meta.json")
    return best


def store_entry(data_dir: Path, meta: dict[str, Any], scope: str) -> Path | None:
    """Copy a stopped data directory into the cache under its final name, atomically."""
    from migration_check.server import _copy_tree

    base = _base()
    body = json.dumps({k: meta[k] for k in ("env", "files", "revisions", "heads")}, sort_keys=True)
    name = f"{_PREFIX}{scope}-{hashlib.sha256(body.encode()).hexdigest()[:16]}"
    final = base / name
    if (final / "meta.json").is_file():
        with contextlib.suppress(OSError):
            os.utime(final / "meta.json")
        return final
    staging = base / f".tmp-{name}-{secrets.token_hex(4)}"
    staging.mkdir(mode=0o700)
    try:
        try:
            data_dir.rename(staging / "data")  # same file system: free (stop() is next anyway)
        except OSError:
            _copy_tree(data_dir, staging / "data")
        for leftover in ("postmaster.pid", "postmaster.opts"):
            with contextlib.suppress(FileNotFoundError):
                (staging / "data" / leftover).unlink()
        (staging / "meta.json").write_text(
            json.dumps({**meta, "format": FORMAT, "created": time.time()}, sort_keys=True),
            encoding="utf-8",
        )
        staging.rename(final)
    except OSError:
        # A concurrent run stored the same entry first (rename onto a non-empty directory).
        shutil.rmtree(staging, ignore_errors=True)
        return final if (final / "meta.json").is_file() else None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    prune(base, keep=max_entries())
    return final


def prune(base: Path, *, keep: int) -> list[Path]:
    """Remove all but the ``keep`` most recently used entries, and stale staging directories."""
    removed: list[Path] = []
    entries = sorted(_entries(base), key=_last_used, reverse=True)
    now = time.time()
    doomed = [e.path for e in entries[keep:]]
    for tmp in base.glob(".tmp-*"):
        with contextlib.suppress(OSError):
            if now - tmp.lstat().st_mtime > 3600:  # a run killed mid-store
                doomed.append(tmp)
    for path in doomed:
        # Renamed first, so no run picks a half-deleted entry; a run already copying it fails
        # its copy and falls back to the initialised cluster.
        trash = base / f".trash-{path.name}-{secrets.token_hex(4)}"
        try:
            path.rename(trash)
        except OSError:
            continue
        shutil.rmtree(trash, ignore_errors=True)
        removed.append(path)
    for trash in base.glob(".trash-*"):
        shutil.rmtree(trash, ignore_errors=True)
    return removed


@dataclass
class CachePlan:
    """The CLI's side of the cache for one run: the candidate entry, then what to store."""

    scope: str
    pg_fingerprint: str
    entry: Entry | None = None
    store: dict[str, Any] | None = field(default=None, repr=False)

    def request(self) -> dict[str, Any]:
        """The worker's instructions: what the copied cluster holds, if anything."""
        return {
            "pg_fingerprint": self.pg_fingerprint,
            "entry": self.entry.meta if self.entry is not None else None,
        }

    def save(self, server: Any, progress: Callable[[str], None]) -> None:
        """Stop the server with a checkpoint and keep its data directory as a new entry."""
        if self.store is None or server.run_dir is None:
            return
        try:
            server.shutdown()
            store_entry(server.data_dir, self.store, self.scope)
        except Exception as exc:  # a cache that cannot be written costs speed, not the verdict
            progress(f"could not cache the migrated database: {exc}")
            return
        progress("cached the migrated database for later runs")


def _module_files_and_versions(
    modules: Iterable[Any], project: Path
) -> tuple[list[Path], dict[str, str]]:
    """What the revision modules import: project files to hash, third-party versions to record."""
    import inspect

    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    files: set[Path] = set()
    versions: dict[str, str] = {}
    for module in modules:
        for value in list(vars(module).values()):
            name = value.__name__ if inspect.ismodule(value) else getattr(value, "__module__", None)
            if not isinstance(name, str) or name in sys.builtin_module_names:
                continue
            imported = sys.modules.get(name)
            path = getattr(imported, "__file__", None)
            if not path or imported is module:
                continue
            real = os.path.realpath(path)
            if "site-packages" in real or any(real.startswith(p + os.sep) for p in prefixes):
                top = name.split(".", 1)[0]
                if top not in versions and top not in ("alembic", "sqlalchemy", "typing"):
                    versions[top] = _module_version(top)
            elif real.startswith(str(project) + os.sep):
                files.add(Path(real))
    return sorted(files), versions


def _module_version(top: str) -> str:
    from importlib import metadata

    with contextlib.suppress(metadata.PackageNotFoundError, ValueError):
        return metadata.version(top)
    module = sys.modules.get(top)
    path = getattr(module, "__file__", None)
    if path:
        with contextlib.suppress(OSError):
            st = os.stat(path)
            return f"{st.st_size}:{st.st_mtime_ns}"
    return "?"


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

    def __init__(self, request: dict[str, Any], admin: Any, database: str, emit: Any) -> None:
        self.entry: dict[str, Any] | None = request.get("entry")
        self.pg_fingerprint = str(request.get("pg_fingerprint", ""))
        self.admin = admin
        self.database = database
        self.emit = emit
        self.used = False
        self.snapshot: str | None = None
        self.env: dict[str, Any] = {}
        self.files: dict[str, str] = {}
        self.meta: dict[str, Any] = {}

    @property
    def cached_revisions(self) -> int:
        return len(self.entry.get("revisions", [])) if self.used and self.entry else 0

    def _progress(self, message: str) -> None:
        self.emit({"type": "progress", "message": message})

    def _sql(self, statement: str, *names: str) -> None:
        from psycopg import sql

        self.admin.execute(sql.SQL(statement).format(*(sql.Identifier(n) for n in names)))

    def recreate_empty(self) -> None:
        self._sql("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.database)
        self._sql("CREATE DATABASE {}", self.database)
        self.used = False

    def prepare(self, req: dict[str, Any], cfg: Any, script: Any, drivername: str) -> None:
        """Hash what the history depends on; keep the copied database only if none of it moved."""
        self.env = worker_environment(
            pg_fingerprint=self.pg_fingerprint,
            name=str(req["name"]),
            x_args=list(req.get("x_args") or []),
            drivername=drivername,
        )
        # env.py's own imports are mostly the models, which change what is compared, not what
        # a replay builds; the modules a revision imports are hashed after the upgrade.
        env_py = Path(script.dir).resolve() / "env.py"
        locations = _version_locations(script)
        # pyproject.toml's [tool.alembic] (Alembic 1.16+ layouts) configures the history too.
        toml = [Path(cfg.toml_file_name).resolve()] if cfg.toml_file_name else []
        self.files = file_digests(
            [Path(cfg.config_file_name).resolve(), env_py, *toml],
            recurse=[p for p in locations if p.is_dir()],
        )
        if self.entry is None:
            return
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
            now = self.files.get(path) or _digest(Path(path))
            if now != digest:
                return f"{os.path.relpath(path)} changed" if now else f"{path} is gone"
        for top, version in self.entry.get("modules", {}).items():
            if _module_version(top) != version:
                return f"{top} changed version"
        return None

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
        revisions = sorted(rev.revision for rev in script.walk_revisions())
        project = Path.cwd().resolve()
        modules = [rev.module for rev in script.walk_revisions() if getattr(rev, "module", None)]
        dep_files, versions = _module_files_and_versions(modules, project)
        files = dict(self.files)
        files.update(file_digests(p for p in dep_files if str(p) not in files))
        name = f"check_migrations_tpl_{secrets.token_hex(6)}"
        try:
            self._sql("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY", name, self.database)
        except psycopg.Error as exc:  # env.py left a connection open: no entry, same verdict
            self._progress(f"not caching the migrated database: {str(exc).strip()}")
            return
        self.snapshot = name
        self.meta = {
            "env": self.env,
            "files": files,
            "modules": versions,
            "revisions": revisions,
            "heads": sorted(heads),
            "database": name,
        }

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


def open_worker_cache(req: dict[str, Any], emit: Any) -> WorkerCache | None:
    """Connect for the cache's statements; None when the run has no cache."""
    if not req.get("cache"):
        return None
    import psycopg

    admin = psycopg.connect(
        **req["admin_conninfo"], autocommit=True, connect_timeout=req["connect_timeout"]
    )
    return WorkerCache(req["cache"], admin, req["database"], emit)

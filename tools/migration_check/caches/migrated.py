"""The migrated-database cache: an unchanged history costs no replay.

Replaying every revision on each check is the one cost that grows with the project's age. After a
successful upgrade the worker snapshots the scratch database (``CREATE DATABASE ... TEMPLATE``),
the CLI stops the server with a checkpoint and keeps the whole data directory in the cache
directory, next to the initialised cluster. A later check starts its private server from a copy of
that directory and upgrades the cached database in place: nothing when the history is unchanged,
only the new revisions when it only gained revisions on top of the cached heads.

What the key covers (``env``, ``files`` and ``closure`` of an entry's ``meta.json``): the
PostgreSQL build, the Python version, the versions of Alembic, SQLAlchemy and the drivers, the
section name and ``-x`` arguments, the content of alembic.ini, env.py and every file under every
version location, and the closure (fingerprints/closure.py): every module file loaded while env.py
and the revisions ran, however it was imported, and the version of every installed library loaded. A
recorded file that changed or disappeared invalidates the entry; a new file under a version
location is a new revision, replayed on top. Not covered: data files a revision reads at run time
(``open("x.sql")``) outside the version locations; ``--no-cache`` is the way out for such
projects. The models (modules env.py loaded that no revision imports) are keyed by their code
without their column declarations (fingerprints/model_record.py) when the worker's record of the
replay vouches that the upgrade neither ran nor read them (worker/replay_record.py); otherwise by
content, as every other module.

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
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migration_check.fingerprints.closure import closure_changed
from migration_check.fingerprints.digests import (
    changed_files,
    expected_env,
    unchanged,
)
from migration_check.fingerprints.model_record import models_changed
from migration_check.fingerprints.startup import static_inputs
from migration_check.processes import staging_tag
from migration_check.protocol import MIGRATED_FORMAT as FORMAT
from migration_check.settings import env_number

__all__ = [
    "FORMAT",
    "CachePlan",
    "Entry",
    "choose_entry",
    "entry_name",
    "prune",
    "store_entry",
]

_PREFIX = "migrated-"
_KEYED = ("env", "files", "closure", "inputs", "revisions", "heads", "record")
_DEFAULT_ENTRIES = 5


def max_entries() -> int:
    return env_number("CHECK_MIGRATIONS_CACHE_ENTRIES", _DEFAULT_ENTRIES, minimum=1)


def scope_key(*, pg_fingerprint: str, uid: int, ini: Path, name: str, start_from: str = "") -> str:
    """Names a project's entries, so a run only considers its own.

    ``start_from``: --start-from's dump (caches/dump.py: its path and content), which the
    database was built from before the first revision: another dump is another scope.
    """
    raw = f"{FORMAT}|{pg_fingerprint}|{uid}|{ini}|{name}" + (f"|{start_from}" if start_from else "")
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
    from migration_check.caches.dirs import cache_base_dir, default_base, private_dir

    if os.environ.get("CHECK_MIGRATIONS_CACHE_DIR"):
        return cache_base_dir()
    root = Path(os.environ.get("CHECK_MIGRATIONS_RUN_DIR") or default_base())
    base = root / f"check-migrations-cache-{os.geteuid()}"
    private_dir(base, 0o700)  # refuses a link or someone else's directory in a shared /dev/shm
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


def choose_entry(
    scope: str,
    ini: Path,
    worker_environ: Mapping[str, str],
    notes: list[str] | None = None,
    *,
    base: Path | None = None,
) -> Entry | None:
    """The entry whose recorded inputs all still hold, with the longest history.

    The worker re-validates the files and the closure once Alembic has resolved the script
    directory; the environment is judged here, where the worker's is built. ``notes`` gets why
    the history is replayed when the newest entry that no longer holds was keyed on every
    module (its ``replay_reason``: what its upgrade did that the record could not vouch for).
    """
    from migration_check.caches.dirs import sweep_dead_staging

    best: Entry | None = None
    startup = static_inputs(worker_environ)
    base = _base() if base is None else base  # the warm server's templates (run/warm_client.py)
    sweep_dead_staging(base)
    for entry in _entries(base, scope):
        files = entry.meta.get("files", {})
        if str(ini) not in files or changed_files(files):
            continue
        inputs = entry.meta.get("inputs")
        if not isinstance(inputs, dict) or (entry.meta.get("env") or {}).get("startup") != startup:
            continue
        if unchanged(inputs) is not None or expected_env(worker_environ, inputs) is not None:
            _note(entry, notes)
            continue
        if closure_changed(entry.meta.get("closure", {})) is not None:
            _note(entry, notes)
            continue
        moved = models_changed((entry.meta.get("record") or {}).get("models"))
        if moved is not None:
            _note(entry, notes, moved)
            continue
        key = (len(entry.meta.get("revisions", [])), _last_used(entry))
        if best is None or key > (len(best.meta.get("revisions", [])), _last_used(best)):
            best = entry
    if best is not None:
        with contextlib.suppress(OSError):
            os.utime(best.path / "meta.json")
        if notes is not None:
            notes.clear()
    return best


def _note(entry: Entry, notes: list[str] | None, reason: object = None) -> None:
    reason = reason or entry.meta.get("replay_reason")
    if notes is not None and isinstance(reason, str) and reason:
        notes[:] = notes or [reason]


def entry_name(meta: Mapping[str, Any], scope: str) -> str:
    """An entry's directory name: its scope and a hash of what it is keyed on."""
    body = json.dumps({k: meta.get(k) for k in _KEYED}, sort_keys=True)
    return f"{_PREFIX}{scope}-{hashlib.sha256(body.encode()).hexdigest()[:16]}"


def store_entry(data_dir: Path, meta: dict[str, Any], scope: str) -> Path | None:
    """Copy a stopped data directory into the cache under its final name, atomically."""
    from migration_check.caches.dirs import copy_tree

    base = _base()
    name = entry_name(meta, scope)
    final = base / name
    if (final / "meta.json").is_file():
        with contextlib.suppress(OSError):
            os.utime(final / "meta.json")
        return final
    staging = base / f".tmp-{name}-{staging_tag()}-{secrets.token_hex(4)}"
    staging.mkdir(mode=0o700)
    try:
        try:
            data_dir.rename(staging / "data")  # same file system: free (stop() is next anyway)
        except OSError:
            copy_tree(data_dir, staging / "data")
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
    # Entries of another format (an older checker) are never served: without this they would
    # stay forever. Entries are renamed into place whole, so no live run is writing one.
    current = {e.path for e in entries}
    doomed += [p for p in base.glob(f"{_PREFIX}*") if p not in current]
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
    startup: dict[str, object]
    entry: Entry | None = None
    store: dict[str, Any] | None = field(default=None, repr=False)
    note: str | None = None  # why the history is replayed, said with -v (choose_entry's notes)

    def request(self) -> dict[str, Any]:
        """The worker's instructions: what the copied cluster holds, if anything."""
        return {
            "pg_fingerprint": self.pg_fingerprint,
            "startup": self.startup,
            "entry": self.entry.meta if self.entry is not None else None,
            "replay_reason": self.note,
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

"""What a check read, recorded in the worker so the CLI can serve its verdict again (verdict.py).

A verdict is only as reusable as the list of what it depends on is complete, and a list written
by hand (models, env.py, revisions) misses the shapes real projects have: a helper imported
inside ``upgrade()``, a module re-exported through another, ``importlib``, a ``.env`` read by
env.py, a SQL file a revision opens, a schema name from an environment variable, a directory
env.py globs. So nothing is listed by hand: the worker watches itself.

- Every file opened while the project's code runs (Python's ``open`` audit event fires for
  ``open()``, ``io.open``, ``os.open`` and every import's source or bytecode read), hashed at
  the moment it is opened and again at the end: a file edited mid-run is not stored.
- Every directory listed (``os.listdir`` / ``os.scandir``: the import system scanning a
  ``sys.path`` entry, Alembic scanning a version location, ``glob``): its names, so a new
  module that would shadow an import or a new revision file changes the key.
- Every environment variable read through ``os.environ`` (present or not), except those the
  checker itself sets for the worker.
- Installed libraries by version: the ``*.dist-info`` names (and ``.pth`` files) of every
  ``sys.path`` directory that holds distributions. Their files are not hashed one by one, as
  pip's own notion of "the same library" is its version.

Stdlib only: it runs before the project's code and must not change what that code sees.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "CONTROLLED_ENV",
    "IGNORED_NAMES",
    "InputRecorder",
    "env_digest",
    "file_digest",
    "library_digest",
    "listing_digest",
]

# Variables the checker sets or rewrites for the worker: their values differ per run (the scratch
# database's name) or only steer the checker's own bytecode cache.
CONTROLLED_ENV = frozenset(
    {
        "DATABASE_URL",
        "PGHOST",
        "PGPORT",
        "PGDATABASE",
        "PGUSER",
        "PGPASSWORD",
        "PGSERVICE",
        "PGOPTIONS",
        "CHECK_MIGRATIONS_EVENT_FD",
        "PYTHONPYCACHEPREFIX",
        "PYTHONDONTWRITEBYTECODE",
    }
)
# Bytecode directories come and go with PYTHONDONTWRITEBYTECODE; they never change a verdict.
IGNORED_NAMES = frozenset({"__pycache__"})
_VIRTUAL = ("/proc/", "/dev/", "/sys/")


def file_digest(path: str) -> str | None:
    """sha256 of the file's bytes; None when it does not exist (its absence is an input too)."""
    try:
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()
    except FileNotFoundError:
        return None
    except OSError:
        return "unreadable"


def listing_digest(path: str) -> str | None:
    """sha256 of a directory's sorted names (bytecode directories left out); None if gone."""
    try:
        names = sorted(n for n in os.listdir(path) if n not in IGNORED_NAMES)
    except FileNotFoundError:
        return None
    except OSError:
        return "unreadable"
    return hashlib.sha256("\0".join(names).encode()).hexdigest()


def library_digest(path: str) -> str | None:
    """The installed distributions of a ``sys.path`` directory: names with versions, and .pth."""
    try:
        names = sorted(os.listdir(path))
    except OSError:
        return None
    digest = hashlib.sha256()
    for name in names:
        if name.endswith((".dist-info", ".egg-info")):
            digest.update(name.encode() + b"\0")
        elif name.endswith(".pth"):
            # A .pth line can put a directory on sys.path or run code: its content counts.
            digest.update(name.encode() + b"\0" + (file_digest(f"{path}/{name}") or "").encode())
    return digest.hexdigest()


def _is_library_dir(path: str) -> bool:
    try:
        return any(n.endswith((".dist-info", ".egg-info")) for n in os.listdir(path))
    except OSError:
        return False


class InputRecorder:
    """Watches the worker from ``install()`` to ``snapshot()``; see the module docstring."""

    def __init__(self, exclude: Iterable[str] = ()) -> None:
        self.files: dict[str, str | None] = {}
        self.dirs: dict[str, str | None] = {}
        self.env: dict[str, str | None] = {}
        self._busy = False
        self._active = False
        self._exclude = tuple(os.path.realpath(p) + os.sep for p in exclude if p)
        libdirs = [os.path.realpath(p) for p in sys.path if p and _is_library_dir(p)]
        self.libraries = {p: library_digest(p) for p in libdirs}
        import sysconfig  # the worker's side only: the CLI's lookup stays light

        stdlib = {sysconfig.get_path(n) for n in ("stdlib", "platstdlib")}
        prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, *stdlib, *libdirs}
        self._library_roots = tuple(os.path.realpath(p) + os.sep for p in prefixes if p)

    def install(self) -> None:
        """Start recording; audit hooks cannot be removed, so ``snapshot`` switches it off."""
        self._active = True
        sys.addaudithook(self._hook)
        _record_environ(self.env)

    def _skip(self, path: str) -> bool:
        return path.startswith(_VIRTUAL) or path.startswith(self._library_roots + self._exclude)

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if not self._active or self._busy:
            return
        if event == "open":
            path, mode, flags = args
            if not isinstance(path, str | bytes):
                return  # a file descriptor: already open, its opening was recorded
            if isinstance(mode, str):
                writing_only = "r" not in mode and "+" not in mode
            else:
                writing_only = bool(flags & (os.O_WRONLY | os.O_CREAT))
            if writing_only:
                return
            self._busy = True
            try:
                self._file(os.fsdecode(path))
            finally:
                self._busy = False
        elif event in ("os.listdir", "os.scandir"):
            path = args[0]
            if isinstance(path, int):
                return
            self._busy = True
            try:
                self._dir(os.fsdecode(path) if path is not None else ".")
            finally:
                self._busy = False

    def _file(self, path: str) -> None:
        full = os.path.realpath(path)
        if full.endswith(".pyc"):
            # A valid bytecode file stands for its source, which the import only stat()ed.
            import importlib.util

            try:
                full = os.path.realpath(importlib.util.source_from_cache(full))
            except ValueError:
                return  # sourceless bytecode: as its own file below would not match; skip it
        if full in self.files or self._skip(full) or os.path.isdir(full):
            return
        self.files[full] = file_digest(full)

    def _dir(self, path: str) -> None:
        full = os.path.realpath(path)
        if full in self.dirs or self._skip(full + os.sep):
            return
        self.dirs[full] = listing_digest(full)

    def snapshot(self) -> dict[str, Any] | None:
        """What this run read; None when any of it changed while the run was reading it."""
        self._active = False
        _stop_recording_environ()
        for path, digest in self.files.items():
            if file_digest(path) != digest:
                return None
        for path, digest in self.dirs.items():
            if listing_digest(path) != digest:
                return None
        for path, digest in self.libraries.items():
            if library_digest(path) != digest:
                return None
        return {
            "files": dict(sorted(self.files.items())),
            "dirs": dict(sorted(self.dirs.items())),
            # Hashed: a variable the models read may hold a secret, and this lands on disk.
            "env": {
                k: env_digest(v) for k, v in sorted(self.env.items()) if k not in CONTROLLED_ENV
            },
            "libraries": dict(sorted(self.libraries.items())),
            "python": f"{sys.executable}|{sys.version}",
        }


class _RecordingEnviron(os._Environ):  # type: ignore[type-arg]
    """``os.environ`` that notes each key read: ``get``, ``in`` and ``getenv`` all come here.

    A key the run set itself (``load_dotenv``) is not an input from then on: its value came
    from a file, which is recorded as one.
    """

    _reads: dict[str, str | None] | None = None
    _written: set[str] = set()  # noqa: RUF012  (one recorder per worker process)

    def __getitem__(self, key: str) -> str:
        reads = type(self)._reads
        record = reads is not None and key not in type(self)._written
        try:
            value: str = super().__getitem__(key)
        except KeyError:
            if record and reads is not None:
                reads.setdefault(key, None)
            raise
        if record and reads is not None:
            reads.setdefault(key, value)
        return value

    def __setitem__(self, key: str, value: str) -> None:
        if type(self)._reads is not None:
            type(self)._written.add(key)
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        if type(self)._reads is not None:
            type(self)._written.add(key)
        super().__delitem__(key)


def _record_environ(into: dict[str, str | None]) -> None:
    _RecordingEnviron._reads = into
    os.environ.__class__ = _RecordingEnviron


def _stop_recording_environ() -> None:
    _RecordingEnviron._reads = None


def env_digest(value: str | None) -> str | None:
    """A variable's value as recorded: its sha256, or None when it was unset."""
    return None if value is None else hashlib.sha256(value.encode()).hexdigest()


def expected_env(worker_environ: dict[str, str], recorded: dict[str, str | None]) -> str | None:
    """The first recorded variable whose value the next worker would not see, or None."""
    for key, digest in recorded.items():
        if env_digest(worker_environ.get(key)) != digest:
            return key
    return None


def unchanged(recorded: dict[str, Any]) -> str | None:
    """Why a recorded snapshot no longer holds (a file, directory or library), or None."""
    for path, digest in recorded.get("files", {}).items():
        if file_digest(path) != digest:
            return f"{_shown(path)} changed" if digest else f"{_shown(path)} appeared"
    for path, digest in recorded.get("dirs", {}).items():
        if listing_digest(path) != digest:
            return f"files were added to or removed from {_shown(path)}"
    for path, digest in recorded.get("libraries", {}).items():
        if library_digest(path) != digest:
            return f"installed libraries changed in {_shown(path)}"
    return None


def _shown(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else str(Path(rel))

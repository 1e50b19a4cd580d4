"""What a check read, recorded in the worker so the CLI can serve its verdict again
(caches/verdict.py).

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
- Every path whose existence or kind the code asked about (``os.stat``, ``os.lstat``,
  ``os.access``, and so ``os.path.exists``, ``isfile``, ``isdir``, ``pathlib.Path.exists``):
  no audit event fires for a stat, so those functions are wrapped while recording.
- Whether the code iterated ``os.environ`` (``copy()``, ``items()``, ``dict(os.environ)``):
  then the names of every variable are an input, so a new ``APP_*`` variable changes the key.
- A database file a C extension opens (``sqlite3.connect``): its audit event names the file.
- Installed libraries by version: the ``*.dist-info`` names (and ``.pth`` files) of every
  ``sys.path`` directory that holds distributions. Their files are not hashed one by one, as
  pip's own notion of "the same library" is its version.
- What the interpreter's start-up consulted (fingerprints/startup.py): every ``sys.path`` entry's
listing,
  the site directories and ``pyvenv.cfg``, present or not.

What cannot be recorded makes the run unstorable (``refused``): a subprocess (what the child
reads is out of sight: ``psql -f file.sql``), a ``fork``, a C library loaded by ``ctypes``.

Stdlib only: it runs before the project's code and must not change what that code sees.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from migration_check.fingerprints.children import known_child
from migration_check.fingerprints.digests import (
    CONTROLLED_ENV,
    env_digest,
    file_digest,
    is_library_dir,
    library_digest,
    listing_digest,
    names_digest,
    path_kind,
    unchanged,
)
from migration_check.protocol import WorkerRequest

__all__ = [
    "InputRecorder",
    "merge_inputs",
    "record_environ",
    "start_recording",
    "stop_recording_environ",
]

# Variables the checker sets or rewrites for the worker: their values differ per run (the scratch
# database's name) or only steer the checker's own bytecode cache.
_VIRTUAL = ("/proc/", "/dev/", "/sys/")
# Audit events after which the run read something no hook can see: a child process's reads, a
# forked copy's, a C library's. Named in the refusal so ``-v`` can say what happened.
_UNRECORDABLE = {
    "subprocess.Popen": "started a subprocess",
    "os.system": "ran os.system()",
    "os.exec": "called os.exec*()",
    "os.posix_spawn": "called os.posix_spawn()",
    "os.spawn": "called os.spawn*()",
    "os.fork": "forked",
    "os.forkpty": "forked",
    "ctypes.dlopen": "loaded a C library with ctypes",
}


def _unrecordable(event: str, args: tuple[Any, ...]) -> str:
    """The refusal's wording: what the run did, and with which program or library."""
    what: object = None
    if event == "subprocess.Popen" and len(args) > 1:
        argv = args[1]
        what = argv if isinstance(argv, str | bytes) else next(iter(argv or ()), None)
    elif event in ("ctypes.dlopen", "os.system", "os.exec", "os.posix_spawn") and args:
        what = args[0]
    if isinstance(what, str | bytes | os.PathLike):
        shown = os.fsdecode(what)
        return f"{_UNRECORDABLE[event]} ({shown.split()[0] if event == 'os.system' else shown})"
    return _UNRECORDABLE[event]


class InputRecorder:
    """Watches the worker from ``install()`` to ``snapshot()``; see the module docstring."""

    def __init__(self, exclude: Iterable[str] = ()) -> None:
        self.files: dict[str, str | None] = {}
        self.dirs: dict[str, str | None] = {}
        self.env: dict[str, str | None] = {}
        self.stats: dict[str, str] = {}
        self.refused = ""
        self._environ_names: list[str] = []
        self._local = threading.local()  # "busy" per thread: the models' build runs in one
        self._active = False
        self._unwrap: list[Callable[[], None]] = []
        self._exclude = tuple(os.path.realpath(p) + os.sep for p in exclude if p)
        libdirs = [os.path.realpath(p) for p in sys.path if p and is_library_dir(p)]
        self.libraries = {p: library_digest(p) for p in libdirs}
        import sysconfig  # the worker's side only: the CLI's lookup stays light

        stdlib = {sysconfig.get_path(n) for n in ("stdlib", "platstdlib")}
        prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, *stdlib, *libdirs}
        self._library_roots = tuple(os.path.realpath(p) + os.sep for p in prefixes if p)
        from migration_check.fingerprints.startup import startup_paths

        files, dirs = startup_paths()
        for path in files:
            self.files[os.path.abspath(path)] = file_digest(path)
        for path in dirs:
            self.dirs[os.path.abspath(path)] = listing_digest(path)

    @property
    def _busy(self) -> bool:
        return bool(getattr(self._local, "busy", False))

    @_busy.setter
    def _busy(self, value: bool) -> None:
        self._local.busy = value

    def install(self) -> None:
        """Start recording; audit hooks cannot be removed, so ``snapshot`` switches it off."""
        self._environ_names = sorted(k for k in os.environ if k not in CONTROLLED_ENV)
        self._active = True
        sys.addaudithook(self._hook)
        record_environ(self.env)
        for name in ("stat", "lstat", "access"):
            self._wrap_stat(name)

    def _wrap_stat(self, name: str) -> None:
        """Wrap ``os.<name>``: the import system keeps its own (``posix``) and is unaffected."""
        original = getattr(os, name)

        def wrapper(path: object, *args: object, **kwargs: object) -> object:
            if (
                self._active
                and not self._busy
                and kwargs.get("dir_fd") is None
                and isinstance(path, str | bytes | os.PathLike)
            ):
                self._busy = True
                try:
                    self._stat(os.fsdecode(path))
                finally:
                    self._busy = False
            return original(path, *args, **kwargs)

        setattr(os, name, wrapper)
        self._unwrap.append(lambda: setattr(os, name, original))

    def _stat(self, path: str) -> None:
        full = os.path.abspath(path)
        if full not in self.stats and not self._skip(full):
            self.stats[full] = path_kind(full)

    def _skip(self, path: str) -> bool:
        return path.startswith(_VIRTUAL) or path.startswith(self._library_roots + self._exclude)

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if not self._active or self._busy:
            return
        if event in _UNRECORDABLE:
            child = known_child(event, args)
            if child is None:
                self.refused = self.refused or _unrecordable(event, args)
                return
            self._busy = True
            try:
                # Keyed whole, whether or not they exist: a magic file appearing is a change.
                for path in child.files:
                    full = os.path.realpath(path)
                    self.files.setdefault(full, file_digest(full))
                for name, value in child.env.items():
                    self.env.setdefault(name, value)
            finally:
                self._busy = False
            return
        if event == "sqlite3.connect":
            database = args[0] if args else None
            if isinstance(database, str | bytes | os.PathLike):
                name = os.fsdecode(database)
                if name and name != ":memory:" and not name.startswith("file:"):
                    self._busy = True
                    try:
                        self._file(name)
                    finally:
                        self._busy = False
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
        """What this run read; None when any of it changed while the run was reading it, or
        when the run did something whose reads cannot be seen (``refused`` says what)."""
        self._active = False
        stop_recording_environ()
        for undo in self._unwrap:
            undo()
        self._unwrap.clear()
        return self.peek()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """The checker's own reads (validating a cached entry) are not the project's inputs."""
        busy, self._busy = self._busy, True
        try:
            yield
        finally:
            self._busy = busy

    def peek(self) -> dict[str, Any] | None:
        """What the run read so far (the migrated-database cache stores it after the upgrade)."""
        if self.refused:
            return None
        busy, self._busy = self._busy, True
        try:
            if unchanged(self._record()) is not None:
                if not self.refused:
                    self.refused = "an input changed while the run read it"
                return None
            return self._record()
        finally:
            self._busy = busy

    def _record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "files": dict(sorted(self.files.items())),
            "dirs": dict(sorted(self.dirs.items())),
            "stats": dict(sorted(self.stats.items())),
            # Hashed: a variable the models read may hold a secret, and this lands on disk.
            "env": {
                k: env_digest(v) for k, v in sorted(self.env.items()) if k not in CONTROLLED_ENV
            },
            "libraries": dict(sorted(self.libraries.items())),
            "python": f"{sys.executable}|{sys.version}",
        }
        if _RecordingEnviron._iterated:
            record["env_names"] = names_digest(self._environ_names)
        return record


class _RecordingEnviron(os._Environ):  # type: ignore[type-arg]
    """``os.environ`` that notes each key read: ``get``, ``in`` and ``getenv`` all come here.

    A key the run set itself (``load_dotenv``) is not an input from then on: its value came
    from a file, which is recorded as one.
    """

    _reads: dict[str, str | None] | None = None
    _written: set[str] = set()  # noqa: RUF012  (one recorder per worker process)
    _iterated = False

    def __iter__(self) -> Any:
        # copy(), items(), dict(os.environ): which variables exist is now an input too.
        if type(self)._reads is not None:
            type(self)._iterated = True
        return super().__iter__()

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


def record_environ(into: dict[str, str | None]) -> None:
    _RecordingEnviron._reads = into
    os.environ.__class__ = _RecordingEnviron


def stop_recording_environ() -> None:
    _RecordingEnviron._reads = None


def merge_inputs(older: dict[str, Any] | None, newer: dict[str, Any]) -> dict[str, Any]:
    """A run's record joined with the record of the cached part it built on (found unchanged)."""
    if not older:
        return newer
    merged = dict(newer)
    for part in ("files", "dirs", "stats", "env", "libraries"):
        merged[part] = dict(sorted({**older.get(part, {}), **newer.get(part, {})}.items()))
    if "env_names" in older and "env_names" not in newer:
        merged["env_names"] = older["env_names"]
    return merged


def start_recording(req: WorkerRequest) -> InputRecorder | None:
    """Start watching what the project's code reads, when the CLI keeps verdicts or migrated
    databases: either cached answer is keyed by it. None when the run caches nothing."""
    if not req.record_inputs and not req.cache:
        return None
    # The checker's own run and bytecode directories hold nothing of the project.
    exclude = [os.environ.get("PYTHONPYCACHEPREFIX", ""), req.allowed.host]
    recorder = InputRecorder(exclude=[p for p in exclude if p.startswith("/")])
    recorder.install()
    return recorder

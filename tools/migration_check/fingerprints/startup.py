"""What shapes a worker before anything can watch it: the interpreter, its start-up, ``getenv``.

The input recorder (fingerprints/inputs.py) starts inside the worker, after the interpreter has
decided
``sys.flags``, ``sys.path`` and the modules ``site`` imports (``sitecustomize``,
``usercustomize``, ``.pth`` lines), and it sees variables only when Python code reads
``os.environ``: libpq reads ``PG*`` and the C library ``TZ`` and the locale with ``getenv``.
A key built from the recorder alone therefore served stale verdicts when ``PYTHONPATH``, a
``sitecustomize`` or a ``PG*`` variable changed. This module names those inputs instead, in
two halves:

- ``static_inputs`` (CLI process, before a cached answer is served): the interpreter's identity
  and every variable of the families that are read before or below Python's ``os.environ``.
  The CLI knows the worker's environment exactly: it builds it.
- ``startup_paths`` (worker, before the project's code runs): the files and directories the
  start-up consulted, whose appearance or change would change the next start-up: every
  ``sys.path`` entry, the site directories (present or not) and ``pyvenv.cfg``. Their contents
  and listings join the recorded inputs, so a new ``sitecustomize.py`` or ``.pth`` file
  anywhere on the path is a changed listing. The modules start-up imported are hashed with
  every other loaded module (fingerprints/closure.py).

Stdlib only: both halves run before the project's code, one of them in the light CLI process.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Mapping

from migration_check.fingerprints.digests import file_digest

__all__ = ["GETENV_NAMES", "GETENV_PREFIXES", "getenv_key", "startup_paths", "static_inputs"]

# PYTHON*: the interpreter's start-up (sys.path, flags, -X options, hash seed, warnings, utf-8
# mode). PG*: libpq, at every connection. LC_*, LANG, LANGUAGE, TZ, TZDIR: the C library.
# HOME: the user site directory, and libpq's ~/.pgpass and ~/.pg_service.conf.
GETENV_PREFIXES = ("PYTHON", "_PYTHON", "PG", "LC_")
GETENV_NAMES = frozenset({"LANG", "LANGUAGE", "TZ", "TZDIR", "HOME"})
# Rewritten by the checker for every run (the scratch database, its socket), or steering only
# its own bytecode cache: the user's values of the database ones are keyed instead (below).
_PER_RUN = frozenset(
    {
        "PGHOST",
        "PGPORT",
        "PGDATABASE",
        "PGUSER",
        "PGPASSWORD",
        "PGSERVICE",
        "PGOPTIONS",
        "PYTHONPYCACHEPREFIX",
        "PYTHONDONTWRITEBYTECODE",
    }
)
# Of those, the ones whose user value still reaches the worker: PGOPTIONS is extended (the
# lock timeout is appended), PGUSER kept when the URL names no user.
_USER_VALUE_REACHES = ("PGOPTIONS", "PGUSER")


def _read_before_python(name: str) -> bool:
    return name.startswith(GETENV_PREFIXES) or name in GETENV_NAMES


def _digest(value: str | None) -> str | None:
    return None if value is None else hashlib.sha256(value.encode()).hexdigest()


def getenv_key(
    worker_environ: Mapping[str, str], user_environ: Mapping[str, str]
) -> dict[str, str | None]:
    """Digests of every variable read before or below ``os.environ``, as the worker will see it.

    ``worker_environ``: the environment the CLI starts the worker with; ``user_environ``: the
    CLI's own (the user's values of the variables the checker rewrites).
    """
    out = {
        name: _digest(value)
        for name, value in worker_environ.items()
        if _read_before_python(name) and name not in _PER_RUN
    }
    for name in _USER_VALUE_REACHES:
        out[f"user:{name}"] = _digest(user_environ.get(name))
    # Files libpq and the interpreter read because a variable names them.
    for name in ("PGSERVICEFILE", "PGPASSFILE", "PGSYSCONFDIR", "PYTHONSTARTUP"):
        path = worker_environ.get(name)
        if path:
            out[f"file:{name}"] = file_digest(path)
    return dict(sorted(out.items()))


def _executable_identity() -> str:
    """The interpreter binary itself: a rebuilt or replaced Python at the same path is another."""
    real = os.path.realpath(sys.executable)
    try:
        st = os.stat(real)
        stamp = f"{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"
    except OSError:
        stamp = "unreadable"
    return f"{sys.executable}|{real}|{stamp}"


def static_inputs(worker_environ: Mapping[str, str]) -> dict[str, object]:
    """The part of a cached answer's key the CLI computes: the interpreter and ``getenv``."""
    return {
        "interpreter": _executable_identity(),
        "version": sys.version,
        "prefix": [sys.prefix, sys.base_prefix, sys.exec_prefix],
        "getenv": getenv_key(worker_environ, os.environ),
    }


def startup_paths() -> tuple[list[str], list[str]]:
    """(files, directories) the interpreter's start-up consulted; call it before project code.

    Each may not exist: its absence is recorded, so its appearance (a user site directory
    created, a ``pyvenv.cfg`` beside another interpreter) changes the key too.
    """
    import site

    dirs: list[str] = []
    files: list[str] = []
    for entry in sys.path:
        if not entry:
            continue
        (files if os.path.isfile(entry) else dirs).append(entry)  # python3XX.zip is a file
    for getter in ("getsitepackages", "getusersitepackages"):
        try:
            found = getattr(site, getter)()
        except AttributeError:
            continue
        dirs.extend([found] if isinstance(found, str) else found)
    executable_dir = os.path.dirname(os.path.abspath(sys.executable))
    files += [
        os.path.join(executable_dir, "pyvenv.cfg"),
        os.path.join(os.path.dirname(executable_dir), "pyvenv.cfg"),
    ]
    return sorted(set(files)), sorted(set(dirs))

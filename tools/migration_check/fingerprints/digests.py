"""Digests of what a check read, and whether they still hold: the cached answers' half of
fingerprints/inputs.py that the CLI process runs before it serves a verdict or picks a migrated
database.

Stdlib only, and cheap: it runs on every served verdict.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "CONTROLLED_ENV",
    "IGNORED_NAMES",
    "env_digest",
    "expected_env",
    "file_digest",
    "is_library_dir",
    "library_digest",
    "listing_digest",
    "names_digest",
    "path_kind",
    "unchanged",
]

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


def path_kind(path: str) -> str:
    """What a stat of ``path`` tells code that only asks whether it exists and what it is."""
    try:
        mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode):
            target = os.stat(path).st_mode  # a dangling link raises here: exists() is False
            return f"link:{_kind(target)}"
    except FileNotFoundError:
        return "missing"
    except OSError:
        return "unreadable"
    return _kind(mode)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "dir"
    return "file" if stat.S_ISREG(mode) else "other"


def is_library_dir(path: str) -> bool:
    try:
        return any(n.endswith((".dist-info", ".egg-info")) for n in os.listdir(path))
    except OSError:
        return False


def env_digest(value: str | None) -> str | None:
    """A variable's value as recorded: its sha256, or None when it was unset."""
    return None if value is None else hashlib.sha256(value.encode()).hexdigest()


def names_digest(names: Iterable[str]) -> str:
    """The set of variable names a run that iterated ``os.environ`` saw (controlled ones out)."""
    kept = sorted(n for n in names if n not in CONTROLLED_ENV)
    return hashlib.sha256("\0".join(kept).encode()).hexdigest()


def expected_env(worker_environ: Mapping[str, str], recorded: dict[str, Any]) -> str | None:
    """Why the next worker's environment differs from a recorded run's, or None.

    ``recorded``: a snapshot (its ``env`` and, if the run iterated ``os.environ``, its
    ``env_names``).
    """
    for key, digest in recorded.get("env", {}).items():
        if env_digest(worker_environ.get(key)) != digest:
            return f"${key} changed"
    names = recorded.get("env_names")
    if names is not None and names != names_digest(worker_environ):
        return "a variable was set or unset (the project's code lists the environment)"
    return None


def unchanged(recorded: dict[str, Any]) -> str | None:
    """Why a recorded snapshot no longer holds (a file, directory or library), or None."""
    for path, kind in recorded.get("stats", {}).items():
        if path_kind(path) != kind:
            return f"{_shown(path)} {'appeared' if kind == 'missing' else 'changed'}"
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


_SKIP_DIRS = {"__pycache__", ".git", ".mypy_cache", ".ruff_cache", ".pytest_cache"}


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

"""What a run's result depends on beyond the files it names: every module it loaded.

A cached result (a migrated database, a verdict) is only as good as its key. Listing the
modules a revision binds at its top level misses a helper imported inside ``upgrade()``, a name
re-exported through another module, and ``importlib``; so the worker records the lot instead:
after env.py and the revisions ran, every module in ``sys.modules`` whose file lies outside the
interpreter's standard library and the installed libraries is hashed, and every installed
distribution with a loaded module is recorded with its version. A later run serves the cached
result only if ``closure_changed`` finds all of it unchanged.

Not covered (README, "Speed and caches"): data files read with ``open()`` and modules loaded
from a path without entering ``sys.modules``; ``--no-cache`` is the way out.

Stdlib only, and cheap: the CLI process calls ``closure_changed`` before it decides to copy a
cached cluster, without importing Alembic or SQLAlchemy.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import site
import sys
import sysconfig
from pathlib import Path
from typing import Any

__all__ = ["closure_changed", "file_stamp", "library_dirs", "record_closure", "stamps_changed"]


def _sha256(path: str) -> str | None:
    try:
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError:
        return None


def library_dirs() -> tuple[list[str], list[str]]:
    """(standard library dirs, installed-library dirs), real paths, each ending in a separator."""
    paths = sysconfig.get_paths()
    stdlib = {paths.get("stdlib", ""), paths.get("platstdlib", "")}
    libs = {paths.get("purelib", ""), paths.get("platlib", "")}
    with contextlib.suppress(AttributeError):
        libs.update(site.getsitepackages())
    with contextlib.suppress(AttributeError):
        libs.add(site.getusersitepackages())
    # Installed libraries sit below the standard library in some layouts (lib/python3.x/
    # site-packages): test them first.
    return (
        sorted({os.path.realpath(p) + os.sep for p in stdlib if p}),
        sorted({os.path.realpath(p) + os.sep for p in libs if p}),
    )


def _distribution_of() -> dict[str, list[str]]:
    from importlib import metadata

    try:
        return {k: list(v) for k, v in metadata.packages_distributions().items()}
    except Exception:  # a broken distribution's metadata must not fail the check
        return {}


def record_closure(project_root: Path) -> dict[str, Any]:
    """Everything loaded so far that can change what the project's code does.

    Called in the worker after env.py and the revisions ran. Returns ``{"files": {abs_path:
    sha256}, "libraries": {dist: version}, "python": sys.version}``: every module file in
    ``sys.modules`` outside the standard library and site-packages (the project's own code,
    wherever ``sys.path`` found it: hashed), and the version of each installed distribution
    with a loaded module. ``project_root`` resolves module paths recorded relative to it.
    """
    from importlib import metadata

    stdlib, libs = library_dirs()
    files: dict[str, str] = {}
    stamps: dict[str, str] = {}
    tops_in_libs: dict[str, str] = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if not isinstance(path, str) or not path:
            continue  # built-in, frozen without a file, namespace package
        real = os.path.realpath(project_root / path)
        if any(real.startswith(d) for d in libs):
            tops_in_libs.setdefault(name.split(".", 1)[0], real)
            # A library edited in place keeps its version: its files' stamps are the key.
            stamps[real] = file_stamp(real)
            continue
        if any(real.startswith(d) for d in stdlib):
            continue
        digest = _sha256(real)
        if digest is not None:
            files[real] = digest
    owners = _distribution_of() if tops_in_libs else {}
    libraries: dict[str, str] = {}
    for top, real in sorted(tops_in_libs.items()):
        dists = owners.get(top, [])
        if not dists:
            # A module in site-packages that no distribution claims: its file is the key.
            digest = _sha256(real)
            if digest is not None:
                files[real] = digest
            continue
        for dist in dists:
            with contextlib.suppress(metadata.PackageNotFoundError, ValueError):
                libraries[dist] = metadata.version(dist)
    return {"files": files, "stamps": stamps, "libraries": libraries, "python": sys.version}


def file_stamp(path: str) -> str:
    """Size, modification time and inode: cheap enough for every library module, every check."""
    try:
        st = os.stat(path)
    except OSError:
        return "missing"
    return f"{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"


def stamps_changed(recorded: Any) -> str | None:
    """The first library module file whose stamp moved (edited in place), or None."""
    for path, stamp in (recorded or {}).items():
        if file_stamp(path) != stamp:
            return f"{_show(path)} changed (a library edited in place)"
    return None


def closure_changed(recorded: dict[str, Any]) -> str | None:
    """None if the recorded closure still holds, else a one-line reason naming what moved."""
    from importlib import metadata

    if not isinstance(recorded, dict) or not isinstance(recorded.get("files"), dict):
        return "no record of the modules it loaded"
    if recorded.get("python") != sys.version:
        return "the Python version changed"
    for path, digest in recorded["files"].items():
        now = _sha256(path)
        if now is None:
            return f"{_show(path)} is gone"
        if now != digest:
            return f"{_show(path)} changed"
    if (moved := stamps_changed(recorded.get("stamps"))) is not None:
        return moved
    for dist, version in (recorded.get("libraries") or {}).items():
        try:
            current = metadata.version(dist)
        except metadata.PackageNotFoundError:
            return f"{dist} is no longer installed"
        if current != version:
            return f"{dist} changed version ({version} -> {current})"
    return None


def _show(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return rel if not rel.startswith(".." + os.sep + "..") else path

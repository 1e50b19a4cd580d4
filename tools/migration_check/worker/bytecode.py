"""The project's modules are compiled from what their files hold now, never from a stale .pyc.

A .pyc records its source's mtime in whole seconds and its size: a model edited twice within
one second, to text of the same length (``String(1000)`` -> ``String(2000)``), keeps the first
edit's bytecode, and the check compares the models as they were. The checker's caches hash
content, so the worker's imports must too: for files outside the standard library and the
installed libraries, the "mtime" the import system sees is derived from the file's content. A
.pyc then matches only the content it was compiled from; libraries keep Python's own check.
"""

from __future__ import annotations

import hashlib
import os
from importlib.machinery import SourceFileLoader
from typing import Any

__all__ = ["validate_project_bytecode_by_content"]


def validate_project_bytecode_by_content() -> None:
    """Patch the source loader's stats for project files (the worker calls it before env.py)."""
    from migration_check.fingerprints.closure import library_dirs

    stdlib, libs = library_dirs()
    trusted = tuple(stdlib + libs)
    original = SourceFileLoader.path_stats

    def path_stats(self: SourceFileLoader, path: str) -> Any:
        stats = original(self, path)
        if os.path.realpath(path).startswith(trusted):
            return stats
        with open(path, "rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").digest()
        # 32 bits is what the .pyc header keeps of an mtime.
        return {"mtime": int.from_bytes(digest[:4], "little"), "size": stats["size"]}

    SourceFileLoader.path_stats = path_stats  # type: ignore[method-assign]

"""Facts about a worker's run that its result and its -v stamps carry, kept out of main.py.

- ``version_listings``: every version directory's listing, for the verdict's key.
- ``Ready``: the worker's own start-up cost, which the CLI's stamps cannot see.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import TYPE_CHECKING

from migration_check.fingerprints.digests import listing_digest
from migration_check.protocol import Emit, ProgressEvent

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

__all__ = ["Ready", "version_listings"]


def version_listings(script: ScriptDirectory, dirs: list[str]) -> dict[str, str | None] | None:
    """Each version directory's listing: a new revision file is a new verdict.

    The input recorder skips listings under a library root (a package that ships its history,
    as Apache Airflow does, is keyed by its version), yet a revision added there in place changes
    the answer. Taken after the run, so a ``.py`` file the revision map Alembic read does not
    hold (one added meanwhile) makes the run unstorable: None.
    """
    paths = {os.path.realpath(r.path) for r in script.walk_revisions() if r.path}
    listings: dict[str, str | None] = {}
    for found in dirs:
        listings[found] = listing_digest(found)
        with contextlib.suppress(OSError):
            for name in os.listdir(found):
                if not name.endswith(".py") or name == "__init__.py" or name.startswith(".#"):
                    continue
                if os.path.realpath(os.path.join(found, name)) not in paths:
                    return None
    return listings


class Ready:
    """Taken once the libraries are imported, before the request is read."""

    def __init__(self) -> None:
        self.imported = time.perf_counter()
        self.since_start = _since_start()

    def say(self, emit: Emit) -> None:
        """The interpreter's start and the imports overlap the CLI's server start, so only the
        worker can say what they cost, and how long it then waited for its request."""
        if self.since_start is None:
            return
        waited = time.perf_counter() - self.imported
        emit(
            ProgressEvent(
                f"worker ready: interpreter start and imports {self.since_start:.2f}s, then "
                f"{waited:.2f}s waiting for the request"
            )
        )


def _since_start() -> float | None:
    """Seconds since this process started (Linux's /proc), None where that cannot be read."""
    try:
        with open("/proc/self/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: start time, in ticks
        return time.clock_gettime(time.CLOCK_BOOTTIME) - started
    except (OSError, ValueError, IndexError, AttributeError):
        return None

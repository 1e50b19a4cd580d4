"""What a run resolves once from its settings: the PostgreSQL binaries, the server's user and
the worker's environment, each looked up the first time a step needs it.

The verdict cache's key, the migrated-database cache's scope, ``--start-from``'s psql and the
throwaway server all ask for the same binaries and user; resolved here once, they are the same
answer for every step of the run (and a lookup that fails still fails where it first matters).
"""

from __future__ import annotations

from functools import cached_property

from migration_check.postgres.server import (
    PgBinaries,
    ServerUser,
    find_binaries,
    resolve_server_user,
)
from migration_check.run.worker_process import worker_env_base
from migration_check.settings import Settings

__all__ = ["RunResources"]


class RunResources:
    """One run's binaries, server user and worker environment (resolved lazily, once)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def binaries(self) -> PgBinaries:
        return find_binaries(self.settings.postgres_bin)

    @cached_property
    def pg_fingerprint(self) -> str:
        """The PostgreSQL build, as the caches key it (hashing its files: once per run)."""
        return self.binaries.fingerprint()

    @cached_property
    def server_user(self) -> ServerUser:
        return resolve_server_user(self.settings.server_user)

    @cached_property
    def _worker_environ(self) -> dict[str, str]:
        return worker_env_base(self.settings)

    def worker_environ(self) -> dict[str, str]:
        """The worker's environment before the server exists (worker_process.worker_env_base).

        A copy each time: spawning the worker adds its event pipe to the one it is given.
        """
        return dict(self._worker_environ)

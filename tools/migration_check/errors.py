"""One exception base for everything that makes a check impossible (exit 2)."""

from __future__ import annotations

__all__ = [
    "CheckError",
    "ConfigError",
    "Interrupted",
    "MigrationError",
    "ServerError",
    "WorkerError",
]


class CheckError(Exception):
    """The check could not be made. ``str(exc)`` is the one line shown to the user.

    ``detail`` holds what only ``-v`` shows (a server log tail, a worker traceback).
    """

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class ConfigError(CheckError):
    """Bad input: alembic.ini, pyproject settings, flags, env.py or the revision graph."""


class ServerError(CheckError):
    """No PostgreSQL to check against: binaries missing, server failed to start, unreachable URL."""


class MigrationError(CheckError):
    """A revision failed while upgrading the scratch database."""


class WorkerError(CheckError):
    """The process that runs Alembic died or timed out."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived; unwinding must still tear everything down."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

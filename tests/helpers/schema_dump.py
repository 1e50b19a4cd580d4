"""``pg_dump --schema-only`` of a database: a judge of "the same schema" independent of the checker.

Tests of the checker's shortcuts (the pipelined DDL, the early build) compare two databases.
Comparing them with the checker's own catalog reader would let a gap in that reader hide the
very difference it misses; PostgreSQL's own dump of each says everything either one holds.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping

from migration_check.postgres.server import find_binaries

__all__ = ["schema_dump"]


def schema_dump(conninfo: Mapping[str, object], database: str) -> str:
    """The schema of ``database`` as pg_dump writes it, on the server ``conninfo`` reaches."""
    pg_dump = find_binaries(None).bindir / "pg_dump"
    proc = subprocess.run(
        [
            str(pg_dump),
            "--schema-only",
            "--no-owner",
            "--no-privileges",
            "-h", str(conninfo["host"]),
            "-p", str(conninfo["port"]),
            "-U", str(conninfo["user"]),
            "--no-password",
            database,
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    # pg_dump 17.6+ brackets the dump with \restrict <random key>: not the database's content.
    return "\n".join(
        ln for ln in proc.stdout.splitlines() if not ln.startswith(("\\restrict", "\\unrestrict"))
    )

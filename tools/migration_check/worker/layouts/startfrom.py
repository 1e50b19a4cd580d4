"""``--start-from FILE.sql``: a history that does not build from empty starts from a dump.

Projects that create new databases with ``create_all()`` and ``alembic stamp head`` have a
first revision that needs tables no revision creates. Their schema as it stood at some
revision (``pg_dump --schema-only``, plus the ``alembic_version`` rows that say which) is
loaded into the scratch database; the upgrade then runs from there to head. Runs in the
worker, before the connection guard, with the server's own psql.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from typing import TYPE_CHECKING

from migration_check.protocol import Emit, ProgressEvent, StartFrom, WorkerRequest
from migration_check.worker.diagnose import Failure

if TYPE_CHECKING:
    from migration_check.fingerprints.inputs import InputRecorder

__all__ = ["NO_VERSION_ROWS", "load_dump", "load_dump_unrecorded"]

# psql's error lines: "psql:/path/schema.sql:42: ERROR:  relation ... does not exist".
_PSQL_ERROR = re.compile(r"^psql:(?P<file>.*?):(?P<line>\d+): (?P<msg>(?:ERROR|FATAL):\s+.*)$")

NO_VERSION_ROWS = (
    "{shown}: loaded, but its version table holds no revision, so the upgrade would start "
    "from empty (pg_dump --schema-only leaves out rows): append them with "
    "`pg_dump --data-only --table=alembic_version DB >> {shown}`"
)


def load_dump_unrecorded(req: WorkerRequest, emit: Emit, recorder: InputRecorder | None) -> None:
    """The dump, loaded by psql: the CLI keys its content (caches/dump.py), so the child is the
    checker's own read, not one that makes the run unstorable."""
    assert req.start_from is not None
    emit(ProgressEvent(f"loading {req.start_from.shown}"))
    with recorder.paused() if recorder is not None else contextlib.nullcontext():
        load_dump(req, req.start_from)


def load_dump(req: WorkerRequest, spec: StartFrom) -> None:
    """Load the dump into the scratch database in one transaction, or name its failing line."""
    from psycopg.conninfo import make_conninfo

    params = {**req.admin_conninfo, "dbname": req.database}
    password = params.pop("password", None)
    env = dict(os.environ)
    if password:
        env["PGPASSWORD"] = str(password)  # never on the command line, where ps shows it
    command = [
        spec.psql, "-X", "-q", "--no-psqlrc", "-v", "ON_ERROR_STOP=1", "--single-transaction",
        "-f", spec.file, "-d", make_conninfo(**{k: str(v) for k, v in params.items()}),
    ]  # fmt: skip
    try:
        proc = subprocess.run(
            command, env=env, capture_output=True, text=True, errors="replace", check=False
        )
    except OSError as exc:
        raise Failure("config", f"--start-from: cannot run {spec.psql}: {exc}") from exc
    if proc.returncode == 0:
        return
    raise Failure("config", _psql_failure(spec.shown, proc.stderr), detail=proc.stderr)


def _psql_failure(shown: str, stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for line in lines:
        found = _PSQL_ERROR.match(line)
        if found is None:
            continue
        message = re.sub(r"\s+", " ", found["msg"])
        where = f"{shown}:{found['line']}"
        if "role" in message and "does not exist" in message:
            return (
                f"{where}: {message}; the dump names roles this server lacks: make it with "
                "pg_dump --schema-only --no-owner --no-privileges"
            )
        if "invalid command \\" in line:
            return (
                f"{where}: {message}; this psql is older than the pg_dump that wrote the file: "
                "use --postgres-bin with the same or a newer PostgreSQL"
            )
        return f"{where}: {message}; the dump does not load into an empty database"
    if any("invalid command \\" in ln for ln in lines):
        return (
            f"{shown}: {lines[0]}; this psql is older than the pg_dump that wrote the file: "
            "use --postgres-bin with the same or a newer PostgreSQL"
        )
    return f"{shown}: psql could not load it: {lines[-1] if lines else 'no output'}"

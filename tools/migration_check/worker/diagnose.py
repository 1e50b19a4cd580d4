"""Diagnosis: whatever env.py, a revision or Alembic raised, as one line naming the culprit.

Runs in the worker. The line names the file, revision or setting at fault and how to fix it;
the traceback goes into ``detail``, which only ``-v`` shows.
"""

from __future__ import annotations

import os
import re
import traceback
from typing import TYPE_CHECKING, Any

from migration_check.worker.guard import refused, refused_message

if TYPE_CHECKING:
    from alembic.script import Script, ScriptDirectory

__all__ = ["Failure", "classify", "env_py", "one_line", "reserved_revision", "script_error"]


class Failure(Exception):
    """A failure to report as ``{"type": "error", "kind": ..., "message": ...}``."""

    def __init__(self, kind: str, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.detail = detail
        # A failed revision's Script and the database error, for the safety finding a
        # statement that cannot run in a transaction becomes (worker/safety/in_transaction.py).
        self.revision: Script | None = None
        self.cause: BaseException | None = None


def script_error(exc: BaseException, script: ScriptDirectory | None = None) -> Failure:
    """Name the revision file behind a broken graph; Alembic names only revision ids."""
    from alembic.script.revision import CycleDetected

    detail = "".join(traceback.format_exception(exc))
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f"{os.path.relpath(exc.filename)}:{exc.lineno}"
        return Failure("config", f"{where}: SyntaxError: {exc.msg}", detail=detail)
    files = revision_files(script) if script is not None else {}
    for rev, (path, downs) in sorted(files.items()):
        missing = [d for d in downs if d not in files]
        if missing:
            return Failure(
                "config",
                f"{path}: revision {rev} has down_revision {missing[0]!r}, which no revision "
                "file defines; fix down_revision (or restore the missing revision file)",
                detail=detail,
            )
    if isinstance(exc, CycleDetected):
        named = ", ".join(
            f"{rev} ({files[rev][0]})" if rev in files else rev for rev in exc.revisions
        )
        return Failure(
            "config",
            f"revision graph: the down_revisions of {named} form a cycle; fix the "
            "down_revision that points back to a later revision",
            detail=detail,
        )
    return Failure(
        "config", f"revision graph: {one_line(exc)}; fix the down_revision it names", detail=detail
    )


# Alembic reads these as symbols wherever a revision id may stand (``upgrade head``,
# ``downgrade base``): a revision so named is never found, and Alembic fails on a bare assert.
_RESERVED_IDS = ("base", "head", "heads")


def reserved_revision(script: ScriptDirectory) -> Failure | None:
    """The revision whose id is one of Alembic's reserved symbols, named with its file."""
    # The map env.py's run already built: reading the files again would import every revision.
    known = script.revision_map._revision_map
    for rev in _RESERVED_IDS:
        found = known.get(rev)  # the map holds branch labels too: match the id itself
        where = getattr(found, "path", None)  # a Script, though the map is typed Revision
        if found is not None and found.revision == rev and where:
            path = os.path.relpath(where)
            meaning = "the state before the first revision" if rev == "base" else "the head"
            return Failure(
                "config",
                f"{path}: revision id {rev!r} is reserved: Alembic reads it as {meaning} in "
                "every command, so this revision is never found; give it another id (and "
                "change the down_revision that names it)",
            )
    return None


def revision_files(script: ScriptDirectory) -> dict[str, tuple[str, tuple[str, ...]]]:
    """revision id -> (file, down revisions), read without building Alembic's revision map.

    Alembic builds its map in one go and fails with a bare KeyError on a missing
    down_revision, so the culprit has to be found from the files themselves.
    """
    from alembic.util import to_tuple

    found: dict[str, tuple[str, tuple[str, ...]]] = {}
    try:
        for rev in script._load_revisions():
            found[rev.revision] = (os.path.relpath(rev.path), to_tuple(rev.down_revision, ()))
    except Exception:  # the caller's error stands on its own; this only adds a file name
        return {}
    return found


def env_py(script: ScriptDirectory) -> str:
    return os.path.relpath(os.path.join(script.dir, "env.py"))


def classify(
    exc: BaseException, state: dict[str, Any], script: ScriptDirectory, *, phase: str
) -> Failure:
    """Turn whatever env.py or a revision raised into one line naming the culprit."""
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    detail = "".join(traceback.format_exception(exc))
    if refused:
        return Failure("unsafe", refused_message(), detail=detail)
    current = state.get("current")
    if current is not None:
        path = os.path.relpath(current.path)
        if isinstance(exc, DBAPIError):
            error = pg_error(exc)
            failure = Failure(
                "migration",
                f"revision {current.revision} ({path}) failed: {error}; "
                + (_missing_extension(error) or _revision_advice(_sqlstate(exc))),
                detail=detail,
            )
            failure.revision, failure.cause = current, exc
            return failure
        return Failure(
            "migration",
            f"revision {current.revision} ({path}) raised {type(exc).__name__}: {one_line(exc)}",
            detail=detail,
        )
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f"{os.path.relpath(exc.filename)}:{exc.lineno}"
        return Failure("config", f"{where}: SyntaxError: {exc.msg}", detail=detail)
    if isinstance(exc, ImportError):
        origin = origin_in_project(exc)
        name = f"module {exc.name!r}" if exc.name else "a module"
        return Failure(
            "config",
            f"{origin}: cannot import {name} ({one_line(exc)}); check the model imports "
            "and that the project's dependencies are installed",
            detail=detail,
        )
    if isinstance(exc, RevisionError):
        return script_error(exc, script)
    if isinstance(exc, CommandError):
        msg = one_line(exc)
        if "does not provide a MetaData" in msg:
            msg = f"{env_py(script)}: target_metadata is None; set it to the models' MetaData"
        return Failure("config", msg, detail=detail)
    if isinstance(exc, SystemExit):
        text = exc.code if isinstance(exc.code, str) else f"exit status {exc.code}"
        return Failure("config", f"{env_py(script)} stopped: {text}", detail=detail)
    if isinstance(exc, DBAPIError):
        return Failure("database", f"{phase}: {pg_error(exc)}", detail=detail)
    if isinstance(exc, SQLAlchemyError):
        return Failure("config", f"{origin_in_project(exc)}: {one_line(exc)}", detail=detail)
    return Failure(
        "config",
        f"{origin_in_project(exc)}: {type(exc).__name__}: {one_line(exc)}",
        detail=detail,
    )


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# Errors that mean a revision expects an object no earlier revision created: the history
# only works on databases made some other way (create_all() + stamp, a restored dump).
_MISSING_OBJECT = {"42P01", "42703", "42704", "42883", "3F000", "42P02"}


def _sqlstate(exc: Any) -> str:
    orig = getattr(exc, "orig", None)
    return str(getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or "")


def _revision_advice(sqlstate: str) -> str:
    if sqlstate in _MISSING_OBJECT:
        return (
            "the history does not build a database from empty (it needs an object no earlier "
            "revision creates, as when databases are made with create_all() and stamp): add "
            "a baseline revision that creates the schema as it stood, or pass --start-from "
            "FILE.sql, a pg_dump --schema-only of a database at some revision with its "
            "alembic_version rows"
        )
    if sqlstate == "55P03":
        return (
            "it waited longer than --lock-timeout for a lock (a revision that opens its own "
            "connection waits on the migration's transaction): run that SQL through op, or "
            "raise --lock-timeout"
        )
    if sqlstate.startswith("53"):
        return "the server ran out of resources, not a fault of the history; report it"
    if sqlstate == "25001":  # CONCURRENTLY (or VACUUM) in the migration's transaction
        return (
            "run it outside the transaction: `with op.get_context().autocommit_block():` "
            "around the op (docs/safety.md)"
        )
    return "fix the revision"


# CREATE EXTENSION on a server whose installation lacks the extension's files: PostgreSQL 15+
# says "not available", older ones name the control file they could not open.
_NO_EXTENSION = re.compile(
    r'extension "(?P<a>[^"]+)" is not available'
    r'|extension control file "[^"]*/(?P<b>[^"/]+)\.control"'
)


def _missing_extension(error: str) -> str:
    """Advice when the server, not the revision, is at fault: it lacks an extension."""
    match = _NO_EXTENSION.search(error)
    if match is None:
        return ""
    name = match.group("a") or match.group("b")
    return (
        f"the server lacks extension {name}, not a fault of the revision: check on one that "
        f"has it, with --postgres-bin DIR (a local PostgreSQL with {name} installed, e.g. "
        "/usr/lib/postgresql/15/bin) or --database-url URL"
    )


def pg_error(exc: Any) -> str:
    orig = getattr(exc, "orig", None)
    diag = getattr(orig, "diag", None)
    primary = getattr(diag, "message_primary", None)
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if primary:
        return f"{primary} (SQLSTATE {sqlstate})" if sqlstate else str(primary)
    return one_line(orig if orig is not None else exc)


def origin_in_project(exc: BaseException) -> str:
    """The deepest traceback frame in the project's own files: where the user should look."""
    cwd = os.getcwd() + os.sep
    where = ""
    tb = exc.__traceback__
    while tb is not None:
        fname = tb.tb_frame.f_code.co_filename
        if fname.startswith(cwd) and "site-packages" not in fname:
            where = f"{os.path.relpath(fname)}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where or "env.py"

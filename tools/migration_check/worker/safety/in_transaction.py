"""A statement that cannot run in a transaction, in a new revision: a safety finding, not exit 2.

``CREATE INDEX CONCURRENTLY`` (or DROP / REINDEX ... CONCURRENTLY, VACUUM) outside
``autocommit_block()`` fails the check's own upgrade with SQLSTATE 25001, as it would fail every
deployment: Alembic runs each revision in a transaction. When the failing revision is one the
change adds, that is the ``concurrently_in_transaction`` finding at the op's line, with the safe
form; the rest of the check cannot run (the history does not reach head), which the result's
``unchecked`` says, and which fails the check even when the finding is accepted (run/configs.py).
A revision the base already had, or ``safety = "off"``, keeps the error line (exit 2).
"""

from __future__ import annotations

import ast
import os
import re
from typing import TYPE_CHECKING, Any

from migration_check.findings import CheckResult
from migration_check.worker.diagnose import Failure, pg_error
from migration_check.worker.safety.advice import op_call
from migration_check.worker.safety.hazards import in_transaction_hazard
from migration_check.worker.safety.observe import Observer, Step
from migration_check.worker.safety.results import to_findings
from migration_check.worker.safety.seed import SeedReport
from migration_check.worker.safety.snapshot import Snapshot

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

    from migration_check.protocol import WorkerRequest

__all__ = ["in_transaction_result"]

_NAME = r'(?:"[^"]+"|[\w$]+)(?:\.(?:"[^"]+"|[\w$]+))?'
_ON_TABLE = re.compile(rf"\bON\s+(?:ONLY\s+)?(?P<table>{_NAME})", re.IGNORECASE)
_INDEX = re.compile(rf"\bINDEX\s+CONCURRENTLY\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?(?P<index>{_NAME})",
                    re.IGNORECASE)  # fmt: skip
# VACUUM [options] name, REINDEX [options] TABLE [CONCURRENTLY] name: the table is the last word.
_LAST_WORD = re.compile(
    rf"^\s*(?:VACUUM|ANALYZE|REINDEX\b.*\bTABLE)\b.*?(?P<table>{_NAME})\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)


def in_transaction_result(failure: Failure, req: WorkerRequest, script: ScriptDirectory
                          ) -> CheckResult | None:  # fmt: skip
    """The result for ``failure`` when it is a new revision's statement that needs no
    transaction; None to report ``failure`` as it is (exit 2)."""
    rev, cause = failure.revision, failure.cause
    if req.safety == "off" or not req.history_added or rev is None or cause is None:
        return None
    if not rev.path or _sqlstate(cause) != "25001":
        return None
    if os.path.realpath(rev.path) not in {os.path.realpath(p) for p in req.history_added}:
        return None  # the base's own revision: not this change's to fix
    file = os.path.relpath(rev.path)
    line = _line(cause, rev.path)
    statement = str(getattr(cause, "statement", "") or "").strip()
    step = Step(rev.revision, file, line, statement, Snapshot(0, "0", "0"))
    step.error, step.sqlstate = pg_error(cause), "25001"
    hazard = in_transaction_hazard(step, _table(file, line, statement))
    index = _INDEX.search(statement)
    if index is not None:
        hazard.names["index"] = _shown(index["index"])
    observer = Observer({os.path.realpath(rev.path): rev.revision}, "")
    observer.steps.append(step)
    errors, warnings, records = to_findings([hazard], observer, req.safety, SeedReport())
    for record in records:
        record["base"] = "not observed: the check's own upgrade stopped at this statement"
    result = CheckResult(findings=errors, warnings=warnings, safety=records)
    result.unchecked = failure.message
    result.revision_ids = sorted(r.revision for r in script.walk_revisions())
    return result


def _sqlstate(exc: Any) -> str:
    orig = getattr(exc, "orig", None)
    return str(getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or "")


def _line(exc: BaseException, path: str) -> int:
    """The revision file's line in the traceback nearest the error: the op that ran it."""
    real, line = os.path.realpath(path), 1
    tb = exc.__traceback__
    while tb is not None:
        if os.path.realpath(tb.tb_frame.f_code.co_filename) == real:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _table(file: str, line: int, statement: str) -> str:
    """The table the statement is about: from the op's own call, else from its SQL."""
    call = op_call(file, line)
    if call is not None and isinstance(call.func, ast.Attribute) and call.func.attr in (
        "create_index", "drop_index"
    ):  # fmt: skip
        named = [k.value for k in call.keywords if k.arg == "table_name"]
        for node in named or call.args[1:2]:
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                return node.value
    match = _ON_TABLE.search(statement) or _LAST_WORD.search(statement)
    return _shown(match["table"]) if match is not None else ""


def _shown(name: str) -> str:
    """``users`` for ``public."users"``: as the observation's findings name relations."""
    parts = [p.strip('"') for p in re.findall(r'"[^"]+"|[^.]+', name)]
    return ".".join(parts[1:] if len(parts) == 2 and parts[0] == "public" else parts)

"""The worker process: its request in on stdin, its events out, and its exit.

A fresh interpreter spawned by the CLI (``python -m migration_check.worker``), or a fork of the
resident worker (resident/fork.py), runs ``main()``; the check itself is worker/main.py's ``run``.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import NoReturn, TextIO

from migration_check.fingerprints.closure import record_closure
from migration_check.fingerprints.inputs import merge_inputs, start_recording
from migration_check.protocol import ErrorEvent, Event, ResultEvent, WorkerRequest, decode, encode
from migration_check.worker.bytecode import validate_project_bytecode_by_content
from migration_check.worker.diagnose import Failure, one_line
from migration_check.worker.facts import Ready
from migration_check.worker.guard import refused, refused_message
from migration_check.worker.main import run

__all__ = ["exit_now", "main", "preload"]


def main() -> int:
    fd = int(os.environ["CHECK_MIGRATIONS_EVENT_FD"])
    with os.fdopen(fd, "w", buffering=1, encoding="utf-8") as events:
        code = _serve(events)
    exit_now(code)
    return code  # not reached


def exit_now(code: int) -> NoReturn:
    """End the process without the interpreter's teardown, once the answer is out.

    The CLI waits for this process to exit before it stops the server and prints the verdict,
    and tearing down a large project's mapped classes took 0.8 s of a 5.5 s check with 800
    tables. Nothing of the check is left to do: the result event is written, the checker's
    connections are closed, and the scratch databases go with the server (or the CLI's drop).
    What an ordinary exit would still run for the project's code does run: the ``atexit``
    handlers (logging's flush among them) and the standard streams' flush.
    """
    import atexit
    import contextlib

    try:
        with contextlib.suppress(BaseException):
            atexit._run_exitfuncs()
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
    finally:
        os._exit(code)


def preload() -> None:
    """Import what every check needs while the CLI is still starting the server.

    The worker is started before the server is ready and blocks on its request afterwards, so
    these imports (the floor of a check's cost) overlap the server's start-up. Only libraries:
    the project's code (env.py, models) runs after the request, with the guard in place.
    """
    for name in ("sqlalchemy", "psycopg", "alembic.script", "alembic.runtime.environment",
                 "alembic.autogenerate"):  # fmt: skip
        try:
            __import__(name)
        except Exception:  # the real import reports it, with the project's context
            continue


def _serve(events: TextIO) -> int:
    def emit(event: Event) -> None:
        events.write(encode(event) + "\n")

    preload()
    ready = Ready()
    req = decode(WorkerRequest, sys.stdin.read())
    if req.progress_each:
        ready.say(emit)
    for key, value in req.environ.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    # Before any project code: a model edited within the second of a compiled one must count.
    validate_project_bytecode_by_content()
    recorder = start_recording(req)
    try:
        result, cache = run(req, emit, recorder)
    except Failure as exc:
        emit(ErrorEvent(exc.kind, exc.message, exc.detail))
        return 0
    except BaseException as exc:  # the parent must hear about every way this process ends
        if refused:
            emit(ErrorEvent("unsafe", refused_message(), ""))
            return 0
        emit(
            ErrorEvent(
                "internal",
                f"{type(exc).__name__}: {one_line(exc)}",
                "".join(traceback.format_exception(exc)),
            )
        )
        return 0
    if refused:
        # env.py swallowed the guard's exception; the verdict cannot be trusted.
        emit(ErrorEvent("unsafe", refused_message(), ""))
        return 0
    inputs = recorder.snapshot() if recorder is not None else None
    unrecorded = recorder.refused if recorder is not None else ""
    if inputs is not None and result.version_listings is None:
        inputs = None
        unrecorded = "found a file in a version location the revision map does not hold"
    elif inputs is not None and result.version_listings:
        inputs = {**inputs, "dirs": {**result.version_listings, **inputs["dirs"]}}
    if inputs is not None and cache is not None and cache.used:
        # The cached revisions' upgrade() did not run here: what it read is the entry's record,
        # found unchanged when the entry was chosen, and this verdict rests on it too.
        inputs = merge_inputs(cache.entry_inputs(), inputs)
    emit(
        ResultEvent(
            findings=result.findings,
            revisions_applied=result.revisions_applied,
            heads=result.heads,
            version_dirs=result.version_dirs,
            written=result.written,
            notices=result.notices,  # the writer's: what it rewrote, and why
            revision_ids=result.revision_ids,
            catalog_skipped=result.catalog_skipped,
            warnings=result.warnings,  # the safety observation's advice, or safety = "warn"
            safety=result.safety,  # what each new revision's statements were seen to do
            unchecked=result.unchecked,  # why the drift comparison did not run
            inputs=inputs,
            inputs_refused=unrecorded,
            closure=record_closure(Path.cwd())
            if recorder is not None and req.record_inputs
            else None,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

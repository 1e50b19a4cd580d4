"""The Alembic half of a check, run in a child process of the CLI.

Why a separate process: env.py and the models are the project's code. They may call
``fileConfig()`` (silencing loggers), cache modules under names another project reuses, start
event loops, or hang on a lock. A fresh interpreter per check keeps each run's imports apart,
and the parent can always kill it and still tear the server down.

Protocol (protocol.py): the request on stdin; events as JSON lines on CHECK_MIGRATIONS_EVENT_FD,
``progress`` then one ``result`` or ``error``. stdout and stderr are env.py's and Alembic's.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from migration_check.findings import CheckResult, Finding
from migration_check.fingerprints.closure import record_closure
from migration_check.fingerprints.inputs import merge_inputs, start_recording
from migration_check.protocol import (
    CacheStoreEvent,
    Emit,
    ErrorEvent,
    Event,
    ProgressEvent,
    ResultEvent,
    WorkerRequest,
    decode,
    encode,
)
from migration_check.worker.admin import connect_admin, create_database
from migration_check.worker.autogenerate.compare import compare_autogenerate
from migration_check.worker.bytecode import validate_project_bytecode_by_content
from migration_check.worker.compat import sync_url
from migration_check.worker.diagnose import Failure, one_line
from migration_check.worker.envpy import (
    alembic_config,
    databases,
    no_script_location,
    toml_file_name,
)
from migration_check.worker.facts import Ready, version_listings
from migration_check.worker.guard import install_guard, refused, refused_message
from migration_check.worker.history import BaseCatch, round_trip_scratch
from migration_check.worker.layouts.flaskapp import FlaskApp
from migration_check.worker.layouts.multidb import MultiDb
from migration_check.worker.layouts.startfrom import load_dump_unrecorded
from migration_check.worker.upgrade import upgrade_to_head

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from migration_check.fingerprints.inputs import InputRecorder
    from migration_check.worker.caching import WorkerCache
    from migration_check.worker.catalog.phase import PendingModelsDatabase

__all__ = ["exit_now", "main", "preload"]


def _create_scratch(req: WorkerRequest, database: str | None = None) -> None:
    """Create the scratch database over a maintenance connection (before the guard exists)."""
    import psycopg

    with connect_admin(req) as conn:
        try:
            create_database(conn, database or req.database, throwaway=req.throwaway_server)
        except psycopg.errors.InsufficientPrivilege as exc:
            raise Failure(
                "server",
                f"{req.server_label}: the role may not create databases ({one_line(exc)}); "
                "grant it CREATEDB or use a role that has it",
            ) from exc


def _version_dirs(script: ScriptDirectory) -> list[str]:
    """Revision directories as resolved after env.py ran (it may set version_locations).

    Feeds only the untracked-file check: if Alembic's internals move, that check is skipped
    rather than the whole run failing.
    """
    dirs: set[str] = set()
    try:
        for rev in script.walk_revisions("base", "heads"):
            dirs.add(os.path.dirname(os.path.abspath(rev.path)))
        # Private, but the only place the configured (possibly still empty) locations live.
        dirs.update(str(p) for p in script._version_locations)
    except Exception:
        pass
    return sorted(dirs)


def _open_cache(
    req: WorkerRequest, emit: Emit, recorder: InputRecorder | None
) -> WorkerCache | None:
    """The migrated-database cache's side of this run (worker/caching.py), before the guard."""
    from migration_check.worker.caching import open_worker_cache

    # A refused connection: connect_admin's Failure.
    cache = open_worker_cache(req, emit, recorder)
    if cache is not None and req.start_from is not None:
        # A stale entry is recreated empty, then from the dump.
        cache.reload = lambda: load_dump_unrecorded(req, emit, recorder)
    return cache


def run(
    req: WorkerRequest, emit: Emit, recorder: InputRecorder | None = None
) -> tuple[CheckResult, WorkerCache | None]:
    """Upgrade a fresh scratch database to head, then compare it with the models.

    Returns the result and the migrated-database cache's side of the run (None without one),
    whose entry's inputs a verdict built on a cached database depends on too.
    """
    req.sync_url = sync_url(req.sync_url)
    if req.create_database:
        _create_scratch(req)
    # A cached migrated database was built from the same dump (its key holds the content).
    if req.start_from is not None and not (req.cache or {}).get("entry"):
        load_dump_unrecorded(req, emit, recorder)
    cache = _open_cache(req, emit, recorder)
    # Started before the guard, as the cache's connection is opened: env.py stays confined to
    # the scratch database while the checker builds and reads the models' database.
    models_db = _models_database(req) if req.catalog else None
    try:
        result = _run_guarded(req, emit, cache, models_db)
    finally:
        if models_db is not None:
            models_db.close()
    if cache is not None:
        emit(CacheStoreEvent(cache.finish()))
    return result, cache


def _models_database(req: WorkerRequest) -> PendingModelsDatabase:
    from migration_check.worker.catalog.phase import PendingModelsDatabase

    return PendingModelsDatabase(req)


def _run_guarded(
    req: WorkerRequest,
    emit: Emit,
    cache: WorkerCache | None,
    models_db: PendingModelsDatabase | None,
) -> CheckResult:
    url = req.url
    # Read before the guard: a multidb project's extra scratch databases, and the round trip's
    # rebuilds of the scratch database, go over maintenance connections the guard would refuse.
    cfg = alembic_config(req, url)
    multi = MultiDb.open(req, cfg) if databases(cfg) else None
    if multi is not None and cache is not None:
        # The cache snapshots one database; a multidb run replays in full.
        cache.close()
        cache = None
    # The round trip rebuilds the scratch database: its admin connection predates the guard.
    admin = connect_admin(req) if req.history_added else None
    flask = FlaskApp(req) if req.flask_app else None
    phases = _Phases(cache, multi, models_db, admin)
    try:
        return _run(req, emit, cfg, phases, flask)
    finally:
        if multi is not None:
            multi.drop()
        if flask is not None:
            flask.close()


@dataclass
class _Phases:
    """What a run brings besides env.py: each is None when the run does not use it."""

    cache: WorkerCache | None
    multi: MultiDb | None
    models_db: PendingModelsDatabase | None
    admin: Any  # the round trip's maintenance connection


def _run(
    req: WorkerRequest, emit: Emit, cfg: Config, phases: _Phases, flask: FlaskApp | None
) -> CheckResult:
    install_guard(req.allowed)
    if flask is None:
        return _check(req, emit, cfg, phases)
    # env.py runs inside the app's context, as under `flask db`.
    with flask.context(cfg):
        if cfg.get_alembic_option("script_location") is None:
            raise Failure("config", no_script_location(cfg))
        return _check(req, emit, cfg, phases)


def _check(req: WorkerRequest, emit: Emit, cfg: Config, phases: _Phases) -> CheckResult:
    url = req.url
    cache, multi, models_db, admin = phases.cache, phases.multi, phases.models_db, phases.admin

    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        script = ScriptDirectory.from_config(cfg)
    except CommandError as exc:
        raise Failure(
            "config",
            f"{_script_location_origin(cfg)}: script_location "
            # Alembic adds "Please use the 'init' command": wrong advice for a typo'd path.
            f"{cfg.get_alembic_option('script_location')!r}: "
            f"{one_line(exc).split('  ')[0].rstrip('.')}; set script_location to the "
            "directory holding env.py",
        ) from exc
    if cache is not None:
        cache.prepare(req, cfg, script, url.split("://", 1)[0])
    expected = req.heads_expected
    problems: list[Finding] = []
    verify = multi.sync_urls() if multi is not None else None
    start_from = req.start_from.shown if req.start_from is not None else None
    catch = BaseCatch(req.history_added or []) if admin is not None else None

    def upgrade() -> tuple[int, list[str]]:
        return upgrade_to_head(
            cfg,
            script,
            req.sync_url,
            emit,
            expected,
            problems,
            verify,
            start_from=start_from,
            catch=catch,
            each=req.progress_each,
            record=cache.record if cache is not None else None,
        )

    applied, heads = upgrade()
    if cache is not None:
        if not cache.after_upgrade(script, heads):
            cache.recreate_empty()
            problems.clear()
            applied, heads = upgrade()
        cache.take_snapshot(script, heads, applied)
        applied += cache.cached_revisions
    result = CheckResult(revisions_applied=applied, heads=heads, version_dirs=_version_dirs(script))
    result.version_listings = version_listings(script, result.version_dirs)
    result.findings.extend(problems)
    if len(heads) > 1 and problems:
        return result
    emit(ProgressEvent("comparing the database with the models"))
    seen: dict[str, Any] = {}
    build = models_db.builder(req.sync_url) if models_db is not None and multi is None else None

    def configured(opts: dict[str, Any]) -> None:
        if req.progress_each:  # the second run's cost up to here is env.py's, run twice
            emit(ProgressEvent("env.py configured again; autogenerate compares"))
        if build is not None:  # the models' database is built while autogenerate compares
            build(opts)

    result.findings.extend(
        compare_autogenerate(
            cfg,
            script,
            req.sync_url,
            seen,
            per_database=multi is not None,
            on_configured=configured,
        )
    )
    if models_db is not None and multi is not None:
        # One models database and one set of opts per run; a multidb env.py has several.
        result.catalog_skipped = (
            "the catalog comparison checks one database, and this config has several "
            "(databases = ...); only the autogenerate comparison ran"
        )
    elif models_db is not None:
        models_db.compare(req.sync_url, emit, result, seen)
    result.revision_ids = sorted(rev.revision for rev in script.walk_revisions())
    if req.revision is not None:
        from migration_check.worker.revision import write_revision

        if result.findings:
            emit(ProgressEvent("writing the revision"))
            result.written = write_revision(
                cfg, script, req.sync_url, req.revision, result.findings, result.notices
            )
    elif admin is not None:
        reference = catch.snapshot if catch is not None else None
        result.findings.extend(round_trip_scratch(cfg, script, req, admin, emit, reference, result))
    return result


def _script_location_origin(cfg: Config) -> str:
    """The file that set script_location: the ini, or pyproject.toml's [tool.alembic]."""
    name = cfg.config_ini_section
    toml = toml_file_name(cfg)
    if cfg.file_config.has_option(name, "script_location") or not toml:
        return os.path.relpath(str(cfg.config_file_name))
    return f"{os.path.relpath(toml)} [tool.alembic]"


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

"""The Alembic half of a check, run in a child process of the CLI.

Why a separate process: env.py and the models are the project's code. They may call
``fileConfig()`` (silencing loggers), cache modules under names another project reuses, start
event loops, or hang on a lock. A fresh interpreter per check keeps each run's imports apart,
and the parent can always kill it and still tear the server down.

Protocol (protocol.py, served by process.py): the request on stdin; events as JSON lines on
CHECK_MIGRATIONS_EVENT_FD, ``progress`` then one ``result`` or ``error``. stdout and stderr are
env.py's and Alembic's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from migration_check.findings import CheckResult, Finding
from migration_check.protocol import (
    CacheStoreEvent,
    Emit,
    ProgressEvent,
    WorkerRequest,
)
from migration_check.worker.admin import connect_admin, create_database
from migration_check.worker.autogenerate.compare import compare_autogenerate
from migration_check.worker.autogenerate.folded import Fold, folding
from migration_check.worker.compat import sync_url
from migration_check.worker.diagnose import Failure, one_line
from migration_check.worker.envpy import (
    alembic_config,
    databases,
    no_script_location,
    toml_file_name,
)
from migration_check.worker.facts import version_listings
from migration_check.worker.guard import install_guard
from migration_check.worker.history import BaseCatch, round_trip_scratch
from migration_check.worker.layouts.flaskapp import FlaskApp
from migration_check.worker.layouts.multidb import MultiDb
from migration_check.worker.layouts.startfrom import load_dump_unrecorded
from migration_check.worker.safety.in_transaction import in_transaction_result
from migration_check.worker.upgrade import upgrade_to_head

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from migration_check.fingerprints.inputs import InputRecorder
    from migration_check.worker.caching import WorkerCache
    from migration_check.worker.catalog.phase import PendingModelsDatabase

__all__ = ["run"]


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

    seen: dict[str, Any] = {}
    build = models_db.builder(req.sync_url) if models_db is not None and multi is None else None

    def configured(opts: dict[str, Any]) -> None:
        if req.progress_each:  # the second run's cost up to here is env.py's, run twice
            # (folded into the upgrade's run, the comparison starts here all the same)
            emit(ProgressEvent("env.py configured again; autogenerate compares"))
        if build is not None:  # the models' database is built while autogenerate compares
            build(opts)

    fold = folding(cfg, script, emit, seen, configured, multidb=multi is not None,
                   cache=(cache.used, cache.record) if cache is not None else None)  # fmt: skip

    def upgrade(fold: Fold | None) -> tuple[int, list[str]]:
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
            fold=fold,
        )

    try:
        applied, heads = upgrade(fold)
    except Failure as exc:  # a new revision's CONCURRENTLY in a transaction: a safety finding
        stopped = in_transaction_result(exc, req, script) if admin is not None else None
        if stopped is None:
            raise
        stopped.version_dirs = _version_dirs(script)  # the untracked-file check still runs
        return stopped
    if cache is not None:
        if not cache.after_upgrade(script, heads):
            if fold is not None and fold.ran:
                fold.discard()  # compared a stale database: compared again below
                if models_db is not None:
                    models_db.discard_build()
            cache.recreate_empty()
            problems.clear()
            applied, heads = upgrade(None)
        cache.take_snapshot(script, heads, applied)
        applied += cache.cached_revisions
    result = CheckResult(revisions_applied=applied, heads=heads, version_dirs=_version_dirs(script))
    result.version_listings = version_listings(script, result.version_dirs)
    result.findings.extend(problems)
    if len(heads) > 1 and problems:
        return result
    if fold is not None and fold.used:
        result.findings.extend(fold.findings())
    else:
        emit(ProgressEvent("comparing the database with the models"))
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

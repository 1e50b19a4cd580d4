"""The check's pipeline in the CLI process: load, provision, run the worker, tear down.

This process imports no SQLAlchemy or Alembic (the worker does): it owns the server, the
signals and the clock, so it can always clean up, whatever env.py does.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migration_check.caches.dump import DumpKey, dump_key
from migration_check.caches.migrated import CachePlan, choose_entry, scope_key
from migration_check.caches.verdict import VerdictCache, holds_any, static_key
from migration_check.findings import CheckResult, Finding
from migration_check.fingerprints.startup import static_inputs
from migration_check.postgres.server import (
    PORT,
    cache_base_dir,
)
from migration_check.protocol import Allowed, ResultEvent, WorkerRequest
from migration_check.run.gitbase import edited_revision_findings, find_base, stale_revision_findings
from migration_check.run.project import (
    display_path,
    preflight,
    project_drivername,
    revision_command,
    start_from_request,
    sync_driver,
)
from migration_check.run.provision import provision
from migration_check.run.resources import RunResources
from migration_check.run.untracked import untracked_revision_findings
from migration_check.run.worker_process import (
    Progress,
    Worker,
    run_worker,
    spawn_worker,
    worker_env,
)
from migration_check.settings import Settings

__all__ = ["run_check"]


def run_check(
    settings: Settings,
    progress: Progress = lambda _m: None,
    *,
    write_revision: dict[str, Any] | None = None,
    history: bool = False,
) -> CheckResult:
    """Answer "would autogenerate produce a non-empty revision?" for one Alembic config.

    With ``write_revision`` (the ``revision`` command's options) the worker also writes that
    revision, as ``alembic revision --autogenerate`` would; ``CheckResult.written`` names it.
    With ``history`` the revisions a change adds or edits (relative to its git base) are
    checked too: round trips in the worker, edits and staleness here.
    Raises a ``CheckError`` subclass when the question cannot be answered.
    """
    ini = preflight(settings)
    # A Flask app is loaded from where `flask db` runs: the current directory.
    project_dir = Path.cwd() if settings.flask_app else ini.parent
    drivername = project_drivername(settings, ini)
    resources = RunResources(settings)
    start_from = start_from_request(settings, resources)
    database = f"check_migrations_{secrets.token_hex(6)}"
    # The dump's content is in both caches' keys; one the key cannot hold turns both off.
    dump = dump_key(start_from.file, start_from.shown, os.environ) if start_from else None
    off = _caches_off(settings, dump)
    if off and settings.verbose:
        progress(off)
    # Not for the writer (it must write).
    keep_verdicts = (
        write_revision is None and (dump is None or bool(dump.key)) and _verdicts_on(settings)
    )
    with contextlib.ExitStack() as stack:

        def start_worker() -> Worker:
            return stack.enter_context(
                spawn_worker(resources.worker_environ(), project_dir, settings)
            )

        verdicts_dir = _verdicts_dir() if keep_verdicts else None
        # Certain to be needed (no verdict to serve): started before the git questions and the
        # caches' hashing, so its imports (0.35 s) overlap them too.
        worker = None if verdicts_dir is not None and holds_any(verdicts_dir) else start_worker()
        base, why_not = (
            find_base(ini.parent, settings.base_ref, hook=os.environ.get("PRE_COMMIT") == "1")
            if history
            else (None, "")
        )
        # Before any server: an unchanged check is answered from the verdict cache.
        verdicts = (
            _verdict_cache(
                settings, ini, drivername, verdicts_dir, resources, _history_key(base), dump
            )
            if verdicts_dir is not None
            else None
        )
        history_ctx = _History(base, why_not if history else "")
        cached = verdicts.lookup(progress) if verdicts is not None else None
        if cached is not None:
            return _result(settings, ini, cached, history_ctx)
        plan = None if off else _cache_plan(settings, ini, resources, dump)
        # Started before the server: the worker imports SQLAlchemy and Alembic (0.4 s, more
        # without bytecode) while this process starts the server, then waits on stdin.
        if worker is None:
            worker = start_worker()
        target, admin, label, secrets_ = stack.enter_context(
            provision(settings, database, progress, resources, plan)
        )
        if settings.verbose and not settings.database_url:  # the server's copy and start end
            progress("the throwaway server is up")
        if plan is not None and plan.entry is not None:
            database = plan.entry.database  # the copied cluster holds it, migrated
        url = target.with_database(database, drivername=drivername)
        sync_url = url.with_database(database, drivername=sync_driver(drivername))
        request = WorkerRequest(
            config=str(ini),
            name=settings.name,
            x_args=list(settings.x_args),
            url=url.render(hide_password=False),
            sync_url=sync_url.render(hide_password=False),
            database=database,
            create_database=not settings.database_url and (plan is None or plan.entry is None),
            throwaway_server=not settings.database_url,
            cache=plan.request() if plan is not None else None,
            revision=write_revision,
            heads_expected=list(settings.heads)
            if isinstance(settings.heads, tuple)
            else settings.heads,
            history_added=list(base.added) if base is not None else None,
            safety=settings.safety,
            admin_conninfo=admin,
            connect_timeout=int(settings.connect_timeout),
            server_label=label,
            catalog=not settings.autogenerate_only,
            record_inputs=verdicts is not None,
            start_from=start_from,
            flask_app=settings.flask_app,
            progress_each=bool(settings.verbose or sys.stderr.isatty()),
            allowed=Allowed(
                host=target.socket_dir or target.host or "localhost",
                port=target.port or PORT,
                database=database,
                databases=[database],
            ),
            environ=worker_env(url, sync_url, settings),
        )
        event, cache_store = run_worker(request, worker, settings, progress, secrets_)
        # A dump edited while the worker loaded it: what was built is not the key's.
        moved = (
            start_from is not None
            and dump is not None
            and (dump_key(start_from.file, start_from.shown, os.environ).key != dump.key)
        )
        if plan is not None and not moved:
            plan.store = cache_store
    if moved:
        verdicts = None
    if verdicts is not None and not verdicts.store(event) and settings.verbose:
        why = event.inputs_refused or "its inputs could not all be recorded"
        progress(f"not storing the verdict: the project's code {why}; every check of it runs")
    return _result(settings, ini, event, history_ctx)


@dataclass(frozen=True)
class _History:
    """The git base of the change (None: no history checks) and why there is none."""

    base: Any
    why_not: str


def _result(settings: Settings, ini: Path, event: ResultEvent, history: _History) -> CheckResult:
    """The worker's answer (fresh or cached) plus what the CLI adds on every run: the git check."""
    version_dirs = list(event.version_dirs)
    revision_ids = list(event.revision_ids)
    history_findings: list[Finding] = []
    if history.base is not None:
        history_findings += edited_revision_findings(history.base, version_dirs)
        history_findings += stale_revision_findings(history.base, version_dirs)
    return CheckResult(
        findings=sorted(
            [
                *event.findings,
                *untracked_revision_findings(version_dirs),
                *history_findings,
            ],
            key=Finding.sort_key,
        ),
        revisions_applied=event.revisions_applied,
        heads=list(event.heads),
        version_dirs=version_dirs,
        config_file=display_path(ini),
        revision_command=revision_command(settings, ini, revision_ids),
        written=list(event.written),
        revision_ids=revision_ids,
        notices=[*event.notices]
        + ([f"history checks skipped: {history.why_not}"] if history.why_not else []),
        catalog_skipped=event.catalog_skipped,
        warnings=list(event.warnings),
        safety=list(event.safety),
        unchecked=event.unchecked,
    )


def _history_key(base: Any) -> str:
    """The part of the git base the worker's round trips depend on (the files are hashed)."""
    if base is None or not base.added:
        return ""
    return json.dumps([base.label, base.tip, base.modified_from, sorted(base.added)])


def _verdict_cache(
    settings: Settings,
    ini: Path,
    drivername: str,
    base: Path,
    resources: RunResources,
    history: str = "",
    dump: DumpKey | None = None,
) -> VerdictCache:
    fingerprint = resources.pg_fingerprint
    environ = resources.worker_environ()
    key = static_key(
        settings,
        ini,
        drivername=drivername,
        pg_fingerprint=fingerprint,
        worker_environ=environ,
        history=history,
        start_from=dump.key if dump is not None else "",
    )
    return VerdictCache(base, key, environ)


def _verdicts_on(settings: Settings) -> bool:
    """The verdict cache (caches/verdict.py) serves the throwaway server only: its build is
    known."""
    return not settings.database_url and settings.use_cache and settings.verdict_cache


def _verdicts_dir() -> Path | None:
    try:
        return cache_base_dir() / "verdicts"
    except OSError:
        return None  # an unwritable cache directory costs speed, never the verdict


def _caches_off(settings: Settings, dump: DumpKey | None) -> str:
    """Why a cache the settings leave on stays off for this check ("": none does)."""
    if settings.database_url or not settings.use_cache:
        return ""
    if dump is not None and not dump.key:
        return f"no cached verdict or migrated database: {dump.why_not}"
    if settings.flask_app:
        # The app's configuration is read in the worker, by code the key does not see.
        return "no cached migrated database with --flask-app: its key does not cover the app"
    return ""


def _cache_plan(
    settings: Settings, ini: Path, resources: RunResources, dump: DumpKey | None
) -> CachePlan | None:
    """The migrated-database cache (caches/migrated.py) serves the throwaway server only."""
    if settings.database_url or not settings.use_cache:
        return None
    fingerprint = resources.pg_fingerprint
    uid = resources.server_user.uid
    scope = scope_key(
        pg_fingerprint=fingerprint,
        uid=uid,
        ini=ini,
        name=settings.name,
        start_from=dump.key if dump is not None else "",
    )
    environ = resources.worker_environ()
    notes: list[str] = []
    entry = choose_entry(scope, ini, environ, notes)
    note = next(iter(notes), None)
    return CachePlan(scope, fingerprint, static_inputs(environ), entry, note=note)

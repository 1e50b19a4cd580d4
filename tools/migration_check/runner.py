"""The check's pipeline in the CLI process: load, provision, run the worker, tear down.

This process imports no SQLAlchemy or Alembic (the worker does): it owns the server, the
signals and the clock, so it can always clean up, whatever env.py does.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from migration_check.cache import CachePlan, choose_entry, scope_key
from migration_check.config import Settings
from migration_check.findings import CheckResult, Finding
from migration_check.gitcheck import untracked_revision_findings
from migration_check.project import (
    display_path,
    preflight,
    project_drivername,
    revision_command,
    start_from_request,
    sync_driver,
)
from migration_check.provision import provision
from migration_check.server import (
    PORT,
    find_binaries,
    resolve_server_user,
)
from migration_check.workerproc import (
    Progress,
    run_worker,
    spawn_worker,
    worker_env,
    worker_env_base,
)

__all__ = ["run_check"]


def run_check(settings: Settings, progress: Progress = lambda _m: None) -> CheckResult:
    """Answer "would autogenerate produce a non-empty revision?" for one Alembic config.

    Raises a ``CheckError`` subclass when the question cannot be answered.
    """
    ini = preflight(settings)
    # A Flask app is loaded from where `flask db` runs: the current directory.
    project_dir = Path.cwd() if settings.flask_app else ini.parent
    drivername = project_drivername(settings, ini)
    start_from = start_from_request(settings)
    database = f"check_migrations_{secrets.token_hex(6)}"
    plan = _cache_plan(settings, ini)
    # Started first: the worker imports SQLAlchemy and Alembic (0.4 s, more without bytecode)
    # while this process starts the server; it then waits for the request on stdin.
    with (
        spawn_worker(worker_env_base(settings), project_dir, settings) as worker,
        provision(settings, database, progress, plan) as (target, admin, label, secrets_),
    ):
        if plan is not None and plan.entry is not None:
            database = plan.entry.database  # the copied cluster holds it, migrated
        url = target.with_database(database, drivername=drivername)
        sync_url = url.with_database(database, drivername=sync_driver(drivername))
        request = {
            "config": str(ini),
            "name": settings.name,
            "x_args": list(settings.x_args),
            "url": url.render(hide_password=False),
            "sync_url": sync_url.render(hide_password=False),
            "database": database,
            # In --database-url mode the CLI creates it, so it knows whether to drop it.
            "create_database": not settings.database_url and (plan is None or plan.entry is None),
            "cache": plan.request() if plan is not None else None,
            "admin_conninfo": admin,
            "connect_timeout": int(settings.connect_timeout),
            "server_label": label,
            "start_from": start_from,
            "flask_app": settings.flask_app,
            "allowed": {
                "host": target.socket_dir or target.host or "localhost",
                "port": target.port or PORT,
                "database": database,
            },
        }
        request["environ"] = worker_env(url, sync_url, settings)
        event = run_worker(request, worker, settings, progress, secrets_)
        if plan is not None:
            plan.store = event.get("cache_store")
    version_dirs = list(event.get("version_dirs", []))
    return CheckResult(
        findings=sorted(
            [
                *(Finding.from_dict(f) for f in event["findings"]),
                *untracked_revision_findings(version_dirs),
            ],
            key=Finding.sort_key,
        ),
        revisions_applied=int(event.get("revisions_applied", 0)),
        heads=list(event.get("heads", [])),
        version_dirs=version_dirs,
        config_file=display_path(ini),
        revision_command=revision_command(settings, ini),
    )


def _cache_plan(settings: Settings, ini: Path) -> CachePlan | None:
    """The migrated-database cache (cache.py) serves the throwaway server only."""
    if settings.database_url or not settings.use_cache:
        return None
    if settings.start_from or settings.flask_app:
        # The key covers neither the dump nor the app's configuration: replay in full.
        return None
    binaries = find_binaries(settings.postgres_bin)
    user = resolve_server_user(settings.server_user)
    fingerprint = binaries.fingerprint()
    scope = scope_key(pg_fingerprint=fingerprint, uid=user.uid, ini=ini, name=settings.name)
    return CachePlan(scope, fingerprint, choose_entry(scope, ini))

"""Several databases, one env.py: the layout ``alembic init -t multidb`` creates.

Its env.py reads ``databases = engine1, engine2`` and builds one engine per database from the
section of the same name (``[engine1] sqlalchemy.url``), then migrates each and compares each
with its own ``target_metadata[name]``. Each database gets its own scratch database, named
after the run's (``check_migrations_<hex>_engine1``) so a sweep of ``check_migrations_*``
finds it, and the section's URL points at it, keeping the driver the section names.
Runs in the worker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from migration_check.protocol import WorkerRequest
from migration_check.worker.admin import connect_admin, create_database, drop_databases
from migration_check.worker.envpy import databases

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["MultiDb", "scratch_name"]

_MAX_IDENTIFIER = 63  # PostgreSQL's NAMEDATALEN - 1


@dataclass
class MultiDb:
    """The scratch database of each of a multidb project's databases, and their URLs."""

    admin: Any
    names: dict[str, str] = field(default_factory=dict)  # database name in the ini -> scratch
    urls: dict[str, str] = field(default_factory=dict)
    sync: dict[str, str] = field(default_factory=dict)

    @classmethod
    def open(cls, req: WorkerRequest, cfg: Config) -> MultiDb:
        """Create one scratch database per entry of ``databases``; point its section at it.

        Called before the connection guard: the maintenance connection is opened here and kept
        to drop the databases afterwards.
        """
        from sqlalchemy.engine import make_url

        admin = connect_admin(req)
        multi = cls(admin)
        base, sync_base = make_url(req.url), make_url(req.sync_url)
        try:
            for name in databases(cfg):
                scratch = scratch_name(req.database, name, set(multi.names.values()))
                # Recorded before CREATE: drop() must see a database whose reply was lost.
                multi.names[name] = scratch
                create_database(admin, scratch, throwaway=req.throwaway_server)
                driver = _section_driver(cfg, name) or base.drivername
                url = base.set(drivername=driver, database=scratch)
                multi.urls[name] = url.render_as_string(hide_password=False)
                multi.sync[name] = sync_base.set(database=scratch).render_as_string(
                    hide_password=False
                )
                cfg.set_section_option(name, "sqlalchemy.url", multi.urls[name].replace("%", "%%"))
        except BaseException:
            multi.drop()
            raise
        req.allowed.databases = [req.allowed.database, *multi.names.values()]
        return multi

    def sync_urls(self) -> list[str]:
        return list(self.sync.values())

    def drop(self) -> None:
        """Drop the scratch databases (on --database-url they would outlive the run)."""
        drop_databases(self.admin, self.names.values())


def scratch_name(run_database: str, name: str, taken: set[str]) -> str:
    safe = re.sub(r"[^a-z0-9_]", "_", name.lower())
    scratch = f"{run_database}_{safe}"[:_MAX_IDENTIFIER]
    n = 1
    while scratch in taken:
        n += 1
        suffix = f"_{n}"
        scratch = f"{run_database}_{safe}"[: _MAX_IDENTIFIER - len(suffix)] + suffix
    return scratch


def _section_driver(cfg: Config, name: str) -> str | None:
    """The PostgreSQL driver the section's own URL names, so env.py's engine accepts ours."""
    from sqlalchemy.engine import make_url

    if not cfg.file_config.has_section(name):
        return None
    raw = cfg.get_section_option(name, "sqlalchemy.url")
    if not raw:
        return None
    try:
        driver = make_url(raw).drivername
    except Exception:  # a placeholder such as driver://...: keep the project's default
        return None
    if driver in ("postgres", "postgresql") or driver.startswith("postgresql+"):
        return "postgresql" if driver == "postgres" else driver
    return None

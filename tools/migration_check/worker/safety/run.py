"""Where the observation runs: the new revisions again, on the base's schema with a row per table.

The round trip downgrades the new revisions, which leaves the scratch database at the base's
heads; a copy is taken then (``keep_base``), costing one ``CREATE DATABASE ... TEMPLATE`` instead
of a replay of the base's history. Once the round trip is done the copy takes the scratch
database's name (env.py connects to that name whichever way it builds its URL), gets its rows,
and the new revisions run on it through env.py with the cursor hook. Without a copy (the
downgrade failed, or env.py left a connection open) the base is replayed instead.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from migration_check.findings import CheckResult, Finding
from migration_check.protocol import Emit, ProgressEvent, WorkerRequest
from migration_check.worker.admin import create_database, drop_database
from migration_check.worker.diagnose import Failure
from migration_check.worker.safety.hazards import Hazard, find_hazards
from migration_check.worker.safety.observe import Observer
from migration_check.worker.safety.results import final_hazards, to_findings
from migration_check.worker.safety.seed import seed
from migration_check.worker.safety.snapshot import take

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import Script, ScriptDirectory

__all__ = ["SafetyRun"]


class SafetyRun:
    """The observation of one check's new revisions; ``mode`` is the ``safety`` setting."""

    def __init__(self, req: WorkerRequest, admin: Any, mode: str, emit: Emit) -> None:
        self.req, self.admin, self.mode, self.emit = req, admin, mode, emit
        self.database: str = req.database
        self.copy: str | None = None
        self.base = ""  # how the base's schema was had: "copied" after the downgrade, "replayed"
        self.spent: dict[str, float] = {}  # phase -> seconds: the cost, said under -v

    @contextlib.contextmanager
    def _phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.spent[name] = self.spent.get(name, 0.0) + time.perf_counter() - start

    def keep_base(self) -> None:
        """Called with the scratch database at the base's heads (after the downgrade)."""
        from psycopg import sql

        name = f"{self.database}_sb"[:63]
        statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(self.database)
        )
        if self.req.throwaway_server and self.admin.info.server_version >= 150000:
            statement = sql.SQL("{} STRATEGY FILE_COPY").format(statement)
        try:
            with self._phase("copy"):
                drop_database(self.admin, name)
                self.admin.execute(statement)
        except Exception:  # env.py left a session open on it: the base is replayed instead
            return
        self.copy = name

    def run(
        self,
        cfg: Config,
        script: ScriptDirectory,
        new: list[Script],
        old: list[Script],
        run_steps: Callable[..., None],
        into: CheckResult | None,
        *,
        replay: bool = False,
    ) -> list[Finding]:
        """Observe ``new`` (parents first) on the base's schema; the findings at ``error``.

        ``replay``: the downgrade did not reach the base's schema, so the copy is not of it.
        """
        url = self.req.sync_url
        names = ", ".join(r.revision for r in new)
        self.emit(
            ProgressEvent(
                f"observing {names} on the base's schema with a row per table "
                "(locks, rewrites, scans)"
            )
        )
        if replay and self.copy is not None:
            with contextlib.suppress(Exception):
                drop_database(self.admin, self.copy)
            self.copy = None
        try:
            self._base(cfg, script, old, run_steps)
        finally:
            if self.copy is not None:
                with contextlib.suppress(Exception):
                    drop_database(self.admin, self.copy)
        version_table = cfg.attributes.get(
            "check_migrations.version_table", ("alembic_version", None)
        )[0]
        seeded = self._seed(url, version_table)
        files = {os.path.realpath(r.path): r.revision for r in new if r.path}
        observer = Observer(files, version_table)
        observer.baseline = seeded[1]
        observer.old = frozenset(seeded[1].relations)
        failed: Failure | None = None
        with observer.installed(), self._phase("upgrade"):
            try:
                run_steps(cfg, script, url, new, upgrade=True)
            except Failure as exc:
                if exc.kind != "migration":
                    raise
                failed = exc
        with self._phase("hazards"):
            hazards = find_hazards(observer.steps, seeded[1])
        if failed is None:
            with self._phase("end state"):
                hazards += final_hazards(url, observer, seeded[1])
        elif not any(s.error for s in observer.steps):
            hazards.append(_unexplained(failed, new, seeded[1]))
        with self._phase("hazards"):
            errors, warnings, records = to_findings(hazards, observer, self.mode, seeded[0])
        for record in records:
            record["base"] = self.base
        if into is not None:
            into.warnings.extend(warnings)
            into.safety.extend(records)
        if self.req.progress_each:
            self.emit(ProgressEvent(self._cost(observer, len(seeded[0].seeded))))
        return errors

    def _cost(self, observer: Observer, seeded: int) -> str:
        """One line: where the observation's time went (bench/safety.py reads it)."""
        spent = self.spent
        upgrade = spent.pop("upgrade", 0.0)
        alembic = upgrade - observer.snapshot_seconds - observer.statement_seconds
        parts = [f"{name} {spent[name]:.3f}s" for name in ("copy", "rename", "replay")
                 if name in spent]  # fmt: skip
        parts += [
            f"seed {spent.get('seed', 0.0):.3f}s ({seeded} rows)",
            f"baseline snapshot {spent.get('baseline', 0.0):.3f}s",
            f"env.py and Alembic {alembic:.3f}s",
            f"{len(observer.steps)} statements {observer.statement_seconds:.3f}s",
            f"{observer.snapshots} snapshots {observer.snapshot_seconds:.3f}s",
            f"end state {spent.get('end state', 0.0):.3f}s",
            f"hazards and report {spent.get('hazards', 0.0):.3f}s",
        ]
        return "safety observation's cost: " + ", ".join(parts)

    def _base(self, cfg: Config, script: ScriptDirectory, old: list[Script],
              run_steps: Callable[..., None]) -> None:  # fmt: skip
        from psycopg import sql

        throwaway = bool(self.req.throwaway_server)
        if self.copy is not None:
            try:
                with self._phase("rename"):
                    drop_database(self.admin, self.database)
                    self.admin.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                        sql.Identifier(self.copy), sql.Identifier(self.database)))  # fmt: skip
                self.copy, self.base = None, "copied"
                return
            except Exception:
                pass
        with self._phase("replay"):
            drop_database(self.admin, self.database)
            create_database(self.admin, self.database, throwaway=throwaway)
            run_steps(cfg, script, self.req.sync_url, old, upgrade=True)
        self.base = "replayed"

    def _seed(self, url: str, version_table: str) -> tuple[Any, Any]:
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        start = time.perf_counter()
        engine = create_engine(url, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                report = seed(conn, version_table)
                conn.commit()
                self.spent["seed"] = time.perf_counter() - start
                with self._phase("baseline"):
                    baseline = take(conn.connection.dbapi_connection)
                    conn.rollback()
        finally:
            engine.dispose()
        return report, baseline


def _unexplained(failed: Failure, new: list[Script], baseline: Any) -> Hazard:
    """The upgrade failed with no statement of ours failing (env.py's or a revision's Python)."""
    from migration_check.worker.safety.observe import Step

    first = new[0]
    step = Step(first.revision, os.path.relpath(first.path), 1, "", baseline)
    step.error = failed.message
    return Hazard("fails_with_rows", step, "", "",
                  f"fails once the existing tables have a row each: {failed.message}")  # fmt: skip

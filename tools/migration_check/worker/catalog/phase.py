"""The catalog comparison's phases in the worker, around the upgrade and autogenerate.

``<scratch>_models`` is created in a thread while the upgrade runs (before the connection
guard exists: modelsdb.py says why), built from the models while autogenerate compares, and
compared with the migrated database afterwards (catalog.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from migration_check.findings import CheckResult
from migration_check.protocol import Emit, ProgressEvent, WorkerRequest
from migration_check.worker.catalog.modelsdb import (
    ModelsDatabase,
    SkipCatalog,
    open_models_database,
)

__all__ = ["PendingModelsDatabase"]


class PendingModelsDatabase:
    """``<scratch>_models`` being created in a thread, overlapping the upgrade (0.1 s here)."""

    def __init__(self, req: WorkerRequest) -> None:
        import psycopg
        import sqlalchemy

        from migration_check.worker.compat import sqlalchemy_major

        self._db: ModelsDatabase | None = None
        self._error = ""
        self._stamps = req.progress_each  # the build's steps, with -v (or on a terminal)
        if sqlalchemy_major() < 2:
            # The build wraps the checker's psycopg 3 connection in an engine, a dialect that
            # arrived in SQLAlchemy 2.0: an older one gets autogenerate's opinion alone.
            self._error = (
                f"the catalog comparison needs SQLAlchemy 2.0 or later (this project has "
                f"{sqlalchemy.__version__}); only the autogenerate comparison ran"
            )
            self._thread = threading.Thread(target=lambda: None)
            self._thread.start()
            return
        # Bound now, before install_guard() replaces it: the checker's own way in.
        connect = psycopg.Connection.connect

        def create() -> None:
            from migration_check.worker.diagnose import one_line

            try:
                self._db = open_models_database(
                    req.database, req.admin_conninfo, req.connect_timeout, connect
                )
            except Exception as exc:  # e.g. --database-url's role may create only one database
                self._error = (
                    f"could not create the models' database {req.database}_models on "
                    f"{req.server_label} ({one_line(exc)}); only the autogenerate "
                    "comparison ran"
                )

        self._thread = threading.Thread(target=create, name="models-database", daemon=True)
        self._thread.start()

    def get(self) -> ModelsDatabase:
        """The database, once created; ``SkipCatalog`` saying why it could not be."""
        self._thread.join()
        if self._db is None:
            raise SkipCatalog(self._error)
        return self._db

    def builder(self, url: str) -> Callable[[dict[str, Any]], None]:
        """``compare_autogenerate``'s ``on_configured``: start the build once env.py names
        the target metadata (``ModelsDatabase.start_build``)."""

        def start(opts: dict[str, Any]) -> None:
            from migration_check.worker.catalog.compare import metadatas_of

            metadatas = metadatas_of(opts.get("target_metadata"))
            self._thread.join()
            if self._db is None or not metadatas:
                return  # get() later says why there is no database
            try:
                self._db.start_build(metadatas, url)
            except Exception:  # only speed is lost: build() does it all after autogenerate
                return

        return start

    def discard_build(self) -> None:
        """The build ``builder`` started is of a comparison the check discarded (a folded one
        whose reused database turned out stale): the next starts from an empty database."""
        self._thread.join()
        if self._db is not None:
            self._db.discard_early_build()

    def compare(
        self,
        url: str,
        emit: Emit,
        result: CheckResult,
        seen: dict[str, Any],
    ) -> None:
        """The second opinion (worker/catalog/compare.py): what autogenerate cannot see."""
        from migration_check.worker.catalog.compare import compare_catalog
        from migration_check.worker.catalog.enum_defaults import keep_enum_defaults
        from migration_check.worker.catalog.overlap import not_covered

        emit(ProgressEvent("comparing the catalogs (models built by create_all)"))
        try:
            db = self.get()
            if self._stamps:
                db.say = lambda message: emit(ProgressEvent(message))
            found = compare_catalog(db, url, seen, list(result.findings))
            if db.note:  # some objects could not be built: the rest was compared
                result.catalog_skipped = db.note
        except SkipCatalog as exc:
            result.catalog_skipped = str(exc)
            return
        result.findings.extend(keep_enum_defaults(not_covered(found, result.findings), url))

    def close(self) -> None:
        self._thread.join()
        if self._db is not None:
            self._db.close()

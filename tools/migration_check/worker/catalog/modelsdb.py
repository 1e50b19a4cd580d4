"""The second database: what ``create_all()`` builds from the models, on the checker's server.

It is created while the upgrade runs, in a thread (catalog_phase.py) started before the
connection guard exists: the thread connects through psycopg's ``connect`` as it was before the
guard wrapped it, so the guard keeps refusing env.py everything but the scratch database while
the checker builds and reads this one (the checker never asks the guard for a second database).
The database is named after the scratch database (``<scratch>_models``), so every sweep of
``check_migrations_*`` covers it too.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from migration_check.worker.admin import drop_database, recreate_database
from migration_check.worker.catalog.modelsdb_partial import Skipped, build_partially, skipped_note

__all__ = ["ModelsDatabase", "SkipCatalog", "open_models_database"]


class SkipCatalog(Exception):  # a verdict, not an error: the run goes on
    """The models cannot be built into a database: the catalog opinion is skipped, saying why."""


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass
class ModelsDatabase:
    name: str
    admin: Any  # psycopg connection to the maintenance database, autocommit
    conn: Any  # psycopg connection to this database, one transaction per build step
    reconnect: Any = None  # () -> a new ``conn`` (psycopg's unguarded connect), for reset()

    # What create_all() could not build (worker/catalog/modelsdb_partial.py), and the line saying
    # so.
    skipped: list[Skipped] = field(default_factory=list)
    note: str = ""
    # A progress line per build step (catalog/phase.py): a failed build retried is a cost.
    say: Callable[[str], None] = field(default=lambda _m: None, repr=False)

    _engine: Any = None
    _early: _EarlyBuild | None = None

    def engine(self) -> Any:
        """A SQLAlchemy engine on the connection opened before the guard (no new connect).

        Never disposed: that would close ``conn``, which ``close()`` owns.
        """
        from sqlalchemy import create_engine
        from sqlalchemy.pool import StaticPool

        if self._engine is None:
            self._engine = create_engine(
                "postgresql+psycopg://", creator=lambda: self.conn, poolclass=StaticPool
            )
        return self._engine

    def _prepare(self, migrated: Any, metadatas: list[Any]) -> None:
        """Copy the migrated database's schemas and extensions, add the schemas the models name.

        ``create_all()`` creates neither: a citext column or a table in schema ``billing``
        would fail to build without them.
        """
        schemas = [
            r[0]
            for r in migrated.exec_driver_sql(
                "SELECT nspname FROM pg_namespace WHERE nspname !~ '^pg_' "
                "AND nspname NOT IN ('information_schema', 'public') ORDER BY oid"
            )
        ]
        for metadata in metadatas:
            for table in metadata.tables.values():
                if table.schema and table.schema not in schemas:
                    schemas.append(table.schema)
        extensions = list(
            migrated.exec_driver_sql(
                "SELECT e.extname, n.nspname, e.extversion FROM pg_extension e "
                "JOIN pg_namespace n ON n.oid = e.extnamespace "
                "WHERE e.extname <> 'plpgsql' ORDER BY e.oid"
            )
        )
        import psycopg

        try:
            self._create_namespaces(schemas, extensions)
        except psycopg.Error as exc:  # e.g. --database-url's role may not create an extension
            from migration_check.worker.diagnose import one_line

            raise SkipCatalog(
                f"could not copy the schemas and extensions into the models' database "
                f"({one_line(exc)}); only the autogenerate comparison ran"
            ) from exc

    def _create_namespaces(self, schemas: list[str], extensions: list[Any]) -> None:
        with self.conn.transaction():
            for schema in schemas:
                self.conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(schema)}")
            for name, schema, version in extensions:
                self.conn.execute(
                    f"CREATE EXTENSION IF NOT EXISTS {_ident(name)} WITH SCHEMA "
                    f"{_ident(schema)} VERSION {_literal(version)} CASCADE"
                )

    def build(self, metadatas: list[Any], migrated: Any) -> str:
        """``create_all()`` every metadata; return how (``models``, ``models+copied types``,
        ``models, partly``).

        The schemas and extensions are copied first (``_prepare``), by ``start_build`` when it
        ran, else here.

        A model may use a type, sequence or function only a revision creates
        (worker/catalog/foreign_types.py). The first failure is rolled back; those objects are then
        copied from the migrated database and the build is tried once more. If that fails
        too, what builds is built statement by statement (worker/catalog/modelsdb_partial.py) and
        ``skipped`` lists what did not, ``note`` saying so; only when even that is impossible
        does ``SkipCatalog`` quote the first failure (the retry's may be the copies' doing).
        """
        from migration_check.worker.catalog.foreign_types import copy_foreign_objects, created_names

        self.skipped, self.note = [], ""
        first = self._finish_early_build(metadatas, migrated)
        if first is None:
            self.say("the models' database is built")
            return "models"
        self.say("create_all() on the models failed; retrying with the migrated types copied")
        copy_foreign_objects(migrated, self.conn, created_names(metadatas))
        if self._create_all(metadatas) is None:
            self.say("the retry built the models' database")
            return "models+copied types"
        self.say("the retry failed too; building the models statement by statement")
        skipped = self._build_partially(metadatas)
        if skipped is None:
            raise SkipCatalog(
                f"create_all() on the models failed ({first}), even with the ENUM types, "
                "domains, sequences and functions of the migrated database copied in; only the "
                "autogenerate comparison ran"
            )
        self.skipped = skipped
        if not skipped:
            return "models+copied types"
        self.note = skipped_note(skipped)
        return "models, partly"

    def _build_partially(self, metadatas: list[Any]) -> list[Skipped] | None:
        """What could not be built, once the rest is; None if the DDL cannot be had."""
        if self._compiled_ddl(metadatas) is None:
            return None  # a listener wants a real connection: no statements to run one by one
        try:
            return build_partially(self.conn, metadatas, self.engine().dialect)
        except Exception:  # the DDL of one object would not even compile: skip it all
            with contextlib.suppress(Exception):
                self.conn.rollback()
            return None

    def start_build(self, metadatas: list[Any], url: str) -> None:
        """Start ``create_all()``'s DDL in a thread, while autogenerate compares (its caller).

        Called as soon as env.py has configured the target metadata. The DDL is compiled here,
        in the calling thread, so the thread only waits on PostgreSQL (800 tables: 0.8 s of
        the server's time overlapping autogenerate's 1.3 s). ``build()`` later compiles again
        and uses this database only if the statements are the same: what the models say after
        autogenerate is what is compared, however env.py's hooks behave.
        """
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        statements = self._compiled_ddl(metadatas)
        if statements is None:
            return  # a listener wants a real connection: build() runs create_all() itself
        engine = create_engine(url, poolclass=NullPool)
        try:
            with engine.connect() as migrated:
                self._prepare(migrated, metadatas)
        except SkipCatalog:
            return  # build() meets the same failure and reports it
        finally:
            engine.dispose()
        self._early = _EarlyBuild(statements, lambda: self._create_all(metadatas, statements))

    def _finish_early_build(self, metadatas: list[Any], migrated: Any) -> str | None:
        """``create_all()``'s outcome: the early build's when its DDL still holds, else now."""
        early, self._early = self._early, None
        if early is None:
            self._prepare(migrated, metadatas)
            return self._create_all(metadatas)
        # Nothing else may touch ``conn`` before this join: a transaction of ours opened while
        # the thread's is open nests in it, and one of the two fails out of order.
        outcome = early.join()
        now = self._compiled_ddl(metadatas)
        if early.statements == now:
            return outcome
        self.reset()  # the models changed since: build them as they are now
        self._prepare(migrated, metadatas)
        return self._create_all(metadatas, now)

    def discard_early_build(self) -> None:
        """Undo ``start_build``: what it copied came from a migrated database since replaced."""
        early, self._early = self._early, None
        if early is not None:
            early.join()
            self.reset()

    def reset(self) -> None:
        """Drop and recreate this database (empty), reconnecting as before the guard."""
        self.conn.close()
        self._engine = None
        recreate_database(self.admin, self.name)
        self.conn = self.reconnect()

    def _create_all(self, metadatas: list[Any], statements: list[str] | None = None) -> str | None:
        """``create_all()``; None when it worked, else PostgreSQL's one-line error.

        The DDL is compiled as ``create_all()`` would send it and then pipelined: one round
        trip instead of one per statement (800 tables: 1.8 s instead of 2.7 s here).
        """
        import psycopg
        from sqlalchemy.exc import SQLAlchemyError

        from migration_check.worker.diagnose import one_line

        if statements is None:
            statements = self._compiled_ddl(metadatas)
        try:
            if statements is None:
                with self.engine().begin() as conn:
                    for metadata in metadatas:
                        metadata.create_all(conn, checkfirst=False)
            else:
                with self.conn.transaction(), self.conn.pipeline():
                    for statement in statements:
                        # () as SQLAlchemy passes it: psycopg then reads its %% as %.
                        self.conn.execute(statement, ())
        except (SQLAlchemyError, psycopg.Error) as exc:
            with contextlib.suppress(Exception):
                self.conn.rollback()
            orig = getattr(exc, "orig", None)
            return one_line(orig if orig is not None else exc)
        return None

    def _compiled_ddl(self, metadatas: list[Any]) -> list[str] | None:
        """The statements ``create_all(checkfirst=False)`` emits, or None if they cannot be had.

        A DDL event listener may want a real connection (it queries the database): the
        caller then runs ``create_all()`` itself.
        """
        from sqlalchemy import create_mock_engine

        statements: list[str] = []
        engine = self.engine()
        with engine.connect():  # the dialect learns the server's version, as create_all's would
            pass
        dialect = engine.dialect

        def collect(sql: Any, *multiparams: Any, **params: Any) -> None:
            if any(m is not None for m in multiparams) or params:
                raise ValueError("DDL with parameters")
            statements.append(str(sql.compile(dialect=dialect)))

        mock = create_mock_engine("postgresql+psycopg://", collect)
        try:
            for metadata in metadatas:
                # An empty database: checkfirst's per-table lookups would only cost time.
                metadata.create_all(mock, checkfirst=False)
        except Exception:
            return None
        return statements

    def close(self) -> None:
        """Drop the database; nothing of it may outlive the run."""
        if self._early is not None:
            self._early.join()  # its statements hold the connection
        with contextlib.suppress(Exception):
            self.conn.close()
        with contextlib.suppress(Exception):
            drop_database(self.admin, self.name)
        with contextlib.suppress(Exception):
            self.admin.close()


class _EarlyBuild:
    """Compiled DDL being executed on the models' database by a thread of its own."""

    def __init__(self, statements: list[str], create_all: Callable[[], str | None]) -> None:
        self.statements = statements
        self._outcome: str | None = None

        def run() -> None:
            try:
                self._outcome = create_all()
            except Exception as exc:  # never read as "built": build() retries, then skips
                self._outcome = f"{type(exc).__name__}: {exc}"

        self._thread = threading.Thread(target=run, name="models-build", daemon=True)
        self._thread.start()

    def join(self) -> str | None:
        self._thread.join()
        return self._outcome


def open_models_database(
    database: str, admin_conninfo: dict[str, Any], connect_timeout: int, connect: Any
) -> ModelsDatabase:
    """Create ``<scratch>_models`` and connect to it with ``connect`` (psycopg's, unguarded).

    Raises psycopg errors as they come: the caller turns them into a skipped opinion.
    """
    name = f"{database}_models"
    admin = connect(**admin_conninfo, autocommit=True, connect_timeout=connect_timeout)
    try:
        # A copied cache entry or a killed run may have left one behind.
        recreate_database(admin, name)
        info = {**admin_conninfo, "dbname": name}

        def reconnect() -> Any:
            return connect(**info, connect_timeout=connect_timeout)

        conn = reconnect()
    except BaseException:
        with contextlib.suppress(Exception):
            drop_database(admin, name)
        admin.close()
        raise
    return ModelsDatabase(name, admin, conn, reconnect)

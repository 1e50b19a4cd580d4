"""``--flask-app module:create_app``: env.py files that read everything from the Flask app.

Flask-Migrate's env.py takes the engine (so the URL) and the metadata from ``current_app``:
under plain Alembic it stops with "Working outside of application context", and inside the
app it would migrate the app's own database. So the worker loads the app the way ``flask``
does (``flask.cli.ScriptInfo``), with Flask-SQLAlchemy's ``init_app`` wrapped so that the
app's ``SQLALCHEMY_DATABASE_URI`` and each of its ``SQLALCHEMY_BINDS`` point at a scratch
database before the extension builds its engines, and runs env.py inside the app context.
The connection guard stays in place: an app that connects anywhere else is refused.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from migration_check.protocol import WorkerRequest
from migration_check.worker.admin import connect_admin, create_database, drop_databases
from migration_check.worker.diagnose import Failure, one_line, origin_in_project
from migration_check.worker.layouts.multidb import scratch_name

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["FlaskApp"]


class FlaskApp:
    """The app named by ``--flask-app`` and the scratch databases its binds get."""

    def __init__(self, req: WorkerRequest) -> None:
        """Open the maintenance connection now, before the guard, for the binds' databases."""
        self.spec = str(req.flask_app)
        self.req = req
        self.created: list[str] = []
        self.directory: str | None = None
        self.admin = connect_admin(req)

    @contextlib.contextmanager
    def context(self, cfg: Config) -> Iterator[None]:
        """Load the app with its databases redirected, and keep its app context pushed."""
        app = self._load()
        if self.req.start_from is None:
            self._refuse_tables_made_by_the_app()
        migrate = app.extensions.get("migrate")
        if migrate is not None:
            self.directory = os.path.abspath(str(migrate.directory))
            if cfg.get_alembic_option("script_location") is None:
                # Flask-Migrate sets it at run time, from Migrate(directory=...).
                cfg.set_main_option("script_location", self.directory)
            # @migrate.configure callbacks may adjust the Config, as under `flask db`.
            migrate.migrate.call_configure_callbacks(cfg)
        with app.app_context():
            yield

    def _refuse_tables_made_by_the_app(self) -> None:
        """Tables before the upgrade: the factory built them (``db.create_all()``).

        The first revision would then fail with "already exists", blaming the history.
        """
        from sqlalchemy import create_engine, inspect
        from sqlalchemy.pool import NullPool

        engine = create_engine(self.req.sync_url, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                tables = inspect(conn).get_table_names()
        finally:
            engine.dispose()
        if tables:
            raise Failure(
                "config",
                f"--flask-app {self.spec}: creating the app created tables "
                f"({', '.join(sorted(tables)[:3])}) before any revision ran (db.create_all() "
                "in the factory?); the check needs the database the migrations build: create "
                "tables outside the factory, e.g. in a CLI command",
            )

    def _load(self) -> Any:
        from flask.cli import NoAppException, ScriptInfo

        restore = self._redirect_flask_sqlalchemy()
        try:
            app = ScriptInfo(app_import_path=self.spec, set_debug_flag=False).load_app()
        except Failure:
            raise
        except NoAppException as exc:
            raise Failure(
                "config",
                f"--flask-app {self.spec}: {one_line(exc)}; pass module:factory (a function "
                "returning the app) or module:app",
            ) from exc
        except Exception as exc:
            raise Failure(
                "config",
                f"--flask-app {self.spec}: loading the app raised {type(exc).__name__} at "
                f"{origin_in_project(exc)}: {one_line(exc)}",
            ) from exc
        finally:
            restore()
        return app

    def _redirect_flask_sqlalchemy(self) -> Any:
        """Wrap ``SQLAlchemy.init_app``: point the app's databases at scratch databases first."""
        try:
            from flask_sqlalchemy import SQLAlchemy
        except ImportError:  # an app without Flask-SQLAlchemy: its env.py reads DATABASE_URL
            return lambda: None
        original = SQLAlchemy.init_app
        owner = self

        def init_app(ext: Any, app: Any, *args: Any, **kwargs: Any) -> Any:
            owner._point_config(app.config)
            return original(ext, app, *args, **kwargs)

        SQLAlchemy.init_app = init_app  # type: ignore[method-assign,assignment]

        def restore() -> None:
            SQLAlchemy.init_app = original  # type: ignore[method-assign]

        return restore

    def _point_config(self, config: Any) -> None:
        req = self.req
        config["SQLALCHEMY_DATABASE_URI"] = _with_database(
            req.url, config.get("SQLALCHEMY_DATABASE_URI"), req.database
        )
        binds = dict(config.get("SQLALCHEMY_BINDS") or {})
        for key, value in binds.items():
            if key is None:
                binds[key] = config["SQLALCHEMY_DATABASE_URI"]
                continue
            scratch = self._bind_database(str(key))
            if isinstance(value, dict):
                binds[key] = {**value, "url": _with_database(req.url, value.get("url"), scratch)}
            else:
                binds[key] = _with_database(req.url, value, scratch)
        config["SQLALCHEMY_BINDS"] = binds

    def _bind_database(self, key: str) -> str:
        """A scratch database of its own for a bind (a separate database in production)."""
        taken = {self.req.database, *self.created}
        scratch = scratch_name(self.req.database, f"bind_{key}", taken)
        self.created.append(scratch)  # before CREATE: close() must see a lost reply's database
        create_database(self.admin, scratch, throwaway=self.req.throwaway_server)
        self.req.allowed.databases.append(scratch)
        return scratch

    def close(self) -> None:
        drop_databases(self.admin, self.created)


def _with_database(scratch_url: str, configured: Any, database: str) -> str:
    """The scratch database's URL, with the driver the app configured when it is PostgreSQL."""
    from sqlalchemy.engine import make_url

    url = make_url(scratch_url)
    with contextlib.suppress(Exception):
        driver = make_url(str(configured)).drivername if configured else ""
        if driver.startswith("postgresql"):
            url = url.set(drivername=driver)
    return url.set(database=database).render_as_string(hide_password=False)

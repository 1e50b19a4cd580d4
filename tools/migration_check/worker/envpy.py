"""Running the project's env.py once, as an Alembic command would, with the checker's database.

Every phase that needs env.py (the upgrade, the autogenerate comparison, the revision writer)
goes through ``run_env``, so each failure is named the same way wherever it happens.
"""

from __future__ import annotations

import argparse
import inspect
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from migration_check.protocol import WorkerRequest
from migration_check.worker.diagnose import Failure, classify, env_py, one_line

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy.engine import Connection

__all__ = [
    "alembic_config",
    "databases",
    "handed_connection",
    "no_script_location",
    "refuse_empty_metadata",
    "run_env",
    "toml_file_name",
]


def _read_toml(cfg: Config, toml: str) -> str | None:
    """``script_location`` from the ini or ``[tool.alembic]``, the TOML parsed now."""
    import tomllib

    from alembic.util import CommandError

    try:
        # Parsed now, whatever the ini holds: Alembic reads [tool.alembic] for other keys
        # (version_locations, prepend_sys_path) later, where a TOML error is no one line.
        cfg.toml_alembic_config  # noqa: B018
        location: str | None = cfg.get_alembic_option("script_location")
    except (tomllib.TOMLDecodeError, CommandError) as exc:
        raise Failure(
            "config", f"{os.path.relpath(toml)}: [tool.alembic]: {one_line(exc)}"
        ) from exc
    return location


def toml_file_name(cfg: Config) -> str | None:
    """The pyproject.toml Alembic reads ``[tool.alembic]`` from (None before Alembic 1.16)."""
    name: str | None = getattr(cfg, "toml_file_name", None)
    return name


def alembic_config(req: WorkerRequest, url: str) -> Config:
    """The project's configuration as ``alembic`` run from the ini's directory would read it.

    Alembic's own ``Config`` reads it (the ini, and ``[tool.alembic]`` of the pyproject.toml
    beside it, as ``alembic -c`` would from that directory): the checker never interprets the
    files itself, so every layout ``alembic init`` creates is read the same way.
    """
    import configparser

    from alembic.config import Config

    ini = req.config
    cmd_opts = argparse.Namespace(
        x=list(req.x_args) or None,
        autogenerate=True,
        config=ini,
        name=req.name,
        raiseerr=True,
    )
    toml = os.path.join(os.path.dirname(ini), "pyproject.toml")
    # [tool.alembic] arrived in Alembic 1.16; an older Alembic reads the ini alone, as it would.
    takes_toml = "toml_file" in inspect.signature(Config.__init__).parameters
    extra: dict[str, Any] = {"toml_file": toml} if os.path.isfile(toml) and takes_toml else {}
    cfg = Config(ini, ini_section=req.name, cmd_opts=cmd_opts, **extra)
    shown = os.path.relpath(ini)
    try:
        cfg.file_config  # noqa: B018 (read now, so a broken file is named here)
    except configparser.Error as exc:
        raise Failure(
            "config", f"{shown}: not a valid ini file ({one_line(exc)})", detail=str(exc)
        ) from exc
    if not takes_toml:
        script_location = cfg.get_main_option("script_location")
    else:
        script_location = _read_toml(cfg, toml)
    # A Flask-Migrate project sets it at run time, from the app (worker/layouts/flaskapp.py).
    if script_location is None and not req.flask_app:
        raise Failure("config", no_script_location(cfg))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    # The project's driver, kept: an async env.py is handed a connection on it (run_env).
    cfg.attributes["check_migrations.url"] = url
    return cfg


def no_script_location(cfg: Config) -> str:
    """The one line for a configuration that names no script_location anywhere."""
    shown = os.path.relpath(str(cfg.config_file_name))
    name = cfg.config_ini_section
    if not cfg.file_config.has_section(name):
        sections = ", ".join(
            s
            for s in cfg.file_config.sections()
            if not s.startswith(("logger", "handler", "formatter", "post_write"))
        )
        return (
            f"{shown}: no [{name}] section (sections: {sections or 'none'}); "
            "pass the section holding script_location with --name"
        )
    toml = " nor in [tool.alembic] of pyproject.toml" if toml_file_name(cfg) else ""
    if _reads_flask_app(os.path.dirname(os.path.abspath(str(cfg.config_file_name)))):
        # Flask-Migrate's alembic.ini has none: `flask db` sets it from the app.
        return (
            f"{shown}: no script_location in [{name}]{toml}, and the env.py beside it reads "
            "the Flask app (Flask-Migrate): pass --flask-app module:create_app"
        )
    return (
        f"{shown}: no script_location in [{name}]{toml}; set it to the directory holding "
        "env.py (as `alembic init` writes it)"
    )


def _reads_flask_app(directory: str) -> bool:
    try:
        with open(os.path.join(directory, "env.py"), encoding="utf-8") as fh:
            return "current_app" in fh.read()
    except (OSError, UnicodeDecodeError):
        return False


def databases(cfg: Config) -> list[str]:
    """The ``databases`` of a multidb project (``alembic init -t multidb``); empty otherwise."""
    import re

    if not cfg.file_config.has_section(cfg.config_ini_section):
        return []
    raw = cfg.get_main_option("databases", "") or ""
    return [name for name in re.split(r",\s*", raw.strip()) if name]


@contextmanager
def handed_connection(cfg: Config, url: str) -> Iterator[Connection]:
    """A connection for env.py's ``config.attributes["connection"]``, committed on success.

    No transaction is open when env.py gets it, as with the ``engine.connect()`` env.py makes
    under ``alembic upgrade``: Alembic's ``begin_transaction()`` then begins one itself, so
    ``autocommit_block()`` works, and env.py may commit work of its own before configuring.
    Whatever env.py leaves uncommitted is committed afterwards, as the checker always did.
    """
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn, _handed(cfg, conn):
            yield conn
    finally:
        engine.dispose()


@contextmanager
def _handed(cfg: Config, conn: Connection) -> Iterator[None]:
    cfg.attributes["connection"] = conn
    try:
        yield
        if conn.in_transaction():
            conn.commit()
    finally:
        cfg.attributes.pop("connection", None)


# Drivers SQLAlchemy can drive from asyncio; psycopg (3) is either, by the engine's kind.
_ASYNC_DRIVERS = ("asyncpg", "psycopg_async", "psycopg")


def _async_url(cfg: Config, url: str, script: ScriptDirectory) -> str | None:
    """The scratch database's URL on the project's async driver, for an async sharing env.py.

    That is an env.py that takes ``config.attributes["connection"]`` (the cookbook's sharing
    recipe) and is async: the project's URL names an asyncio-only driver, or env.py calls
    ``run_sync``, the only way Alembic's async template and cookbook run migrations (and the
    sign that a ``postgresql+psycopg`` URL goes to ``create_async_engine``). Any other env.py
    runs outside an event loop, as under ``alembic``: one that ignores the handed connection
    may drive its own loop any way it likes.
    """
    project = str(cfg.attributes.get("check_migrations.url") or "")
    scheme = project.split("://", 1)[0]
    driver = scheme.split("+", 1)[1] if "+" in scheme else ""
    takes, calls_run_sync = _reads_connection(os.path.join(script.dir, "env.py"))
    if not takes or (driver not in ("asyncpg", "psycopg_async") and not calls_run_sync):
        return None
    if driver not in _ASYNC_DRIVERS:
        scheme = "postgresql+psycopg"  # a dependency of the checker, and async-capable
    return scheme + url[url.index("://") :]


def _reads_connection(path: str) -> tuple[bool, bool]:
    """Does env.py read ``attributes["connection"]`` (or ``.get("connection")``), call run_sync?

    Read from its syntax tree: a comment or a string naming either is not code.
    """
    import ast

    try:
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read(), path)
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return False, False  # running env.py names what is wrong with it

    def is_attributes(node: ast.expr) -> bool:
        return isinstance(node, ast.Attribute) and node.attr == "attributes"

    def is_connection(node: ast.expr) -> bool:
        return isinstance(node, ast.Constant) and node.value == "connection"

    takes = calls_run_sync = False
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and is_attributes(node.value):
            takes = takes or is_connection(node.slice)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            func = node.func
            if func.attr == "get" and is_attributes(func.value) and node.args:
                takes = takes or is_connection(node.args[0])
        if isinstance(node, ast.Attribute) and node.attr == "run_sync":
            calls_run_sync = True
    return takes, calls_run_sync


def _run_async(cfg: Config, url: str, run: Callable[[], None]) -> None:
    """``run()`` inside ``AsyncConnection.run_sync``, env.py handed that sync proxy.

    What the cookbook's caller does for an async env.py: the proxy is a ``Connection`` whose
    dialect is async, so a revision's ``op.run_async`` can reach the ``AsyncConnection``.
    Should env.py call ``asyncio.run`` all the same (the recipe does when it gets no
    connection), Python would refuse it inside a running loop: while env.py runs,
    ``asyncio.run`` awaits its coroutine on this loop instead (the greenlet ``run_sync``
    provides is what lets it wait).
    """
    import asyncio

    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool
    from sqlalchemy.util import await_only

    def inside(conn: Connection) -> None:
        original = asyncio.run

        def run_here(main: Any, **_kw: Any) -> Any:
            return await_only(main)

        asyncio.run = run_here
        try:
            with _handed(cfg, conn):
                run()
        finally:
            asyncio.run = original

    async def main() -> None:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                await conn.run_sync(inside)
        finally:
            await engine.dispose()

    asyncio.run(main())


def run_env(
    cfg: Config,
    script: ScriptDirectory,
    url: str,
    fn: Callable[[Any, MigrationContext], Any],
    *,
    phase: str,
    state: dict[str, Any] | None = None,
    **context_kw: Any,
) -> None:
    """Run env.py once with ``fn`` as the phase's function and ``context_kw`` (as an Alembic
    command would: upgrade, compare, the writer and the round trip all come through here),
    naming any failure.

    ``state``: what the phase records while it runs; ``state["current"]``, the revision whose
    code is running, names it in a failure's message (diagnose.classify). The runner notes
    whether ``fn`` was called: env.py that never reaches ``run_migrations()`` would otherwise
    look like a successful no-op.
    """
    from alembic.runtime.environment import EnvironmentContext

    state = {} if state is None else state
    state["called"] = False

    def called(rev: Any, context: MigrationContext) -> Any:
        state["called"] = True
        return fn(rev, context)

    def run() -> None:
        with EnvironmentContext(cfg, script, as_sql=False, fn=called, **context_kw):
            script.run_env()

    async_url = _async_url(cfg, url, script)
    try:
        if async_url is not None:
            _run_async(cfg, async_url, run)
        else:
            with handed_connection(cfg, url):
                run()
    except Failure:
        raise
    except BaseException as exc:
        # A phase may hand over to another within one run (a folded comparison).
        failure = classify(exc, state, script, phase=state.get("phase", phase))
        if "outside of application context" in failure.message:
            failure.message += (
                "; this env.py reads the Flask app (Flask-Migrate): pass --flask-app "
                "module:create_app"
            )
        raise failure from exc
    if not state["called"]:
        raise Failure(
            "config",
            f"{env_py(script)}: env.py never called context.run_migrations(); "
            "call it in online mode (see Alembic's env.py template)",
        )


def refuse_empty_metadata(context: MigrationContext, script: ScriptDirectory) -> None:
    """No tables in target_metadata while the migrated database has some: a setup fault.

    Autogenerate would report every table as removed; the usual cause is that the module
    defining the models was never imported (a Flask app that imports them in a view, an
    env.py that imports only the declarative base), so say that instead.
    """
    from sqlalchemy import inspect

    metadata = context.opts.get("target_metadata")
    if metadata is None:
        return  # Alembic's own "does not provide a MetaData" error follows
    metadatas = list(metadata) if isinstance(metadata, (list, tuple)) else [metadata]
    if any(m.tables for m in metadatas) or context.connection is None:
        return
    version_table = context.version_table
    tables = sorted(
        t
        for t in inspect(context.connection).get_table_names(schema=context.version_table_schema)
        if t != version_table
    )
    if not tables:
        return
    shown = ", ".join(tables[:3]) + (", ..." if len(tables) > 3 else "")
    raise Failure(
        "config",
        f"{_metadata_source(script)} holds no tables, while the migrated database has "
        f"{len(tables)} ({shown}): the models are probably not imported; import every model "
        "module before env.py hands target_metadata to context.configure()",
    )


def _metadata_source(script: ScriptDirectory) -> str:
    """Where env.py gets its metadata: its ``target_metadata`` line, quoted."""
    path = env_py(script)
    try:
        with open(os.path.join(script.dir, "env.py"), encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return f"{path}: target_metadata"
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if text.startswith("target_metadata") and "=" in text and "None" not in text:
            return f"{path}:{number}: target_metadata ({text})"
    for number, line in enumerate(lines, 1):
        if "target_metadata=" in line.replace(" ", ""):
            return f"{path}:{number}: target_metadata ({line.strip().rstrip(',')})"
    return f"{path}: target_metadata"

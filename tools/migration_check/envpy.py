"""Running the project's env.py once, as an Alembic command would, with the checker's database.

Every phase that needs env.py (the upgrade, the autogenerate comparison, the revision writer)
goes through ``run_env``, so each failure is named the same way wherever it happens.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from migration_check.diagnose import Failure, classify, env_py, one_line

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from sqlalchemy.engine import Connection

__all__ = ["alembic_config", "databases", "handed_connection", "run_env"]


def alembic_config(req: dict[str, Any], url: str) -> Config:
    """The project's configuration as ``alembic`` run from the ini's directory would read it.

    Alembic's own ``Config`` reads it (the ini, and ``[tool.alembic]`` of the pyproject.toml
    beside it, as ``alembic -c`` would from that directory): the checker never interprets the
    files itself, so every layout ``alembic init`` creates is read the same way.
    """
    import configparser
    import tomllib

    from alembic.config import Config
    from alembic.util import CommandError

    ini = req["config"]
    cmd_opts = argparse.Namespace(
        x=list(req.get("x_args") or []) or None,
        autogenerate=True,
        config=ini,
        name=req["name"],
        raiseerr=True,
    )
    toml = os.path.join(os.path.dirname(ini), "pyproject.toml")
    cfg = Config(
        ini,
        ini_section=req["name"],
        toml_file=toml if os.path.isfile(toml) else None,
        cmd_opts=cmd_opts,
    )
    shown = os.path.relpath(ini)
    try:
        cfg.file_config  # noqa: B018 (read now, so a broken file is named here)
    except configparser.Error as exc:
        raise Failure(
            "config", f"{shown}: not a valid ini file ({one_line(exc)})", detail=str(exc)
        ) from exc
    try:
        script_location = cfg.get_alembic_option("script_location")
    except (tomllib.TOMLDecodeError, CommandError) as exc:
        raise Failure(
            "config", f"{os.path.relpath(toml)}: [tool.alembic]: {one_line(exc)}"
        ) from exc
    if script_location is None:
        raise Failure("config", _no_script_location(cfg, shown, req["name"]))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _no_script_location(cfg: Config, shown: str, name: str) -> str:
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
    toml = " nor in [tool.alembic] of pyproject.toml" if cfg.toml_file_name else ""
    return (
        f"{shown}: no script_location in [{name}]{toml}; set it to the directory holding "
        "env.py (as `alembic init` writes it)"
    )


def databases(cfg: Config) -> list[str]:
    """The ``databases`` of a multidb project (``alembic init -t multidb``); empty otherwise."""
    import re

    raw = cfg.get_main_option("databases", "") or ""
    return [name for name in re.split(r",\s*", raw.strip()) if name]


@contextmanager
def handed_connection(cfg: Config, url: str) -> Iterator[Connection]:
    """A connection for env.py's ``config.attributes["connection"]``, committed on success."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            try:
                yield conn
            finally:
                cfg.attributes.pop("connection", None)
    finally:
        engine.dispose()


def run_env(
    cfg: Config,
    script: ScriptDirectory,
    url: str,
    state: dict[str, Any],
    *,
    phase: str,
    **context_kw: Any,
) -> None:
    """Run env.py once with ``context_kw`` (as an Alembic command would), naming any failure.

    ``state["called"]`` is set by the phase's ``fn``: env.py that never reaches
    ``run_migrations()`` would otherwise look like a successful no-op.
    """
    from alembic.runtime.environment import EnvironmentContext

    try:
        with (
            handed_connection(cfg, url),
            EnvironmentContext(cfg, script, as_sql=False, **context_kw),
        ):
            script.run_env()
    except Failure:
        raise
    except BaseException as exc:
        raise classify(exc, state, script, phase=phase) from exc
    if not state["called"]:
        raise Failure(
            "config",
            f"{env_py(script)}: env.py never called context.run_migrations(); "
            "call it in online mode (see Alembic's env.py template)",
        )

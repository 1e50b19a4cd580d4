"""Running the project's env.py once, as an Alembic command would, with the checker's database.

Every phase that needs env.py (the upgrade, the autogenerate comparison, the revision writer)
goes through ``run_env``, so each failure is named the same way wherever it happens.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from migration_check.diagnose import Failure, classify, env_py

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from sqlalchemy.engine import Connection

__all__ = ["alembic_config", "handed_connection", "run_env"]


def alembic_config(req: dict[str, Any], url: str) -> Config:
    from alembic.config import Config

    cmd_opts = argparse.Namespace(
        x=list(req.get("x_args") or []) or None,
        autogenerate=True,
        config=req["config"],
        name=req["name"],
        raiseerr=True,
    )
    cfg = Config(req["config"], ini_section=req["name"], cmd_opts=cmd_opts)
    if not cfg.file_config.has_section(req["name"]):
        raise Failure(
            "config",
            f"{req['config']}: no [{req['name']}] section; pass the section holding "
            "script_location with --name",
        )
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


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

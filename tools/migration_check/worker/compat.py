"""The library versions real projects run: SQLAlchemy 1.4 and 2.x, Alembic from 1.11.

What an old version cannot do is degraded with one line, never guessed at: SQLAlchemy 1.4 has no
psycopg 3 dialect, so the connection handed to env.py goes through psycopg2, and the catalog
comparison (which wraps the checker's psycopg 3 connection in an engine) is skipped
(worker/catalog/phase.py says so on stderr).
"""

from __future__ import annotations

import importlib.util

from migration_check.worker.diagnose import Failure

__all__ = ["sqlalchemy_major", "sync_url"]


def sqlalchemy_major() -> int:
    import sqlalchemy

    return int(sqlalchemy.__version__.split(".", 1)[0])


def sync_url(url: str) -> str:
    """The checker's synchronous URL, with a driver the installed SQLAlchemy has."""
    prefix = "postgresql+psycopg://"
    if not url.startswith(prefix) or sqlalchemy_major() >= 2:
        return url
    if importlib.util.find_spec("psycopg2") is None:
        import sqlalchemy

        raise Failure(
            "config",
            f"SQLAlchemy {sqlalchemy.__version__} has no psycopg 3 dialect, and the checker "
            "hands env.py a synchronous connection through psycopg2, which is not installed: "
            "add psycopg2-binary (or psycopg2) to the environment the checker runs in",
        )
    return "postgresql+psycopg2://" + url[len(prefix) :]

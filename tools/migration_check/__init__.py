"""check-migrations: fail when SQLAlchemy models changed without a matching Alembic revision."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]

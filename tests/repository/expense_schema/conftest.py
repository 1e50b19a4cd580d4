"""The repository's own Alembic set-up on a scratch database, and a seeded schema at head.

Each test gets its own empty database (``scratch_url``) and drives the repository's own
``alembic.ini`` and ``alembic/env.py`` through ``alembic.command``, as a deployment would.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from alembic.config import Config
from sqlalchemy import (
    Engine,
    create_engine,
)
from sqlalchemy.pool import NullPool

from alembic import command
from tests.helpers.expense_schema import (
    Seed,
    insert_row,
    valid_row,
)
from tests.helpers.paths import REPO


@pytest.fixture
def alembic_config(scratch_url: str, monkeypatch: pytest.MonkeyPatch) -> Config:
    """The repository's alembic.ini, with env.py pointed at the scratch database."""
    monkeypatch.setenv("DATABASE_URL", scratch_url)
    config = Config(str(REPO / "alembic.ini"))
    # Leave pytest's logging alone (the cookbook switch env.py honours).
    config.attributes["configure_logger"] = False
    return config


@pytest.fixture
def engine(scratch_url: str) -> Iterator[Engine]:
    """A synchronous engine on the scratch database, for looking at what migrations did."""
    engine = create_engine(scratch_url, poolclass=NullPool)
    yield engine
    engine.dispose()


@pytest.fixture
def seeded(alembic_config: Config, engine: Engine) -> Seed:
    """The schema at head, holding one user with a default account, a category and an expense."""
    command.upgrade(alembic_config, "head")
    with engine.begin() as conn:
        user_id = insert_row(
            conn,
            "users",
            {"email": "alice@example.org", "display_name": "Alice", "default_currency": "EUR"},
        )
        account_id = insert_row(
            conn,
            "accounts",
            {
                "user_id": user_id,
                "name": "Wallet",
                "kind": "cash",
                "currency": "EUR",
                "is_default": True,
            },
        )
        category_id = insert_row(conn, "categories", {"user_id": user_id, "name": "Food"})
        seed = Seed(user_id, account_id, category_id, uuid.UUID(int=0))
        expense_id = insert_row(conn, "expenses", valid_row("expenses", seed))
    return Seed(user_id, account_id, category_id, expense_id)

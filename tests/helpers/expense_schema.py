"""The Expense Manager schema's tests' readers of a migrated database, and the rows they insert."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import psycopg
from sqlalchemy import (
    Connection,
    Engine,
    insert,
    inspect,
    text,
)
from sqlalchemy.exc import IntegrityError

from expense_models import PaymentMethod, metadata

TABLES = metadata.tables


def table_names(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def enum_names(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(text("SELECT typname FROM pg_type WHERE typtype = 'e'")).scalars())


def public_relations(engine: Engine) -> set[str]:
    """Tables, indexes, sequences and views in the public schema."""
    with engine.connect() as conn:
        query = text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public'"
        )
        return set(conn.execute(query).scalars())


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()


@dataclass(frozen=True)
class Seed:
    """One user with a default account, a top-level category and an expense."""

    user_id: uuid.UUID
    account_id: uuid.UUID
    category_id: uuid.UUID
    expense_id: uuid.UUID


def insert_row(conn: Connection, table: str, values: Mapping[str, Any]) -> uuid.UUID:
    result = conn.execute(insert(TABLES[table]).returning(TABLES[table].c.id), dict(values))
    row_id: uuid.UUID = result.scalar_one()
    return row_id


def valid_row(table: str, seed: Seed) -> dict[str, Any]:
    """A row that the database accepts; each violation below changes exactly one thing."""
    rows: dict[str, dict[str, Any]] = {
        "users": {"email": "bob@example.org", "display_name": "Bob", "default_currency": "EUR"},
        "accounts": {
            "user_id": seed.user_id,
            "name": "Savings",
            "kind": "savings",
            "currency": "EUR",
        },
        "categories": {"user_id": seed.user_id, "name": "Travel"},
        "expenses": {
            "user_id": seed.user_id,
            "account_id": seed.account_id,
            "category_id": seed.category_id,
            "amount": Decimal("12.50"),
            "currency": "EUR",
            "payment_method": PaymentMethod.CARD,
            "spent_at": datetime(2025, 3, 14, 12, 30, tzinfo=UTC),
        },
        "tags": {"user_id": seed.user_id, "name": "holiday"},
        "budgets": {
            "user_id": seed.user_id,
            "name": "Groceries March",
            "amount": Decimal("400.00"),
            "currency": "EUR",
            "period_start": date(2025, 3, 1),
            "period_end": date(2025, 4, 1),
            "alert_threshold": Decimal("0.80"),
        },
        "recurring_expense_rules": {
            "user_id": seed.user_id,
            "account_id": seed.account_id,
            "amount": Decimal("950.00"),
            "currency": "EUR",
            "payment_method": PaymentMethod.DIRECT_DEBIT,
            "description": "Rent",
            "frequency": "monthly",
            "starts_on": date(2025, 1, 1),
            "ends_on": date(2025, 12, 31),
        },
        "attachments": {
            "expense_id": seed.expense_id,
            "file_name": "receipt.jpg",
            "content_type": "image/jpeg",
            "size_bytes": 48_213,
            "sha256": "0" * 64,
            "storage_key": "receipts/2025/03/receipt.jpg",
        },
    }
    return rows[table]


def violated_constraint(error: IntegrityError) -> str | None:
    assert isinstance(error.orig, psycopg.Error)
    return error.orig.diag.constraint_name

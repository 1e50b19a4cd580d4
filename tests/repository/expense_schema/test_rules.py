"""The rules the Expense Manager database enforces: CHECKs, uniques, enums, foreign keys.

Each test starts from the schema at head holding one user, account, category and expense
(``seeded``, conftest.py), and changes exactly one thing of a valid row.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import (
    Engine,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import DataError, IntegrityError

from tests.helpers.expense_schema import (
    TABLES,
    Seed,
    insert_row,
    valid_row,
    violated_constraint,
)


def test_valid_rows_are_accepted(engine: Engine, seeded: Seed) -> None:
    """The baseline of the violation cases: unchanged, every row goes in."""
    with engine.begin() as conn:
        for table in TABLES:
            if table != "expense_tags":
                insert_row(conn, table, valid_row(table, seeded))


_CHECK_VIOLATIONS: list[tuple[str, dict[str, Any], str]] = [
    ("expenses", {"amount": Decimal("0.00")}, "ck_expenses_amount_positive"),
    ("expenses", {"amount": Decimal("-3.20")}, "ck_expenses_amount_positive"),
    ("expenses", {"currency": "eur"}, "ck_expenses_currency_iso_4217"),
    ("expenses", {"currency": "E1"}, "ck_expenses_currency_iso_4217"),
    ("users", {"email": "Bob@Example.org"}, "ck_users_email_lowercase"),
    ("users", {"default_currency": "usd"}, "ck_users_default_currency_iso_4217"),
    ("accounts", {"kind": "crypto"}, "ck_accounts_kind_known"),
    ("accounts", {"currency": "Eur"}, "ck_accounts_currency_iso_4217"),
    ("categories", {"color": "#FFF000"}, "ck_categories_color_hex"),
    ("tags", {"name": "   "}, "ck_tags_name_not_blank"),
    ("budgets", {"period_end": date(2025, 2, 28)}, "ck_budgets_period_end_after_start"),
    ("budgets", {"period_end": date(2025, 3, 1)}, "ck_budgets_period_end_after_start"),
    ("budgets", {"amount": Decimal("0")}, "ck_budgets_amount_positive"),
    ("budgets", {"alert_threshold": Decimal("1.50")}, "ck_budgets_alert_threshold_fraction"),
    (
        "recurring_expense_rules",
        {"ends_on": date(2024, 12, 31)},
        "ck_recurring_expense_rules_ends_on_after_starts_on",
    ),
    (
        "recurring_expense_rules",
        {"interval_count": 0},
        "ck_recurring_expense_rules_interval_count_positive",
    ),
    (
        "recurring_expense_rules",
        {"frequency": "hourly"},
        "ck_recurring_expense_rules_frequency_known",
    ),
    ("attachments", {"size_bytes": 0}, "ck_attachments_size_bytes_positive"),
    ("attachments", {"sha256": "not-a-digest".ljust(64, "x")}, "ck_attachments_sha256_hex"),
]


@pytest.mark.parametrize(
    ("table", "change", "constraint"),
    _CHECK_VIOLATIONS,
    ids=[
        f"{table}.{column}={value}"
        for table, change, _ in _CHECK_VIOLATIONS
        for column, value in change.items()
    ],
)
def test_check_constraints_reject_bad_rows(
    engine: Engine, seeded: Seed, table: str, change: dict[str, Any], constraint: str
) -> None:
    """Each named CHECK turns away the value it exists to keep out."""
    row = valid_row(table, seeded) | change
    with pytest.raises(IntegrityError) as caught, engine.begin() as conn:
        insert_row(conn, table, row)
    assert violated_constraint(caught.value) == constraint


def test_category_cannot_be_its_own_parent(engine: Engine, seeded: Seed) -> None:
    categories = TABLES["categories"]
    with pytest.raises(IntegrityError) as caught, engine.begin() as conn:
        conn.execute(
            update(categories)
            .where(categories.c.id == seeded.category_id)
            .values(parent_id=seeded.category_id)
        )
    assert violated_constraint(caught.value) == "ck_categories_not_own_parent"


def test_payment_method_is_a_native_enum(engine: Engine, seeded: Seed) -> None:
    """The ENUM type itself rejects an unknown method (plain SQL, past the ORM's validation)."""
    with (
        pytest.raises(DataError, match="invalid input value for enum payment_method"),
        engine.begin() as conn,
    ):
        conn.execute(
            text("UPDATE expenses SET payment_method = 'cheque' WHERE id = :id"),
            {"id": seeded.expense_id},
        )


@pytest.mark.parametrize(
    ("table", "change", "constraint"),
    [
        ("users", {"email": "alice@example.org"}, "uq_users_email"),
        ("accounts", {"name": "Wallet"}, "uq_accounts_user_id_name"),
        # NULLS NOT DISTINCT: two top-level categories (parent_id NULL) may not share a name.
        ("categories", {"name": "Food"}, "uq_categories_user_id_parent_id_name"),
    ],
)
def test_unique_constraints_reject_duplicates(
    engine: Engine, seeded: Seed, table: str, change: dict[str, Any], constraint: str
) -> None:
    row = valid_row(table, seeded) | change
    with pytest.raises(IntegrityError) as caught, engine.begin() as conn:
        insert_row(conn, table, row)
    assert violated_constraint(caught.value) == constraint


def test_tag_names_are_unique_per_user_only(engine: Engine, seeded: Seed) -> None:
    with engine.begin() as conn:
        insert_row(conn, "tags", valid_row("tags", seeded))
        other_user = insert_row(conn, "users", valid_row("users", seeded))
        insert_row(conn, "tags", valid_row("tags", seeded) | {"user_id": other_user})
    with pytest.raises(IntegrityError) as caught, engine.begin() as conn:
        insert_row(conn, "tags", valid_row("tags", seeded))
    assert violated_constraint(caught.value) == "uq_tags_user_id_name"


def test_one_default_account_per_user(engine: Engine, seeded: Seed) -> None:
    """The partial unique index: any number of accounts, but one default per user."""
    with engine.begin() as conn:
        insert_row(conn, "accounts", valid_row("accounts", seeded) | {"name": "Giro"})
        insert_row(conn, "accounts", valid_row("accounts", seeded) | {"name": "Card"})
        other_user = insert_row(conn, "users", valid_row("users", seeded))
        insert_row(
            conn,
            "accounts",
            valid_row("accounts", seeded) | {"user_id": other_user, "is_default": True},
        )
    with pytest.raises(IntegrityError) as caught, engine.begin() as conn:
        insert_row(conn, "accounts", valid_row("accounts", seeded) | {"is_default": True})
    assert violated_constraint(caught.value) == "uq_accounts_user_id_default"


def test_account_with_expenses_cannot_be_deleted(engine: Engine, seeded: Seed) -> None:
    """ON DELETE RESTRICT: history is kept; an account with expenses must be archived."""
    accounts = TABLES["accounts"]
    with pytest.raises(IntegrityError) as caught, engine.begin() as conn:
        conn.execute(delete(accounts).where(accounts.c.id == seeded.account_id))
    assert violated_constraint(caught.value) == "fk_expenses_account_id_accounts"


def test_deleting_a_category_keeps_its_expenses(engine: Engine, seeded: Seed) -> None:
    """ON DELETE SET NULL on expenses, ON DELETE CASCADE down the category tree."""
    categories, expenses = TABLES["categories"], TABLES["expenses"]
    with engine.begin() as conn:
        child = insert_row(
            conn,
            "categories",
            {"user_id": seeded.user_id, "parent_id": seeded.category_id, "name": "Snacks"},
        )
        conn.execute(delete(categories).where(categories.c.id == seeded.category_id))

        assert conn.execute(select(categories.c.id).where(categories.c.id == child)).all() == []
        category_of_expense = conn.execute(
            select(expenses.c.category_id).where(expenses.c.id == seeded.expense_id)
        ).scalar_one()
        assert category_of_expense is None


def test_deleting_a_user_deletes_everything_they_own(engine: Engine, seeded: Seed) -> None:
    """ON DELETE CASCADE from users reaches every table, through the RESTRICTed account too."""
    with engine.begin() as conn:
        for table in TABLES:
            if table != "expense_tags":
                insert_row(conn, table, valid_row(table, seeded))
        tag_id = conn.execute(select(TABLES["tags"].c.id)).scalar_one()
        conn.execute(
            insert(TABLES["expense_tags"]), {"expense_id": seeded.expense_id, "tag_id": tag_id}
        )
        conn.execute(delete(TABLES["users"]).where(TABLES["users"].c.id == seeded.user_id))

        for name, each in TABLES.items():
            count = conn.execute(select(func.count()).select_from(each)).scalar_one()
            # The other user from valid_row("users") is the only row left anywhere.
            assert count == (1 if name == "users" else 0), name

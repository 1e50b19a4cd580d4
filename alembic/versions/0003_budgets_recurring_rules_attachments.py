"""Budgets, recurring expense rules and receipt attachments.

Three features of the spring release: spending limits per period (``budgets``), templates from
which a scheduler creates expenses (``recurring_expense_rules``, reusing the ``payment_method``
type from 0001, which it must neither create nor drop), and receipts kept as ``attachments``.
Expenses learn which rule generated them through the new ``expenses.recurring_rule_id``.

Revision ID: 0003
Revises: 0002
Create Date: 2025-04-22 10:15:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "budgets",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column(
            "category_id",
            sa.Uuid(),
            nullable=True,
            comment="Category the limit applies to; NULL means all spending.",
        ),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "amount",
            sa.Numeric(precision=12, scale=2),
            nullable=False,
            comment="Spending limit for the whole period.",
        ),
        sa.Column("currency", sa.CHAR(length=3), nullable=False),
        sa.Column(
            "period_start", sa.Date(), nullable=False, comment="First day of the period, inclusive."
        ),
        sa.Column(
            "period_end", sa.Date(), nullable=False, comment="Day after the period, exclusive."
        ),
        sa.Column(
            "alert_threshold",
            sa.Numeric(precision=3, scale=2),
            nullable=True,
            comment="Warn when this fraction of amount is spent, e.g. 0.80.",
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name=op.f("ck_budgets_currency_iso_4217")),
        sa.CheckConstraint(
            "alert_threshold > 0 AND alert_threshold <= 1",
            name=op.f("ck_budgets_alert_threshold_fraction"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_budgets_amount_positive")),
        sa.CheckConstraint(
            "period_end > period_start", name=op.f("ck_budgets_period_end_after_start")
        ),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["categories.id"],
            name=op.f("fk_budgets_category_id_categories"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_budgets_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budgets")),
        comment="Spending limits per period, for one category or (category NULL) overall.",
    )
    op.create_index(op.f("ix_budgets_category_id"), "budgets", ["category_id"], unique=False)
    op.create_index(
        "ix_budgets_user_id_period_start", "budgets", ["user_id", "period_start"], unique=False
    )
    op.create_table(
        "recurring_expense_rules",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("category_id", sa.Uuid(), nullable=True),
        sa.Column("amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("currency", sa.CHAR(length=3), nullable=False),
        sa.Column(
            "payment_method",
            # The type exists since 0001; create_type=False keeps create_table from re-creating it.
            postgresql.ENUM(name="payment_method", create_type=False),
            nullable=False,
        ),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("frequency", sa.String(length=10), nullable=False, comment="One of FREQUENCIES."),
        sa.Column(
            "interval_count",
            sa.SmallInteger(),
            server_default=sa.text("1"),
            nullable=False,
            comment="Repeat every N frequency units.",
        ),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column(
            "ends_on", sa.Date(), nullable=True, comment="Last day a run may happen; NULL: never."
        ),
        sa.Column(
            "next_run_on",
            sa.Date(),
            nullable=True,
            comment="Next day the scheduler creates an expense; NULL once the rule is exhausted.",
        ),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "currency ~ '^[A-Z]{3}$'", name=op.f("ck_recurring_expense_rules_currency_iso_4217")
        ),
        sa.CheckConstraint(
            "frequency IN ('daily', 'weekly', 'monthly', 'yearly')",
            name=op.f("ck_recurring_expense_rules_frequency_known"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_recurring_expense_rules_amount_positive")),
        sa.CheckConstraint(
            "ends_on IS NULL OR ends_on >= starts_on",
            name=op.f("ck_recurring_expense_rules_ends_on_after_starts_on"),
        ),
        sa.CheckConstraint(
            "interval_count >= 1", name=op.f("ck_recurring_expense_rules_interval_count_positive")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_recurring_expense_rules_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["categories.id"],
            name=op.f("fk_recurring_expense_rules_category_id_categories"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_recurring_expense_rules_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recurring_expense_rules")),
        comment="Templates for expenses that repeat on a schedule.",
    )
    op.create_index(
        op.f("ix_recurring_expense_rules_account_id"),
        "recurring_expense_rules",
        ["account_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_recurring_expense_rules_category_id"),
        "recurring_expense_rules",
        ["category_id"],
        unique=False,
    )
    op.create_index(
        "ix_recurring_expense_rules_due",
        "recurring_expense_rules",
        ["next_run_on"],
        unique=False,
        postgresql_where=sa.text("is_active"),
    )
    op.add_column(
        "expenses",
        sa.Column(
            "recurring_rule_id",
            sa.Uuid(),
            nullable=True,
            comment="Rule that generated this expense, if any.",
        ),
    )
    op.create_foreign_key(
        op.f("fk_expenses_recurring_rule_id_recurring_expense_rules"),
        "expenses",
        "recurring_expense_rules",
        ["recurring_rule_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_index(
        op.f("ix_expenses_recurring_rule_id"), "expenses", ["recurring_rule_id"], unique=False
    )
    op.create_table(
        "attachments",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("expense_id", sa.Uuid(), nullable=False),
        sa.Column(
            "file_name",
            sa.String(length=255),
            nullable=False,
            comment="Name as uploaded by the user.",
        ),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column(
            "sha256",
            sa.CHAR(length=64),
            nullable=False,
            comment="Hex digest, to spot duplicate uploads.",
        ),
        sa.Column(
            "storage_key",
            sa.String(length=500),
            nullable=False,
            comment="Object-storage key of the file.",
        ),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
            comment="Extracted data, e.g. OCR text, merchant, total.",
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name=op.f("ck_attachments_sha256_hex")),
        sa.CheckConstraint("size_bytes > 0", name=op.f("ck_attachments_size_bytes_positive")),
        sa.ForeignKeyConstraint(
            ["expense_id"],
            ["expenses.id"],
            name=op.f("fk_attachments_expense_id_expenses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachments")),
        sa.UniqueConstraint("storage_key", name=op.f("uq_attachments_storage_key")),
        comment="Receipts and other files attached to expenses (metadata only).",
    )
    op.create_index(op.f("ix_attachments_expense_id"), "attachments", ["expense_id"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f("ix_attachments_expense_id"), table_name="attachments")
    op.drop_table("attachments")
    op.drop_index(op.f("ix_expenses_recurring_rule_id"), table_name="expenses")
    op.drop_constraint(
        op.f("fk_expenses_recurring_rule_id_recurring_expense_rules"),
        "expenses",
        type_="foreignkey",
    )
    op.drop_column("expenses", "recurring_rule_id")
    op.drop_index("ix_recurring_expense_rules_due", table_name="recurring_expense_rules")
    op.drop_index(
        op.f("ix_recurring_expense_rules_category_id"), table_name="recurring_expense_rules"
    )
    op.drop_index(
        op.f("ix_recurring_expense_rules_account_id"), table_name="recurring_expense_rules"
    )
    op.drop_table("recurring_expense_rules")
    op.drop_index("ix_budgets_user_id_period_start", table_name="budgets")
    op.drop_index(op.f("ix_budgets_category_id"), table_name="budgets")
    op.drop_table("budgets")

"""Initial schema: users, their accounts, a category tree and expenses.

The first release of the Expense Manager: a user records expenses paid from one of their
accounts, optionally filed under a category. How an expense was paid is the native ENUM
``payment_method``, created here before the table that uses it and dropped after it.

Revision ID: 0001
Revises:
Create Date: 2025-01-13 09:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The type as of this revision; create_type=False because upgrade() and downgrade() create and
# drop it explicitly (checkfirst=False, so that offline --sql mode can render it too).
payment_method = postgresql.ENUM(
    "cash",
    "card",
    "bank_transfer",
    "direct_debit",
    "mobile_wallet",
    "other",
    name="payment_method",
    create_type=False,
)


def upgrade() -> None:
    """Upgrade schema."""
    payment_method.create(op.get_bind(), checkfirst=False)
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "email",
            sa.String(length=320),
            nullable=False,
            comment="Login and contact address, stored lower-case.",
        ),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column(
            "default_currency",
            sa.CHAR(length=3),
            nullable=False,
            comment="Currency proposed for new accounts and expenses.",
        ),
        sa.Column(
            "settings",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
            comment="UI preferences such as locale, theme and first day of the week.",
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
            "default_currency ~ '^[A-Z]{3}$'", name=op.f("ck_users_default_currency_iso_4217")
        ),
        sa.CheckConstraint("email = lower(email)", name=op.f("ck_users_email_lowercase")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
        comment="People who own accounts and record expenses.",
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False, comment="One of ACCOUNT_KINDS."),
        sa.Column("currency", sa.CHAR(length=3), nullable=False),
        sa.Column(
            "opening_balance",
            sa.Numeric(precision=12, scale=2),
            server_default=sa.text("0"),
            nullable=False,
            comment="Balance when the account was added; may be negative.",
        ),
        sa.Column(
            "is_default",
            sa.Boolean(),
            server_default=sa.text("false"),
            nullable=False,
            comment="Account preselected for new expenses.",
        ),
        sa.Column(
            "archived_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="Set when the account is closed; its history stays.",
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
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name=op.f("ck_accounts_currency_iso_4217")),
        sa.CheckConstraint(
            "kind IN ('cash', 'checking', 'savings', 'credit_card', 'e_wallet')",
            name=op.f("ck_accounts_kind_known"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_accounts_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("user_id", "name", name="uq_accounts_user_id_name"),
        comment="Wallets, bank accounts and cards; each belongs to one user.",
    )
    op.create_index(
        "uq_accounts_user_id_default",
        "accounts",
        ["user_id"],
        unique=True,
        postgresql_where=sa.text("is_default"),
    )
    op.create_table(
        "categories",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column(
            "parent_id",
            sa.Uuid(),
            nullable=True,
            comment="Parent category; deleting it deletes this subtree.",
        ),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("color", sa.CHAR(length=7), nullable=True, comment="Display colour as #rrggbb."),
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
        sa.CheckConstraint("color ~ '^#[0-9a-f]{6}$'", name=op.f("ck_categories_color_hex")),
        sa.CheckConstraint("parent_id <> id", name=op.f("ck_categories_not_own_parent")),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["categories.id"],
            name=op.f("fk_categories_parent_id_categories"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_categories_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_categories")),
        sa.UniqueConstraint(
            "user_id",
            "parent_id",
            "name",
            name="uq_categories_user_id_parent_id_name",
            postgresql_nulls_not_distinct=True,
        ),
        comment="Per-user category tree; parent_id is NULL for top-level categories.",
    )
    op.create_index(op.f("ix_categories_parent_id"), "categories", ["parent_id"], unique=False)
    op.create_table(
        "expenses",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("category_id", sa.Uuid(), nullable=True),
        sa.Column(
            "amount",
            sa.Numeric(precision=12, scale=2),
            nullable=False,
            comment="Amount paid, always positive.",
        ),
        sa.Column(
            "currency", sa.CHAR(length=3), nullable=False, comment="ISO 4217 code of amount."
        ),
        sa.Column("payment_method", payment_method, nullable=False),
        sa.Column(
            "spent_at",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="When the payment happened, not when it was recorded.",
        ),
        sa.Column("merchant", sa.String(length=200), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
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
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name=op.f("ck_expenses_currency_iso_4217")),
        sa.CheckConstraint("amount > 0", name=op.f("ck_expenses_amount_positive")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_expenses_account_id_accounts"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["categories.id"],
            name=op.f("fk_expenses_category_id_categories"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_expenses_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_expenses")),
        comment="Every payment a user records, one row per payment.",
    )
    op.create_index(op.f("ix_expenses_account_id"), "expenses", ["account_id"], unique=False)
    op.create_index(op.f("ix_expenses_category_id"), "expenses", ["category_id"], unique=False)
    op.create_index(
        "ix_expenses_user_id_spent_at", "expenses", ["user_id", "spent_at"], unique=False
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_expenses_user_id_spent_at", table_name="expenses")
    op.drop_index(op.f("ix_expenses_category_id"), table_name="expenses")
    op.drop_index(op.f("ix_expenses_account_id"), table_name="expenses")
    op.drop_table("expenses")
    op.drop_index(op.f("ix_categories_parent_id"), table_name="categories")
    op.drop_table("categories")
    op.drop_index("uq_accounts_user_id_default", table_name="accounts")
    op.drop_table("accounts")
    op.drop_table("users")
    # drop_table leaves types behind; the last table using payment_method is gone now.
    payment_method.drop(op.get_bind(), checkfirst=False)

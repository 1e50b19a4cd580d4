"""initial

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(20), nullable=False),
        sa.UniqueConstraint("code", name="uq_accounts_code"),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "account_code",
            sa.String(20),
            sa.ForeignKey("accounts.code", name="fk_orders_account_code"),
            nullable=False,
        ),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.CheckConstraint("qty > 0", name="ck_orders_qty"),
    )
    op.create_index(
        "ix_orders_body", "orders", ["body"], postgresql_using="gin",
        postgresql_ops={"body": "gin_trgm_ops"},
    )
    op.execute("CREATE SEQUENCE ticket_no_seq")
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "number", sa.Integer(), server_default=sa.text("nextval('ticket_no_seq')"),
            nullable=False,
        ),
    )

"""orders and returns, one ENUM type

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
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "status", sa.Enum("new", "paid", "shipped", name="order_status"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
    )
    op.create_table(
        "returns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("status", sa.Enum(name="order_status", create_type=False), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_returns")),
    )


def downgrade() -> None:
    op.drop_table("returns")
    op.drop_table("orders")
    sa.Enum(name="order_status").drop(op.get_bind())

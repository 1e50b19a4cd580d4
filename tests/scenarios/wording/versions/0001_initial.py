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
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(200), nullable=False),
        sa.Column("legacy_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(100), nullable=True),
        sa.Column("status", sa.String(20), server_default=sa.text("'active'"), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("email", name="uq_users_email"),
        sa.UniqueConstraint("legacy_id", name="uq_users_legacy_id"),
    )
    op.create_index("ix_users_name_status", "users", ["name", "status"])
    op.create_table(
        "legacy_imports",
        sa.Column("id", sa.Integer(), sa.Identity(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_legacy_imports"),
    )
    op.create_table(
        "archive",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_archive"),
    )


def downgrade() -> None:
    op.drop_table("archive")
    op.drop_table("legacy_imports")
    op.drop_index("ix_users_name_status", table_name="users")
    op.drop_table("users")

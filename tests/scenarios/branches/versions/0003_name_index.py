"""name index (contract)

Revision ID: 0003
Revises: 0001
"""
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = ("contract",)
depends_on = None


def upgrade() -> None:
    op.create_index("ix_users_name", "users", ["name"])


def downgrade() -> None:
    op.drop_index("ix_users_name", table_name="users")

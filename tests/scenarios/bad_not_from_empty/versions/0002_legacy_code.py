"""widen legacy_accounts.code (the table exists only in databases made by create_all)

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column("legacy_accounts", "code", type_=sa.String(20))


def downgrade() -> None:
    op.alter_column("legacy_accounts", "code", type_=sa.String(10))

"""a revision whose SQL fails

Revision ID: 0002
Revises: 0001
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE users ADD COLUMN nickname VARCHAR(50) REFERENCES missing_table(id)")


def downgrade() -> None:
    op.drop_column("users", "nickname")

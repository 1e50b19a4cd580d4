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
        "members",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("team", sa.String(20), nullable=False),
        sa.Column("email", sa.String(100), nullable=False),
        sa.UniqueConstraint("email", "team", name="uq_members_team_email"),
    )
    # The existing rows get a role; the default stays, as the revision left it.
    op.add_column(
        "members",
        sa.Column("role", sa.String(10), server_default="member", nullable=False),
    )

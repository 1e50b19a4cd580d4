"""notes, created through op.run_async

Revision ID: 0002
Revises: 0001
"""
from alembic import op
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


async def _create_notes(connection: AsyncConnection) -> None:
    await connection.execute(text(
        "CREATE TABLE notes (id serial PRIMARY KEY, "
        "user_id integer NOT NULL REFERENCES users (id), body varchar(500) NOT NULL)"
    ))


async def _drop_notes(connection: AsyncConnection) -> None:
    await connection.execute(text("DROP TABLE notes"))


def upgrade() -> None:
    op.run_async(_create_notes)


def downgrade() -> None:
    op.run_async(_drop_notes)

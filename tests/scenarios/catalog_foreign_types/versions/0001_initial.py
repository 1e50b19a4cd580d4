"""initial: a type, a domain and a function made by hand

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
    op.execute("CREATE TYPE mood AS ENUM ('happy', 'sad')")
    op.execute("CREATE DOMAIN positive_int AS integer CHECK (VALUE > 0)")
    op.execute("CREATE SEQUENCE ticket_codes")
    op.execute(
        "CREATE FUNCTION next_code() RETURNS text LANGUAGE sql AS "
        "$$ SELECT 'T-' || nextval('ticket_codes') $$"
    )
    op.execute(
        "CREATE TABLE tickets (id serial CONSTRAINT pk_tickets PRIMARY KEY, mood mood NOT NULL, "
        "seats positive_int NOT NULL, code varchar(20) DEFAULT next_code() NOT NULL, "
        "opened_at timestamp DEFAULT now() NOT NULL)"
    )


def downgrade() -> None:
    op.drop_table("tickets")
    op.execute("DROP FUNCTION next_code()")
    op.execute("DROP SEQUENCE ticket_codes")
    op.execute("DROP DOMAIN positive_int")
    op.execute("DROP TYPE mood")

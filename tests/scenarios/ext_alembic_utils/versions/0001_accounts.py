"""accounts, with a view, a function and a trigger

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op
from alembic_utils.pg_function import PGFunction
from alembic_utils.pg_trigger import PGTrigger
from alembic_utils.pg_view import PGView

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

rich_accounts = PGView(
    schema="public",
    signature="rich_accounts",
    definition="SELECT id, balance FROM accounts WHERE balance > 1000",
)
clamp_balance = PGFunction(
    schema="public",
    signature="clamp_balance()",
    definition="""RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.balance := greatest(NEW.balance, 0);
    RETURN NEW;
END;
$$""",
)
accounts_clamp = PGTrigger(
    schema="public",
    signature="accounts_clamp",
    on_entity="public.accounts",
    definition="BEFORE INSERT ON public.accounts FOR EACH ROW EXECUTE FUNCTION public.clamp_balance()",
)


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("balance", sa.Numeric(12, 2), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
    )
    op.create_entity(rich_accounts)
    op.create_entity(clamp_balance)
    op.create_entity(accounts_clamp)


def downgrade() -> None:
    op.drop_entity(accounts_clamp)
    op.drop_entity(clamp_balance)
    op.drop_entity(rich_accounts)
    op.drop_table("accounts")

"""Views, functions and triggers only migrations create, declared for alembic-utils."""
from alembic_utils.pg_function import PGFunction
from alembic_utils.pg_trigger import PGTrigger
from alembic_utils.pg_view import PGView

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

ENTITIES = [rich_accounts, clamp_balance, accounts_clamp]

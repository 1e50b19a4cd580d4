"""The repository's own Expense Manager schema: its migrations and the rules it enforces."""

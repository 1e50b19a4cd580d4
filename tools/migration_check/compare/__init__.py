"""The two opinions on whether the models match the migrated database."""

"""What the tests share; test modules import from here, never from each other.

paths (the repository, scenarios, the shim), scenarios (a scenario project copied), edits (model
and revision edits, settings), git, reports (``main([...])`` in this process), checker (the
checker as a process, its environment), procfs (what /proc says is left), fs_events (inotify
waits), second_server ("the developer's real database"), prereq (skip here, fail under CI),
plain_alembic (the truth), caches, soundness, history, bad_input, warm, expense_schema,
schema_dump, production_dump and untouched_projects (each suite's own parts). Fixtures are in
tests/conftest.py.
"""

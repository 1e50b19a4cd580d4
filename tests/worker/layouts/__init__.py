"""The project layouts: every alembic init template, Flask-Migrate, --start-from."""

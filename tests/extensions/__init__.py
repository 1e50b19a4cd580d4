"""Alembic extensions (alembic-utils, PostGIS, alembic-postgresql-enum, SQLModel) against plain
Alembic.
"""

"""First opinion: Alembic's autogenerate through env.py, and its ops as findings.

compare, ops to findings, pairs (remove+add read as one change), alter, source locations.
"""

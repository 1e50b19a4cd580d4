"""Second opinion: a create_all() database compared with the migrated one through the catalog.

Models database, catalog queries, env.py's filters on both sides, rendering of both sides.
"""

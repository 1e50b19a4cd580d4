"""More safety scenarios, beside tests/helpers/safety.py's CASES: one per hazard, same shape.

(kind, unsafe upgrade, its downgrade, safe upgrade, its downgrade, base revision 0003, the
base's downgrade).
"""

from __future__ import annotations

# A partitioned table with one partition, made by the base: an index ON ONLY the parent stays
# INVALID until the partition's index is attached.
PARTITIONED = (
    'op.execute("CREATE TABLE events (id integer NOT NULL, at date NOT NULL) '
    'PARTITION BY RANGE (at)")\n'
    'op.execute("CREATE TABLE events_2000 PARTITION OF events '
    "FOR VALUES FROM ('2000-01-01') TO ('2100-01-01')\")"
)
PARTITIONED_UNDO = 'op.execute("DROP TABLE events")'

INVALID_INDEX = (
    "invalid_index",
    'op.execute("CREATE INDEX ix_events_at ON ONLY events (at)")',
    'op.execute("DROP INDEX ix_events_at")',
    'op.execute("CREATE INDEX ix_events_at ON ONLY events (at)")\n'
    "with op.get_context().autocommit_block():\n"
    '    op.execute("CREATE INDEX CONCURRENTLY ix_events_at_events_2000 ON events_2000 (at)")\n'
    'op.execute("ALTER INDEX ix_events_at ATTACH PARTITION ix_events_at_events_2000")',
    'op.execute("DROP INDEX ix_events_at")',
    PARTITIONED,
    PARTITIONED_UNDO,
)
CONCURRENTLY_IN_TRANSACTION = (
    "concurrently_in_transaction",
    'op.create_index("ix_users_name", "users", ["name"], postgresql_concurrently=True)',
    'op.drop_index("ix_users_name", "users")',
    "with op.get_context().autocommit_block():\n"
    '    op.create_index("ix_users_name", "users", ["name"], postgresql_concurrently=True)',
    'op.drop_index("ix_users_name", "users")',
    "",
    "pass",
)

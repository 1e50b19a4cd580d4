"""The migrated-database and verdict caches: served when nothing moved, never stale."""

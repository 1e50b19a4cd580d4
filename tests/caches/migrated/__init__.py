"""The migrated-database cache: served when nothing it depends on moved, never stale."""

"""Migrated databases, verdicts and the directories they live in. CLI process, stdlib only.

In: the fingerprints a worker recorded. Out: an entry to reuse, or none.
"""

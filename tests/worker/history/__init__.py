"""History checks: heads, round trips of new revisions, edited and stale revisions."""

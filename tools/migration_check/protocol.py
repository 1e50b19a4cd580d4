"""What passes between the CLI process and the worker: one definition both ends import.

Stdlib only. The CLI writes the request and reads the events and the result; the worker (and the
resident worker's forks) read the request and write the rest. A cached migrated database is part
of the contract too: the worker writes its entry, the CLI reads it back in a later run.
"""

from __future__ import annotations

__all__ = ["MIGRATED_FORMAT"]

# The layout of a migrated-database cache entry. 2: entries record the closure of loaded modules
# (fingerprints/closure.py). 3: and what the upgrade read (fingerprints/inputs.py), and the
# interpreter and getenv variables (fingerprints/startup.py).
MIGRATED_FORMAT = 3

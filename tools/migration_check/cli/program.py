"""The ``check-migrations`` program: the entry of the console script and of the shim.

A program owns its process's signals; a library caller does not, and this entry is what tells
them apart (``main(..., program=True)``). It takes SIGINT and SIGTERM before cli/app.py and click,
the slow part of start-up, are imported, so a signal at any moment ends the program with one
line and 130 / 143. Importing cli/app.py or calling ``main([...])`` from Python leaves the caller's
handlers alone (see ``cli.main``). Stdlib only until the guarded import.
"""

from __future__ import annotations

import sys

from migration_check.interrupts import during_startup

__all__ = ["run"]


def run() -> int:
    """Run ``check-migrations`` with ``sys.argv``; return the exit code."""
    with during_startup():  # a signal while cli.py loads: one line, no traceback
        from migration_check.cli.app import main
    return main(sys.argv[1:], program=True)

"""What the check and its subcommands (``revision``, ``baseline``) share besides their options
(cli/options.py): exit codes, the progress lines, the unused-rule warning.

Its own module so that a subcommand never imports cli/app.py, the door that dispatches to it.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence

from migration_check.settings import Settings

__all__ = ["EXIT_ERROR", "EXIT_FINDINGS", "EXIT_OK", "progress_printer", "warn_unused_rules"]

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2


def progress_printer(settings: Settings) -> Callable[[str], None]:
    """Progress lines on stderr, with the time since the start (CHECK_MIGRATIONS_QUIET: none)."""
    start = time.monotonic()
    quiet = os.environ.get("CHECK_MIGRATIONS_QUIET") == "1"

    def emit(message: str) -> None:
        if not quiet:
            print(f"check-migrations: {message} ({time.monotonic() - start:.1f}s)", file=sys.stderr)

    return emit


def warn_unused_rules(rules: Sequence[str], settings: Settings) -> None:
    """Stale ignore rules rot: say which matched nothing (on stderr; not an error)."""
    origin = settings.source.get("ignore", "ignore setting")
    for rule in rules:
        print(
            f"check-migrations: warning: ignore rule {rule!r} ({origin}) matched nothing; "
            "remove it",
            file=sys.stderr,
        )

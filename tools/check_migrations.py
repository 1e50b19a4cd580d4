"""Run the migration drift check: ``python tools/check_migrations.py [--help]``.

A shim so the checker runs from a checkout without installing it; the code lives in the
``migration_check`` package beside this file (installed as the ``check-migrations`` script).
"""

from __future__ import annotations

import signal
import sys


def _early_signal(signum: int, frame: object) -> None:
    # Until migration_check.interrupts takes over: nothing exists yet to clean up.
    verb = "interrupted" if signum == signal.SIGINT else "terminated"
    sys.stderr.write(f"check-migrations: {verb}; nothing was left behind\n")
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, _early_signal)
signal.signal(signal.SIGINT, _early_signal)

from pathlib import Path  # noqa: E402 - after the handlers: a signal here must not kill silently

sys.path.insert(0, str(Path(__file__).resolve().parent))

from migration_check.program import run  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(run())

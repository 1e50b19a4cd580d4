"""Run the migration drift check: ``python tools/check_migrations.py [--help]``.

A shim so the checker runs from a checkout without installing it; the code lives in the
``migration_check`` package beside this file (installed as the ``check-migrations`` script).
"""

from __future__ import annotations

import signal
import sys

_received: list[int] = []


def _early_exit(signum: int) -> SystemExit:
    verb = "interrupted" if signum == signal.SIGINT else "terminated"
    sys.stderr.write(f"check-migrations: {verb}; nothing was left behind\n")
    return SystemExit(128 + signum)


def _early_signal(signum: int, frame: object) -> None:
    # Until migration_check.interrupts takes over: nothing exists yet to clean up.
    _received.append(signum)
    raise _early_exit(signum)


signal.signal(signal.SIGTERM, _early_signal)
signal.signal(signal.SIGINT, _early_signal)

from pathlib import Path  # noqa: E402 - after the handlers: a signal here must not kill silently

sys.path.insert(0, str(Path(__file__).resolve().parent))

try:
    from migration_check.cli.program import run
except Exception:
    # The handler's SystemExit can come out of an import as another exception (Python wraps
    # what a ``__set_name__`` raises in a RuntimeError): the signal is what ended it.
    if _received:
        raise SystemExit(128 + _received[-1]) from None
    raise

if __name__ == "__main__":
    raise SystemExit(run())

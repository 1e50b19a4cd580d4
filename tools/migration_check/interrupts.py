"""SIGINT and SIGTERM in the CLI process: one line and exit 130 / 143, whatever the moment.

Installed before anything slow is imported (the shim's first lines, then cli.py's, before
click): a signal during start-up must not print a ``KeyboardInterrupt`` traceback nor kill the
process silently with the default SIGTERM action. The handler stays installed until the process
exits, so a SIGTERM arriving after the verdict was computed still ends the run with 143 rather
than being dropped by a restored default. Stdlib only, and cheap to import.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType, TracebackType

from migration_check.errors import Interrupted

__all__ = [
    "EXIT_SIGINT",
    "EXIT_SIGTERM",
    "add_cleanup_note",
    "cleanup_notes",
    "during_startup",
    "install",
    "interrupt_line",
    "pending",
]

EXIT_SIGINT = 130
EXIT_SIGTERM = 143


# The last signal received: an exception raised by a handler can be swallowed or turned into
# another error by code it interrupts (an import's fallback, a library's except clause); the
# CLI still ends the run as interrupted.
received: list[int] = []


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    received.append(signum)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Interrupted(signum)


def install() -> None:
    """SIGTERM raises ``Interrupted``, SIGINT ``KeyboardInterrupt`` (undoing the shim's own)."""
    received.clear()
    if sys.excepthook is sys.__excepthook__:
        sys.excepthook = _excepthook
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupted)
        signal.signal(signal.SIGINT, _raise_interrupted)


def _excepthook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    """The last net: a signal's exception that escaped to the top level between two handlers
    (the instants between the import guard and ``main()``'s own) still gets its line and code.
    """
    if not issubclass(kind, KeyboardInterrupt | Interrupted):
        sys.__excepthook__(kind, exc, tb)
        return
    signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
    with contextlib.suppress(OSError, ValueError):
        print(interrupt_line(signum, cleanup_notes(exc)), file=sys.stderr)
        sys.stderr.flush()
        sys.stdout.flush()
    # Not SystemExit: the interpreter is already unwinding an uncaught exception.
    os._exit(128 + signum)


def pending() -> int | None:
    """The signal that interrupted this run, if one did."""
    return received[-1] if received else None


def add_cleanup_note(exc: BaseException, note: str) -> None:
    """Tell the CLI what teardown did while ``exc`` unwound: its interrupt line must be true."""
    notes = getattr(exc, "cleanup_notes", None)
    if not isinstance(notes, list):
        notes = []
        with contextlib.suppress(AttributeError, TypeError):
            exc.cleanup_notes = notes  # type: ignore[attr-defined]
    notes.append(note)


def cleanup_notes(exc: BaseException | None) -> list[str]:
    """The notes teardown left on ``exc`` or on what it was raised from (click's Abort)."""
    while exc is not None:
        notes = getattr(exc, "cleanup_notes", None)
        if isinstance(notes, list):
            return [str(n) for n in notes]
        exc = exc.__cause__ or exc.__context__
    return []


def interrupt_line(signum: int, notes: list[str]) -> str:
    """The one line a signal ends a run with, saying what teardown did (or that none was due)."""
    verb = "interrupted" if signum == signal.SIGINT else "terminated"
    return f"check-migrations: {verb}; {'; '.join(notes) or 'nothing was left behind'}"


@contextlib.contextmanager
def during_startup() -> Iterator[None]:
    """Around imports: nothing exists yet, so a signal ends the process with its line at once."""
    try:
        install()
        yield
    except KeyboardInterrupt:
        _exit(signal.SIGINT)
    except Interrupted as exc:
        _exit(exc.signum)


def _exit(signum: int) -> None:
    with contextlib.suppress(OSError, ValueError):
        print(interrupt_line(signum, []), file=sys.stderr)
    raise SystemExit(128 + signum)

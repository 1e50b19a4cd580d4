"""SIGINT and SIGTERM during a check: teardown first, then whatever the process owner wants.

Two owners. The program (``check-migrations``, the shim; ``program.run``) takes both signals
before anything slow is imported: a signal during start-up must not print a
``KeyboardInterrupt`` traceback nor kill the process silently with the default SIGTERM action,
and the run ends with one line and exit 130 / 143. Its handlers stay until the process exits,
so a SIGTERM arriving after the verdict was computed still ends the run with 143 rather than
being dropped by a restored default.

A host (``main([...])`` called from Python, the pytest plugin) lends them for one check
(``hosted``): the check still tears down on either signal, then the host's handlers, excepthook
and signal mask are put back and the signal is delivered again, to the host. Importing this
module or cli/app.py changes nothing. Stdlib only, and cheap to import.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from types import FrameType, TracebackType
from typing import Any

from migration_check.errors import Interrupted

__all__ = [
    "EXIT_SIGINT",
    "EXIT_SIGTERM",
    "add_cleanup_note",
    "cleanup_notes",
    "during_startup",
    "hold",
    "hosted",
    "install",
    "interrupt_line",
    "pending",
]

EXIT_SIGINT = 130
EXIT_SIGTERM = 143

_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})

_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers


# The last signal received: an exception raised by a handler can be swallowed or turned into
# another error by code it interrupts (an import's fallback, a library's except clause); the
# CLI still ends the run as interrupted.
received: list[int] = []


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    received.append(signum)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Interrupted(signum)


def install(signals: Iterable[int] = _SIGNALS) -> None:
    """SIGTERM raises ``Interrupted``, SIGINT ``KeyboardInterrupt`` (undoing the shim's own)."""
    received.clear()
    if sys.excepthook is sys.__excepthook__:
        sys.excepthook = _excepthook
    if threading.current_thread() is threading.main_thread():
        for signum in signals:
            signal.signal(signum, _raise_interrupted)


def hold() -> list[int]:
    """Block both signals and take those already waiting: the run's exit code is being decided.

    The signals taken are recorded (``pending``) and returned; nothing fires for them when the
    mask is restored. The program leaves them blocked until it exits; ``hosted`` unblocks.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    waiting = sorted(signal.sigpending() & _SIGNALS)
    for signum in waiting:
        signal.sigtimedwait([signum], 0)
    received.extend(waiting)
    return waiting


@contextlib.contextmanager
def hosted() -> Iterator[None]:
    """Around a check in someone else's process: the signal is the host's once teardown is done.

    For the block, SIGINT and SIGTERM raise as in the program, so the check tears down on its
    way out. Then the host's handlers, excepthook and signal mask are back and the last signal
    received is raised again, now for the host's handler: the default SIGTERM action ends the
    process by that signal, Python's SIGINT handler raises ``KeyboardInterrupt`` out of the
    block, the host's own function runs. If that returns, ``Interrupted`` is raised, so the
    caller does not go on as if the check had finished. A signal the host ignores, or handles
    outside Python, is left to it during the check too.
    """
    hook = sys.excepthook
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, ())
    handlers: dict[int, _Handler] = {}
    if threading.current_thread() is threading.main_thread():
        for borrowed in _SIGNALS:
            handler = signal.getsignal(borrowed)
            if handler is not None and handler != signal.SIG_IGN:
                handlers[borrowed] = handler
    caught: BaseException | None = None
    try:
        install(handlers)
        try:
            yield
        except BaseException as exc:  # re-raised below unless a signal's, which is redelivered
            caught = exc
        finally:
            hold()
    except (KeyboardInterrupt, Interrupted):  # landed outside the block: taken by hold() now
        hold()
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        if sys.excepthook is _excepthook:
            sys.excepthook = hook
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    last = pending()
    if last is None:
        if caught is not None:
            raise caught
        return
    signal.raise_signal(last)
    raise Interrupted(last) from caught


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
    """Around the program's imports: nothing exists yet, so a signal ends it with its line."""
    try:
        install()
        yield
    except KeyboardInterrupt:
        _exit(signal.SIGINT)
    except Interrupted as exc:
        _exit(exc.signum)
    except Exception:
        # The handler's exception can come out of an import as another one: Python wraps what
        # a ``__set_name__`` raises in a RuntimeError. The signal is what ended the import.
        if received:
            _exit(received[-1])
        raise


def _exit(signum: int) -> None:
    with contextlib.suppress(OSError, ValueError):
        print(interrupt_line(signum, []), file=sys.stderr)
    raise SystemExit(128 + signum)

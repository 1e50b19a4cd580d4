"""In a child the resident worker (resident/daemon.py) forked: become ``python -m
migration_check.worker``.

The resident process imported the libraries as a fresh worker does before its request; the
child takes what a fresh worker gets from its parent instead of from the resident process: a
session and process group of its own, the parent-death signal, signal dispositions and mask as
Python starts with them, the check's descriptors on 0/1/2 and the event pipe, the check's
environment (and the bytecode settings Python derives from it), directory and umask.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Any, NoReturn

__all__ = ["become_worker"]


def become_worker(
    header: dict[str, Any],
    fds: list[int],
    *,
    parent: int,
    arm: Callable[[], None] | None,
    close_inherited: Callable[[], None],
) -> NoReturn:
    """Set the child up as the check's worker and run ``worker.main()``; never returns.

    ``fds``: the worker's stdin, its stdout and stderr, and its event pipe. ``parent``: the
    resident process (if it died before ``arm`` set the parent-death signal, exit at once).
    ``close_inherited`` closes the resident process's own descriptors through their objects.
    """
    from migration_check.worker import process as worker  # imported by the resident process already

    rc = 1
    try:
        os.setsid()
        if arm is not None:
            arm()
        if os.getppid() != parent:  # the resident process died before the signal was armed
            os._exit(1)
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as Python starts
        close_inherited()
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        stdin_r, out, event = fds
        os.dup2(stdin_r, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(stdin_r)
        os.close(out)
        environ: dict[str, str] = header["environ"]
        os.environ.clear()
        os.environ.update(environ)
        os.environ["CHECK_MIGRATIONS_EVENT_FD"] = str(event)
        sys.dont_write_bytecode = bool(environ.get("PYTHONDONTWRITEBYTECODE"))
        sys.pycache_prefix = environ.get("PYTHONPYCACHEPREFIX") or None
        os.chdir(header["cwd"])
        os.umask(int(header["umask"]))
        # As under `python -m migration_check.worker`: project code that looks at its
        # program (argv[0], __main__.__file__) sees the worker, not this process.
        sys.argv = [str(worker.__file__)]
        sys.modules["__main__"] = worker
        rc = worker.main()  # ends the process itself once its answer is out
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()  # onto the check's log: the CLI shows its last line
    worker.exit_now(rc)

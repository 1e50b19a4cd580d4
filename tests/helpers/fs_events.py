"""Wait for something to appear in a directory on the kernel's word (inotify), not by polling.

A resident worker announces that it listens with a ``ready:`` line in its log, and a process
started by another has no pipe to the test: the only event is the file system's. inotify
wakes the waiter on each file created, written or moved in the watched directories, and the
condition is looked at again then, so nothing is missed and nothing is slept through.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import select
import time
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["wait_until_in"]

_IN_MODIFY = 0x002
_IN_CLOSE_WRITE = 0x008
_IN_MOVED_TO = 0x080
_IN_CREATE = 0x100
_IN_DELETE = 0x200
_IN_NONBLOCK = 0o4000
_IN_CLOEXEC = 0o2000000
_MASK = _IN_MODIFY | _IN_CLOSE_WRITE | _IN_MOVED_TO | _IN_CREATE | _IN_DELETE

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


@contextlib.contextmanager
def _inotify() -> Iterator[int]:
    fd = _libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "inotify_init1")
    try:
        yield fd
    finally:
        os.close(fd)


def wait_until_in(
    dirs: list[Path], condition: Callable[[], bool], what: str, timeout: float = 60
) -> None:
    """Until ``condition()`` holds, woken by changes in ``dirs`` (each watched once it exists).

    ``timeout`` only bounds a test that would otherwise hang; nothing is timed by it.
    """
    deadline = time.monotonic() + timeout
    watched: set[Path] = set()
    with _inotify() as fd:
        while True:
            for path in dirs:
                # A directory made after the wait began is watched from then on; its creation
                # woke us through its parent's watch.
                if path not in watched and path.is_dir():
                    if _libc.inotify_add_watch(fd, os.fsencode(path), _MASK) < 0:
                        raise OSError(ctypes.get_errno(), f"inotify_add_watch {path}")
                    watched.add(path)
            if condition():
                return
            left = deadline - time.monotonic()
            assert left > 0, f"timed out waiting for {what}"
            if select.select([fd], [], [], left)[0]:
                with contextlib.suppress(BlockingIOError):
                    os.read(fd, 65536)

"""Child processes whose every input can be named, so a run that starts one stays storable.

A subprocess makes a run unstorable (inputs.py): what the child reads is out of sight. One child
is everywhere in real projects and reads nothing the key cannot hold: ``platform.architecture()``
(called at import by, e.g., croniter, which Apache Airflow's models import) runs
``file -b <the interpreter>``. Its answer depends on the interpreter binary, which the start-up
key already holds (fingerprints/startup.py), on the ``file`` program found on the child's PATH
(and the magic database beside it), and on ``MAGIC``. Those are recorded as the run's inputs, so a
different ``file`` or PATH is a different key. The other: ``platform.uname().processor`` (or
``platform.processor()``, called at import by MLflow) runs ``uname -p``, whose answer is the
machine the kernel reports, fixed for a given interpreter binary (keyed), and the ``uname``
program found on PATH (keyed, with PATH). Any other child is still refused.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from typing import Any

__all__ = ["KnownChild", "known_child"]

# Where file(1) looks for its compiled magic when MAGIC is unset (Debian, Fedora, Alpine, macOS).
_MAGIC = (
    "/usr/share/misc/magic.mgc",
    "/usr/share/file/magic.mgc",
    "/usr/lib/file/magic.mgc",
    "/etc/magic",
)


class KnownChild:
    """What a known child reads: files to digest and variables to key."""

    def __init__(self, files: list[str], env: dict[str, str | None]) -> None:
        self.files = files
        self.env = env


def known_child(event: str, args: tuple[Any, ...]) -> KnownChild | None:
    """The inputs of ``subprocess.Popen(args)`` if it is a child named above, else None."""
    if event != "subprocess.Popen" or len(args) < 4:
        return None
    argv, child_env = args[1], args[3]
    if isinstance(argv, str | bytes) or argv is None:
        return None
    try:
        words = [os.fsdecode(a) for a in argv]
    except TypeError:
        return None
    env: Mapping[Any, Any] = child_env if child_env is not None else os.environ
    path = _get(env, "PATH")
    if words == ["uname", "-p"]:
        if path != os.environ.get("PATH"):
            return None
        program = shutil.which("uname", path=path) if path is not None else None
        return KnownChild([program] if program is not None else [], {"PATH": path})
    if len(words) != 3 or words[:2] != ["file", "-b"]:
        return None
    if os.path.realpath(words[2]) != os.path.realpath(sys.executable):
        return None
    magic = _get(env, "MAGIC")
    # Keyed as the worker's own variables, which the CLI compares with the next worker's: a child
    # given other values than the worker has is not one whose inputs the key can hold.
    if (path, magic) != (os.environ.get("PATH"), os.environ.get("MAGIC")):
        return None
    program = shutil.which("file", path=path) if path is not None else None
    files = [p for p in (program, *_MAGIC) if p is not None]
    return KnownChild(files, {"PATH": path, "MAGIC": magic})


def _text(value: object) -> str | None:
    if isinstance(value, str | bytes):
        return os.fsdecode(value)
    return None


def _get(env: Mapping[Any, Any], name: str) -> str | None:
    """``name`` from a child's environment, given as text or bytes (os.environ takes no bytes)."""
    if name in env:
        return _text(env[name])
    if env is os.environ:
        return None
    return _text(env.get(os.fsencode(name)))

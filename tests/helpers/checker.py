"""The checker run as users run it, in a process of its own (signals and SIGKILL need one).

Its environment confined to one test's directories, which the unprivileged server user can
traverse. What /proc says is left of it is in procfs.py, the second server ("the developer's
real database") in second_server.py.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.paths import SHIM


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def shared_tmp() -> str:
    # The server user must traverse the parent: pytest's tmp_path sits under a 0700 directory.
    return "/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()


@contextlib.contextmanager
def shared_dir(prefix: str) -> Iterator[Path]:
    """A directory the unprivileged server user can traverse (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=shared_tmp()))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# What a developer's shell may hold that would steer the checker or name a database.
_STEERING = ("DATABASE_URL", "PGPASSWORD")
# What else steers the interpreter or reaches the project's code: dropped where a test compares
# verdicts across runs (soundness.py), so that only the perturbation under test differs.
_PRISTINE = ("GITHUB_STEP_SUMMARY", "PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "PYTHONPYCACHEPREFIX",
             "PYTHONUSERBASE", "PYTHONSTARTUP", "PYTHONHOME", "VIRTUAL_ENV")  # fmt: skip


def checker_env(
    run_dir: Path,
    cache_dir: Path | None = None,
    extra: Mapping[str, str] | None = None,
    *,
    pristine: bool = False,
) -> dict[str, str]:
    """The environment of a checker subprocess, confined to this test's run directory.

    By default the verdict cache is off: these tests interrupt and race the pipeline itself,
    which a stored verdict would skip. ``pristine`` keeps the verdict cache on and drops every
    ``PG*`` variable and the interpreter's own (``_PRISTINE``); bytecode is then written beside
    the sources, as on a user's machine (this sandbox sets PYTHONDONTWRITEBYTECODE, which the
    checker answers with a private bytecode cache).
    """
    dropped = _STEERING + _PRISTINE if pristine else _STEERING
    prefixes = ("CHECK_MIGRATIONS_", "PG") if pristine else ("CHECK_MIGRATIONS_",)
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes) and k not in dropped}
    env["CHECK_MIGRATIONS_RUN_DIR"] = str(run_dir)
    if cache_dir is not None:
        env["CHECK_MIGRATIONS_CACHE_DIR"] = str(cache_dir)
    elif "CHECK_MIGRATIONS_CACHE_DIR" in os.environ:
        env["CHECK_MIGRATIONS_CACHE_DIR"] = os.environ["CHECK_MIGRATIONS_CACHE_DIR"]
    env["NO_COLOR"] = "1"
    if not pristine:
        env["CHECK_MIGRATIONS_VERDICT_CACHE"] = "0"
    env.update(extra or {})
    return env


def start_checker(args: Sequence[str], cwd: Path, env: Mapping[str, str]) -> subprocess.Popen[str]:
    """The checker as users run it: ``python tools/check_migrations.py``, in its own process."""
    return subprocess.Popen(
        [sys.executable, str(SHIM), *args],
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def run_checker(
    args: Sequence[str], cwd: Path, env: Mapping[str, str], *, timeout: float = 120
) -> Finished:
    start = time.monotonic()
    proc = start_checker(args, cwd, env)
    out, err = proc.communicate(timeout=timeout)
    return Finished(proc.returncode, out, err, time.monotonic() - start)


def wait_for_line(proc: subprocess.Popen[str], needle: str, seen: list[str]) -> bool:
    """Read stderr until a line contains ``needle`` (True) or the stream ends (False)."""
    assert proc.stderr is not None
    for line in proc.stderr:
        seen.append(line)
        if needle in line:
            return True
    return False


def unique(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"

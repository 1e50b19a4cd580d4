"""The rows of the opt-in resident worker (``--keep-warm``): the same checks, forked warm."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from common import CHECK, Row, edited_then_reused, run

KEEP_WARM = [*CHECK, "--keep-warm", "10m"]


@contextmanager
def resident(env: dict[str, str], project: Path) -> Iterator[dict[str, str]]:
    """A private resident worker for ``project`` under ``env``; stopped and removed after.

    Its directory is a fresh ``XDG_RUNTIME_DIR`` (0700) directly under /tmp: the socket's
    path must fit in 107 bytes.
    """
    runtime = Path(tempfile.mkdtemp(prefix="cmw-"))
    os.chmod(runtime, 0o700)
    warm = {**env, "XDG_RUNTIME_DIR": str(runtime)}
    try:
        # Starts it (a served verdict needs no worker, so starts none); this check runs fresh.
        start = {**warm, "CHECK_MIGRATIONS_VERDICT_CACHE": "0"}
        run(KEEP_WARM, cwd=project, env=start, ok=(0, 1))
        deadline = time.monotonic() + 60
        while not list((runtime / "check-migrations").glob("w-*.sock")):
            if time.monotonic() > deadline:
                raise RuntimeError("the resident worker did not start within 60 s")
            time.sleep(0.02)  # the bench waits for a process it does not own; no test does
        yield warm
    finally:
        run([*CHECK, "--stop"], cwd=project, env=warm)
        shutil.rmtree(runtime, ignore_errors=True)


def served(warm: dict[str, str]) -> int:
    """How many checks the resident worker forked (its log says so, one line each)."""
    logs = (Path(warm["XDG_RUNTIME_DIR"]) / "check-migrations").glob("w-*.log")
    return sum(log.read_text(errors="replace").count("served check") for log in logs)


def warm_rows(
    *,
    reps: int,
    env: dict[str, str],
    project: Path,
    model: Path,
    peer: Callable[[], float],
    names: tuple[str, str, str],
    target: float,
) -> list[Row]:
    """A model edited, then the history reused, each forked by the resident worker."""
    with resident(env, project) as warm:
        before = served(warm)
        rows = edited_then_reused(
            command=KEEP_WARM,
            reps=reps,
            env=warm,
            project=project,
            model=model,
            edits=[1000],
            peer=peer,
            names=names,
            target=target,
        )
        forked = served(warm) - before
        if forked < 2 * reps + 1:
            raise RuntimeError(f"the resident worker forked {forked} of {2 * reps + 1} checks")
    return rows


def agree_warm(env: dict[str, str], project: Path) -> tuple[bool, str]:
    """A check forked by the resident worker against a fresh --no-cache check."""
    ok = (0, 1)
    with resident(env, project) as warm:
        no_verdict = {**warm, "CHECK_MIGRATIONS_VERDICT_CACHE": "0"}
        before = served(warm)
        forked = run(KEEP_WARM, cwd=project, env=no_verdict, ok=ok)
        if served(warm) != before + 1:
            raise RuntimeError("the resident worker did not fork the compared check")
    fresh = run([*CHECK, "--no-cache"], cwd=project, env=env, ok=ok)
    same = (forked.rc, forked.out) == (fresh.rc, fresh.out)
    return same, f"exit {forked.rc} (--keep-warm) / exit {fresh.rc} (--no-cache)"

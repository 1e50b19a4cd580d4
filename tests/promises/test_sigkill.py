"""SIGKILL at random moments of every step that writes: start-up, initdb, the cache stores and
the resident worker's fork. Nothing can clean up after SIGKILL but the next run: after it,
neither the run directory nor the cache directory may hold anything of the killed runs
(no ``run-*``, no server, no worker, no ``.tmp-*`` staging, no ``.trash-*``).

Each step's window is measured here first (a faster checker must not turn the kills into
runs that finished first); the moment within it is drawn from a seeded generator.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.helpers.checker import checker_env, run_checker, start_checker, wait_for_line
from tests.helpers.fs_events import wait_until_in
from tests.helpers.paths import SCENARIOS
from tests.helpers.procfs import assert_clean, wait_pid_exit, workers_in

STARTING = "starting a throwaway PostgreSQL"
INITDB = "initialising a PostgreSQL cluster"
UPGRADING = "upgrading"
CATALOGS = "comparing the catalogs"
KILLS_PER_STEP = 4


def _timeline(args: list[str], project: Path, env: dict[str, str]) -> dict[str, float]:
    """Seconds from the spawn to each progress line, and to the exit, of one whole run."""
    began = time.monotonic()
    proc = start_checker(args, project, env)
    assert proc.stderr is not None
    seen: dict[str, float] = {}
    lines = []
    for line in proc.stderr:
        lines.append(line)
        for needle in (STARTING, INITDB, UPGRADING, CATALOGS):
            if needle in line and needle not in seen:
                seen[needle] = time.monotonic() - began
    proc.communicate(timeout=120)
    assert proc.returncode == 0, "".join(lines)
    seen["exit"] = time.monotonic() - began
    return seen


def _kill(
    args: list[str], project: Path, env: dict[str, str], after: str | None, delay: float
) -> int:
    """A check SIGKILLed ``delay`` seconds after its line ``after`` (None: after the spawn)."""
    proc = start_checker(args, project, env)
    if after is None or wait_for_line(proc, after, []):
        try:
            proc.wait(timeout=delay)  # the random moment is the point, not a synchronisation
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.communicate(timeout=120)
    return proc.returncode


def _project_copy(root: Path, i: int) -> Path:
    """The base project with a revision of its own: every run misses the migrated-db cache."""
    project = root / f"p{i}"
    shutil.copytree(SCENARIOS / "base", project, ignore=shutil.ignore_patterns("__pycache__"))
    revision = project / "versions" / "0002_notes.py"
    revision.write_text(revision.read_text() + f"\n# run {i}\n")
    return project


@pytest.fixture
def xdg() -> Iterator[Path]:
    # Short: the resident worker's socket path must fit in 107 bytes.
    path = Path(tempfile.mkdtemp(prefix="cmk-"))
    path.chmod(0o700)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_sigkill_in_every_writing_step_is_swept_by_the_next_run(
    project: Path, run_root: Path, tmp_path: Path, xdg: Path
) -> None:
    rng = random.Random(20261201)
    cache = tmp_path / "cache"
    env = checker_env(run_root, cache)
    warm_env = {**env, "XDG_RUNTIME_DIR": str(xdg)}
    warm_env.pop("CI", None)  # CI starts a resident worker only when asked, as here

    cold = _timeline([], _project_copy(tmp_path, 0), env)  # empty cache: initdb, both stores
    fresh = _timeline(["--no-cache"], project, env)
    assert run_checker(["--keep-warm", "5m"], project, warm_env).returncode == 0
    wait_until_in(
        [xdg, xdg / "check-migrations"],
        lambda: any(
            ": ready: " in p.read_text() for p in (xdg / "check-migrations").glob("w-*.log")
        ),
        "the resident worker",
    )
    forked = _timeline(["--keep-warm", "5m"], project, warm_env)
    assert INITDB in fresh, fresh

    plan: list[tuple[str, list[str], Path, dict[str, str], str | None, float]] = []
    for i in range(KILLS_PER_STEP):
        plan += [
            ("start-up", [], project, env, None, rng.uniform(0, fresh[STARTING])),
            ("initdb", ["--no-cache"], project, env, INITDB,
             rng.uniform(0, fresh[UPGRADING] - fresh[INITDB])),
            ("cache store", [], _project_copy(tmp_path, i + 1), env, CATALOGS,
             rng.uniform(0, cold["exit"] - cold[CATALOGS])),
            ("fork", ["--keep-warm", "5m"], project, warm_env, None,
             rng.uniform(0, forked[UPGRADING])),
        ]  # fmt: skip

    with ThreadPoolExecutor(max_workers=3) as pool:
        codes = list(pool.map(lambda p: (p[0], _kill(*p[1:])), plan))
    killed = [step for step, code in codes if code == -9]
    for step in ("start-up", "initdb", "cache store", "fork"):
        assert step in killed, codes  # each step really was interrupted at least once
    assert all(code in (-9, 0) for _step, code in codes), codes

    # The resident worker runs in the project's directory too: stopped first (it returns once
    # it ended). SIGKILLed, a check leaves its worker to the parent-death signal: wait for those.
    assert run_checker(["--stop"], project, warm_env).returncode == 0
    for pid in workers_in(project):
        assert wait_pid_exit(pid), f"worker {pid} outlived its SIGKILLed check"

    result = run_checker([], project, env)
    assert result.returncode == 0, result.stderr
    assert_clean(run_root, project)
    left = sorted(
        str(p.relative_to(cache))
        for pattern in (".tmp-*", ".trash-*", "*/.tmp-*", "*/.trash-*")
        for p in cache.glob(pattern)
    )
    assert left == [], left

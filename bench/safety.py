"""The safety observation's cost: the history check with it against without, same run.

    uv run python bench/safety.py [--reps N]

This repository's project in a git repository of its own whose feature branch adds its last
revision (so the history checks run: round trip, and the observation of that revision), with
every cache off (``--no-cache``) so each run upgrades, compares, round-trips. ``--safety error``
and ``--safety off`` run alternately; the ratio of the medians is the observation's cost.
Target (issue 19): at most 1.25.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from common import REPO, alternate, bench_env, caches, copy_project, run, workspace


def _feature(project: Path) -> None:
    git = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "b@example.com",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "b@example.com"}  # fmt: skip
    last = sorted((project / "alembic" / "versions").glob("*.py"))[-1]
    text = last.read_text()
    last.unlink()
    for cmd in (["add", "-A"], ["commit", "-q", "-m", "base"], ["branch", "-M", "main"],
                ["checkout", "-q", "-b", "feature"]):  # fmt: skip
        subprocess.run(["git", *cmd], cwd=project, env=git, check=True)
    last.write_text(text)
    subprocess.run(["git", "add", "-A"], cwd=project, env=git, check=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    with workspace() as tmp:
        project = copy_project(tmp / "project")
        _feature(project)
        env = {**bench_env(tmp), **caches(tmp, "safety")}
        cmd = [sys.executable, str(REPO / "tools" / "check_migrations.py"), "--no-cache"]

        def timed(mode: str) -> float:
            return run([*cmd, "--safety", mode], cwd=project, env=env, ok=(0, 1)).seconds

        timed("error")  # bytecode and the initdb cache filled before timing
        on, off = alternate(args.reps, lambda: timed("error"), lambda: timed("off"))
    print(f"history check, safety error: {on:.2f}s; safety off: {off:.2f}s; "
          f"ratio {on / off:.3f} (target <= 1.25)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

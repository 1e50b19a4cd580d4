"""The safety observation's cost: the history check with it against without, same run.

    uv run python bench/safety.py [--reps N]

This repository's project in a git repository of its own whose feature branch adds its last
revision (so the history checks run: round trip, and the observation of that revision), with
every cache off (``--no-cache``) so each run upgrades, compares, round-trips. ``--safety error``
and ``--safety off`` run alternately; the ratio of the medians is the observation's cost
(with the median of each pair's own ratio, steadier on a shared machine). Target (issue 19): at
most 1.25. Then one more ``--safety error`` run with ``-v`` says where the observation's time
goes (the worker's "safety observation's cost" line, worker/safety/run.py): the copy of the
base, its rename, the seeding, env.py and Alembic, the statements, their snapshots, the end
state's queries, the hazards and the report.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
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

        ons: list[float] = []
        offs: list[float] = []

        def timed(mode: str, into: list[float]) -> float:
            seconds = run([*cmd, "--safety", mode], cwd=project, env=env, ok=(0, 1)).seconds
            into.append(seconds)
            return seconds

        timed("error", [])  # bytecode and the initdb cache filled before timing
        on, off = alternate(args.reps, lambda: timed("error", ons), lambda: timed("off", offs))
        verbose = run([*cmd, "-v", "--safety", "error"], cwd=project, env=env, ok=(0, 1)).err
    pairs = statistics.median(a / b for a, b in zip(ons, offs, strict=True))
    print(f"history check, safety error: {on:.2f}s; safety off: {off:.2f}s; ratio {on / off:.3f} "
          f"(median of the pairs' ratios {pairs:.3f}; target <= 1.25)")  # fmt: skip
    cost = re.search(r"safety observation's cost: (.*) \([\d.]+s\)$", verbose, re.MULTILINE)
    if cost is None:
        print("no cost line in the -v run's output", file=sys.stderr)
        return 1
    print("where the observation's time goes (one -v run):")
    for part in cost.group(1).split(", "):
        print(f"  {part}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

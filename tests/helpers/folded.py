"""The folded comparison's harness (worker/autogenerate/folded.py): a check on a reused
migrated database at head, held to ``--no-cache``'s answer, counting env.py's runs.

env.py prints ``ENVPY_RUN`` on stderr each time it runs (the worker's stderr is the check's), so
a test sees whether the check ran it once (folded) or twice. The verdict cache is off: the
migrated database is under test.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers.checker import checker_env
from tests.helpers.paths import SCENARIOS, SHIM

RUN_MARK = "ENVPY_RUN"
STORED = "cached the migrated database"
REUSED = "using cached migrated database"
AT_HEAD = "upgrading 0 revision(s) to head"
# The phase stamps -v prints, in the order bench/realrows.py reads them.
STAMPS = (AT_HEAD, "comparing the database with the models",
          "env.py configured again; autogenerate compares")  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    """What a user sees of a check (its exit code and stdout), and its stderr."""

    exit: int
    stdout: str
    stderr: str = field(compare=False, repr=False)

    @property
    def errors(self) -> list[str]:
        """The one-line errors on stderr (a failure's; -v's traceback differs by design)."""
        return [
            line for line in self.stderr.splitlines() if line.startswith("check-migrations: error")
        ]

    @property
    def envpy_runs(self) -> int:
        return self.stderr.count(RUN_MARK)

    def describe(self) -> str:
        tail = "\n    ".join(self.stderr.strip().splitlines()[-8:])
        return f"exit {self.exit}\n{self.stdout}\n    {tail}"


@dataclass
class FoldCheck:
    """One project copy, its own migrated-database cache, and the flags it runs with."""

    project: Path
    env: dict[str, str]

    def run(self, *extra: str) -> Outcome:
        # A subcommand (``revision``) comes first, its options after it.
        sub = list(extra[:1]) if extra[:1] == ("revision",) else []
        proc = subprocess.run(
            [sys.executable, str(SHIM), *sub, "-v", *extra[len(sub) :]],
            cwd=self.project,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        return Outcome(proc.returncode, proc.stdout, proc.stderr)


def fold_check(tmp_path: Path, run_dir: Path, scenario: str = "base") -> FoldCheck:
    """The scenario copied, its env.py marking each run on stderr."""
    import shutil

    project = tmp_path / "project"
    shutil.copytree(SCENARIOS / scenario, project, ignore=shutil.ignore_patterns("__pycache__"))
    env_py = next(p for p in (project / "env.py", project / "alembic" / "env.py") if p.exists())
    env_py.write_text(f"import sys\nprint({RUN_MARK!r}, file=sys.stderr)\n" + env_py.read_text())
    env = checker_env(run_dir, run_dir / "cache", pristine=True)
    env["CHECK_MIGRATIONS_VERDICT_CACHE"] = "0"
    return FoldCheck(project, env)


def stored(check: FoldCheck, *args: str) -> Outcome:
    """The first check: replays the history and stores the migrated database."""
    first = check.run(*args)
    assert first.exit in (0, 1), first.describe()
    assert STORED in first.stderr, first.describe()
    return first


def folded_agrees(check: FoldCheck, *args: str, twin: FoldCheck | None = None) -> Outcome:
    """A check on the reused database at head runs env.py once and says what --no-cache says
    (which runs it twice: an upgrade from empty, then the comparison). ``twin``: a copy of the
    project for the --no-cache check, when the check writes into its own (the writer)."""
    reused = check.run(*args)
    assert REUSED in reused.stderr, reused.describe()
    assert AT_HEAD in reused.stderr, reused.describe()
    assert "replaying the history" not in reused.stderr, reused.describe()
    fresh = (twin or check).run(*args, "--no-cache")
    assert reused == fresh, f"reused {reused.describe()}\n  != --no-cache {fresh.describe()}"
    assert reused.errors == fresh.errors, f"{reused.errors} != {fresh.errors}"
    assert fresh.envpy_runs >= 2, fresh.describe()
    assert reused.envpy_runs == fresh.envpy_runs - 1, (
        f"env.py ran {reused.envpy_runs} time(s) on the reused database, "
        f"{fresh.envpy_runs} with --no-cache:\n{reused.describe()}"
    )
    positions = [reused.stderr.find(stamp) for stamp in STAMPS]
    assert -1 not in positions, reused.describe()
    assert positions == sorted(positions), reused.describe()
    return reused

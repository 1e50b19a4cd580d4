"""The resident worker's tests' shared parts: one test's private runtime directory, the
checks run against it, and the project edits whose verdicts are compared.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.helpers.checker import Finished, checker_env, run_checker, shared_dir
from tests.helpers.edits import edit, write_third_revision
from tests.helpers.fs_events import wait_until_in
from tests.helpers.procfs import processes_mentioning

__all__ = [
    "Warm",
    "drift",
    "edit",
    "failing_revision",
    "hang",
    "in_sync",
    "model_import_error",
    "same",
    "warm_state",
]


class Warm:
    """One test's private runtime directory, and the checks run against it."""

    def __init__(self, xdg: Path, run_root: Path) -> None:
        self.xdg = xdg
        self.dir = xdg / "check-migrations"
        self.run_root = run_root

    def env(self, **extra: str) -> dict[str, str]:
        env = checker_env(self.run_root, extra={"XDG_RUNTIME_DIR": str(self.xdg)})
        env.pop("CI", None)  # the machine's own CI variable; a test sets it when it means to
        return {**env, **extra}

    def check(self, project: Path, *args: str, **extra: str) -> Finished:
        return run_checker(list(args), project, self.env(**extra))

    def files(self) -> list[str]:
        return sorted(p.name for p in self.dir.iterdir()) if self.dir.exists() else []

    def pids(self) -> list[int]:
        return [int(p.read_text().split()[0]) for p in sorted(self.dir.glob("w-*.pid"))]

    def served(self) -> int:
        return sum(p.read_text().count(": served check ") for p in self.dir.glob("w-*.log"))

    def ready(self) -> int:
        """Resident workers that said they listen (after binding, listening and importing)."""
        return sum(p.read_text().count(": ready: ") for p in self.dir.glob("w-*.log"))

    def wait_ready(self, count: int = 1) -> None:
        """Until ``count`` resident workers have written their ``ready:`` line."""
        wait_until_in(
            [self.xdg, self.dir], lambda: self.ready() >= count, f"{count} ready resident worker"
        )

    def processes(self) -> list[int]:
        """Live processes started from this directory: resident workers and their children."""
        return processes_mentioning(str(self.dir))


# Where the scratch database's server came from: a throwaway one, or the warm server.
_SERVER_LINE = re.compile(
    r"^check-migrations: (starting a throwaway PostgreSQL|using the warm PostgreSQL .*"
    r"|keep-warm: started a warm server .*)\n",
    re.MULTILINE,
)


def same(result: Finished) -> tuple[int, str, str]:
    """A check's verdict as a user sees it, without the elapsed time of each progress line
    and without the line saying which server it used."""
    stderr = re.sub(r" \(\d+\.\ds\)$", "", result.stderr, flags=re.MULTILINE)
    return result.returncode, result.stdout, _SERVER_LINE.sub("", stderr)


DRIFT = "    body: Mapped[str] = mapped_column(String(500))\n"


def in_sync(project: Path) -> None:
    pass


def drift(project: Path) -> None:
    edit(
        project / "models.py",
        DRIFT,
        DRIFT + "    title: Mapped[str | None] = mapped_column(String(80))\n",
    )


def model_import_error(project: Path) -> None:
    edit(
        project / "models.py",
        "from sqlalchemy import",
        "import no_such_module\nfrom sqlalchemy import",
    )


def failing_revision(project: Path) -> None:
    write_third_revision(
        project, '    op.execute("ALTER TABLE no_such_table ADD COLUMN x int")', slug="bad"
    )


def hang(project: Path) -> None:
    write_third_revision(project, '    op.execute("SELECT pg_sleep(600)")')


@contextlib.contextmanager
def warm_state() -> Iterator[Warm]:
    """A private XDG_RUNTIME_DIR and run directory; what the test started is stopped after.

    Short paths: a Unix socket's path must fit in 107 bytes.
    """
    xdg = Path(tempfile.mkdtemp(prefix="cmw-"))
    xdg.chmod(0o700)
    with shared_dir("cmw-run-") as run_root:
        state = Warm(xdg, run_root)
        try:
            yield state
        finally:
            # Even after a failure: stop what this test started (and, failing that, kill it).
            with contextlib.suppress(Exception):
                run_checker(["--stop"], xdg, state.env())
            for pid in state.processes():
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            shutil.rmtree(xdg, ignore_errors=True)

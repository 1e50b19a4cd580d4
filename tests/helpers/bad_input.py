"""A bad-input case and what its set-up may use (the cases: tests/promises/bad_input/)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from migration_check.cli.app import EXIT_ERROR
from tests.helpers.edits import edit
from tests.helpers.prereq import require_mount
from tests.helpers.second_server import SecondServer

Setup = Callable[[Path, "Ctx"], list[str]]


@dataclass
class Ctx:
    """What a case may need beyond its project: the second server, a scratch directory."""

    tmp: Path
    shared: Path  # traversable by the server user, unlike tmp_path
    server: SecondServer | None = None
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    setup: Setup
    scenario: str = "base"
    exit: int = EXIT_ERROR
    # Regexes the one stderr line (or stdout, for exit 1) must match.
    expect: tuple[str, ...] = ()
    needs_server: bool = False
    root: bool = False  # the workflow runs these in its root job


def write_revision(project: Path, rev: str, down: str | None, body: str, name: str = "") -> Path:
    path = project / "versions" / f"{rev}_{name or 'change'}.py"
    path.write_text(
        f'"""{name or "change"}\n\nRevision ID: {rev}\n"""\n'
        "import sqlalchemy as sa\nfrom alembic import op\n\n"
        f"revision = {rev!r}\ndown_revision = {down!r}\n"
        "branch_labels = None\ndepends_on = None\n\n\n"
        f"def upgrade() -> None:\n{body}\n\n\ndef downgrade() -> None:\n    pass\n"
    )
    return path


def env_prepend(project: Path, code: str) -> None:
    env = project / "env.py"
    edit(env, "config = context.config\n", f"config = context.config\n{code}\n")


# What a case mounted, unmounted by the ``ctx`` fixture (test_bad_input.py) after it.
MOUNTED: list[Path] = []


def mount(args: list[str]) -> None:
    require_mount(args)
    MOUNTED.append(Path(args[-1]))

"""The bad-input suites' shared parts: a case, what it may use, and the one verdict it must get.

Every case ends in exit 2 and ONE stderr line naming the culprit and the fix (or, for the two
that are findings, exit 1 and the finding on stdout), never a password (tests/promises/bad_input/).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from migration_check.cli.app import EXIT_ERROR, EXIT_FINDINGS, main
from tests.helpers.edits import edit
from tests.helpers.prereq import require_mount
from tests.helpers.scenarios import ScenarioFactory
from tests.helpers.second_server import PASSWORDS, SecondServer

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


# What a case mounted, unmounted by the ``ctx`` fixture (conftest.py) after it.
MOUNTED: list[Path] = []


def mount(args: list[str]) -> None:
    require_mount(args)
    MOUNTED.append(Path(args[-1]))


def case_params(cases: Mapping[str, Case]) -> list[object]:
    return [pytest.param(k, marks=[pytest.mark.root] if c.root else []) for k, c in cases.items()]


def assert_bad_input(
    spec: Case,
    scenario: ScenarioFactory,
    ctx: Ctx,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Run the case's check in this process and hold it to the one-line verdict."""
    if spec.needs_server:
        ctx.server = request.getfixturevalue("real_server")
    project = scenario(spec.scenario)
    args = spec.setup(project, ctx)
    monkeypatch.setenv("CHECK_MIGRATIONS_QUIET", "1")
    for key, value in ctx.env.items():
        monkeypatch.setenv(key, value)

    assert main(args) == spec.exit
    out, err = capsys.readouterr()
    for secret in PASSWORDS:
        assert secret not in out + err
    if spec.exit == EXIT_FINDINGS:
        assert err == ""
        for pattern in spec.expect:
            assert re.search(pattern, out), f"{pattern!r} not in:\n{out}"
        return
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("check-migrations: error: "), err
    for pattern in spec.expect:
        assert re.search(pattern, lines[0]), f"{pattern!r} not in:\n{lines[0]}"
    assert out == ""

"""The safety observation in the text and GitHub formats: a table per new revision, annotations
at the op's line (errors for hazards, warnings for advice)."""

from __future__ import annotations

import re

import pytest

from migration_check.cli.app import EXIT_FINDINGS, main
from tests.helpers.safety import project_with
from tests.helpers.scenarios import ScenarioFactory

UNSAFE = 'op.create_index("ix_users_name", "users", ["name"])'
UNDO = 'op.drop_index("ix_users_name", "users")'


@pytest.fixture(autouse=True)
def _git(git_identity: None) -> None:
    """Every test here commits a base and adds a revision on a branch."""


def test_text_has_a_table_per_revision_and_the_safe_form(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project_with(scenario, UNSAFE, UNDO)
    assert main(["--no-cache"]) == EXIT_FINDINGS
    out = capsys.readouterr().out
    lines = out.splitlines()
    head = lines.index("safety of revision 0100 (versions/0100_new.py)")
    assert lines[head + 1].split() == ["line", "statement", "locks", "(existing", "tables)",
                                       "rewrite", "scan", "verdict"]  # fmt: skip
    row = lines[head + 2]
    pattern = (r"\s+16\s+CREATE INDEX ix_users_name ON users \(name\)\s+users SHARE\s+-\s+users"
               r"\s+create_index, lock_timeout$")  # fmt: skip
    assert re.fullmatch(pattern, row), row
    assert "versions/0100_new.py:16: users (ix_users_name): builds ix_users_name under SHARE" in out
    assert (
        "op.create_index('ix_users_name', 'users', ['name'], postgresql_concurrently=True)" in out
    )
    assert "a new revision would lock or rewrite existing tables (safety)" in out
    assert "Generate the missing revision" not in out  # a safe form is not a missing revision


def test_github_annotations_at_the_revision_line(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project_with(scenario, UNSAFE, UNDO)
    assert main(["--no-cache", "--format", "github"]) == EXIT_FINDINGS
    out = capsys.readouterr().out
    errors = [ln for ln in out.splitlines() if ln.startswith("::error ")]
    warnings = [ln for ln in out.splitlines() if ln.startswith("::warning ")]
    assert len(errors) == 1
    assert errors[0].startswith("::error file=versions/0100_new.py,line=16,")
    # The title says what kind of problem it is: a safe form, not a missing revision.
    assert ",title=Unsafe migration%3A " in errors[0]
    assert "%0ASafe form:%0Awith op.get_context().autocommit_block()" in errors[0]
    assert len(warnings) == 1
    assert warnings[0].startswith("::warning file=versions/0100_new.py,line=16,")
    assert "lock_timeout" in warnings[0]


def test_concurrently_outside_autocommit_block_names_the_fix(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """With safety off it fails the check's own upgrade (exit 2): the one line says how to run it.

    (With safety on it is a finding: test_concurrently.py.)"""
    from migration_check.cli.app import EXIT_ERROR

    project_with(
        scenario,
        'op.create_index("ix_users_name", "users", ["name"], postgresql_concurrently=True)',
        UNDO,
    )
    assert main(["--no-cache", "--safety", "off"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "CREATE INDEX CONCURRENTLY cannot run inside a transaction block" in err
    assert "`with op.get_context().autocommit_block():` around the op" in err
    assert "does not build a database from empty" not in err

"""History checks against the base: edited and stale revisions, the base ref, staged files.

Each story runs in a git repository made here (helpers/history.py).
"""

from __future__ import annotations

import os

import pytest

from migration_check.cli.app import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK, main
from tests.helpers.edits import edit_all
from tests.helpers.git import git
from tests.helpers.history import REVISION, add_revision, repo_on_feature
from tests.helpers.procfs import processes
from tests.helpers.scenarios import ScenarioFactory

# An outer hook's git must not reach the stories' repositories (conftest.py).
pytestmark = pytest.mark.usefixtures("git_identity")


def test_edited_merged_revision(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("history")
    repo_on_feature(project)
    merged = project / "versions" / "0002_notes.py"
    # Docstring and comment edits are not findings.
    edit_all(merged, '"""notes\n', '"""notes, with a longer description\n')
    edit_all(merged, "def upgrade() -> None:\n", "def upgrade() -> None:\n    # why: notes\n")
    assert main([]) == EXIT_OK
    capsys.readouterr()
    # A change of what upgrade() does is.
    edit_all(merged, "sa.String(500)", "sa.String(600)")
    edit_all(project / "models.py", "String(500)", "String(600)")
    assert main([]) == EXIT_FINDINGS
    out = capsys.readouterr().out
    line = merged.read_text().splitlines().index("def upgrade() -> None:") + 1
    assert (
        f"versions/0002_notes.py:{line}: 0002: upgrade() of revision 0002 changed since main: "
        "databases already at 0002 never run it again [revision_modified]"
    ) in out
    assert "fix: revert the edit and put the change in a new revision" in out


def test_stale_down_revision(scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]) -> None:
    project = scenario("history")
    repo_on_feature(project)
    add_revision(project, downgrade='op.drop_column("users", "nickname")')
    git(project, "commit", "-q", "-m", "add nickname")
    # Meanwhile main moved on: someone merged their own 0003.
    git(project, "checkout", "-q", "main")
    (project / "versions" / "0003_tags.py").write_text(
        REVISION.format(message="tags", rev="0003", down="0002", downgrade="pass")
        .replace('"nickname", sa.String(50)', '"tag", sa.String(20)')
    )  # fmt: skip
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "tags")
    git(project, "checkout", "-q", "feature")
    assert main([]) == EXIT_FINDINGS
    out = capsys.readouterr().out
    assert (
        "versions/0003_add_nickname.py:1: 0003: revision 0003 builds on 0002, but main has "
        "moved on to head 0003: the branch went stale [stale_revision]"
    ) in out
    assert 'alembic merge heads -m "merge heads"' in out
    # Measured from an older base, the same branch is not stale.
    assert main(["--base-ref", "main~1"]) == EXIT_OK


def test_bad_base_ref_is_one_line(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = scenario("history")
    repo_on_feature(project)
    # No verdict cache: the worker is started before the base is asked of git (run/check.py).
    monkeypatch.setenv("CHECK_MIGRATIONS_VERDICT_CACHE", "0")
    assert main(["--base-ref", "no-such-branch"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith("check-migrations: error: --base-ref no-such-branch: not a commit in")
    )
    assert "Traceback" not in err
    assert _my_workers() == [], "the worker started for the check outlived its error"


def _my_workers() -> list[int]:
    """Worker processes this test process started and that are still there."""
    return [
        p.pid
        for p in processes()
        if p.ppid == os.getpid() and b"migration_check.worker" in p.cmdline
    ]


def test_hook_measures_from_the_staged_files(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under pre-commit (PRE_COMMIT=1) the new revisions are the ones the commit adds."""
    project = scenario("history")
    repo_on_feature(project)
    add_revision(project, downgrade="pass")
    monkeypatch.setenv("PRE_COMMIT", "1")
    assert main([]) == EXIT_FINDINGS
    assert "[downgrade_incomplete]" in capsys.readouterr().out
    git(project, "commit", "-q", "-m", "add nickname", "--no-verify")
    # Committed: the next commit does not add it, so it is not round-tripped again.
    assert main([]) == EXIT_OK


def test_no_base_branch_is_said_once(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """A repository whose only branch is not a default one: off, and --base-ref turns it on."""
    project = scenario("history")
    git(project, "init", "-q", "-b", "trunk")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "base")
    add_revision(project, downgrade="pass")
    assert main([]) == EXIT_OK
    err = capsys.readouterr().err
    assert err.count("history checks skipped: no base branch") == 1
    assert main(["--base-ref", "trunk"]) == EXIT_FINDINGS
    assert "[downgrade_incomplete]" in capsys.readouterr().out

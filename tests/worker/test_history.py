"""History checks: labelled heads, round trips of new revisions, edited and stale revisions.

Each story runs in a real git repository with a ``main`` branch made here, as a user has it:
the scenario is committed on ``main``, the change happens on a feature branch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from migration_check.cli.app import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK, main
from tests.helpers.edits import NICKNAME, edit_all
from tests.helpers.git import git
from tests.helpers.procfs import processes
from tests.helpers.scenarios import ScenarioFactory

# An outer hook's git must not reach the stories' repositories (conftest.py).
pytestmark = pytest.mark.usefixtures("git_identity")

REVISION = '''"""{message}

Revision ID: {rev}
Revises: {down}
"""
import sqlalchemy as sa
from alembic import op

revision = "{rev}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("nickname", sa.String(50), nullable=True))


def downgrade() -> None:
    {downgrade}
'''


def _repo_on_feature(project: Path) -> None:
    """The scenario committed on main, and a feature branch checked out from it."""
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "base")
    git(project, "checkout", "-q", "-b", "feature")


def _add_revision(project: Path, downgrade: str, *, stage: bool = True) -> Path:
    edit_all(project / "models.py", *NICKNAME)
    path = project / "versions" / "0003_add_nickname.py"
    path.write_text(
        REVISION.format(message="add nickname", rev="0003", down="0002", downgrade=downgrade)
    )
    if stage:
        git(project, "add", "-A")
    return path


# --- heads ---------------------------------------------------------------------------------


def test_labelled_branches_are_checked_together(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """No git here: the history checks are skipped, said once on stderr; the rest is checked."""
    scenario("branches")
    assert main([]) == EXIT_OK
    out, err = capsys.readouterr()
    assert "3 revision(s) applied, heads 0002, 0003" in out
    assert err.count("history checks skipped: not a git repository") == 1


def test_unlabeled_heads_are_a_finding(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("branches")
    for name in ("0002_notes.py", "0003_name_index.py"):
        path = project / "versions" / name
        edit_all(path, path.read_text().split("branch_labels = ")[1].split("\n")[0], "None")
    assert main([]) == EXIT_FINDINGS
    out = capsys.readouterr().out
    assert "the history has 2 heads without branch labels: 0002, 0003 [multiple_heads]" in out


def test_two_heads_on_one_label_are_a_finding(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two developers each added a revision on expand: Alembic cannot pick expand@head."""
    project = scenario("branches")
    for rev in ("0004", "0005"):
        (project / "versions" / f"{rev}_expand.py").write_text(
            REVISION.format(message=rev, rev=rev, down="0002", downgrade="pass").replace(
                'op.add_column("users", sa.Column("nickname", sa.String(50), nullable=True))',
                "pass",
            )
        )
    assert main([]) == EXIT_FINDINGS
    out = capsys.readouterr().out
    heads = "0003 (contract), 0004 (expand), 0005 (expand)"
    assert f"branch expand has more than one head: {heads}" in out


def test_writer_on_labelled_branches_needs_head(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("branches")
    edit_all(
        project / "models.py",
        "    body: Mapped[str] = mapped_column(String(500))\n",
        "    body: Mapped[str] = mapped_column(String(500))\n"
        "    title: Mapped[str | None] = mapped_column(String(50))\n",
    )
    assert main(["revision", "-m", "title"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "revision: the history has several heads: pass --head contract@head" in err
    args = ["revision", "-m", "title", "--head", "expand@head", "--rev-id", "0004"]
    assert main(args) == EXIT_OK
    assert 'down_revision = "0002"' in (project / "versions" / "0004_title.py").read_text()
    assert main([]) == EXIT_OK
    assert "heads 0003, 0004" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("setting", "labelled", "expected"),
    [
        ("heads = 2", False, EXIT_OK),
        ("heads = 3", False, EXIT_FINDINGS),
        ('heads = ["expand", "contract"]', True, EXIT_OK),
        ('heads = ["expand"]', True, EXIT_FINDINGS),
        ('heads = ["expand", "contract"]', False, EXIT_FINDINGS),
    ],
)
def test_heads_setting_names_the_expected_heads(
    setting: str, labelled: bool, expected: int, scenario: ScenarioFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    project = scenario("branches")
    (project / "pyproject.toml").write_text(f"[tool.check-migrations]\n{setting}\n")
    if not labelled:
        for name in ("0002_notes.py", "0003_name_index.py"):
            path = project / "versions" / name
            edit_all(path, path.read_text().split("branch_labels = ")[1].split("\n")[0], "None")
    assert main([]) == expected
    out = capsys.readouterr().out
    if expected == EXIT_FINDINGS:
        assert "the heads setting expects" in out


def test_bad_heads_setting_is_one_line(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("branches")
    (project / "pyproject.toml").write_text("[tool.check-migrations]\nheads = 0\n")
    assert main([]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "invalid value 0 for heads (a number of heads, or a list of branch labels)" in err


# --- round trips -----------------------------------------------------------------------------


def test_written_revision_round_trips(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """The writer's revision on a feature branch: the round trip runs and finds nothing."""
    project = scenario("history")
    _repo_on_feature(project)
    edit_all(project / "models.py", *NICKNAME)
    assert main(["revision", "-m", "add nickname", "--rev-id", "0003"]) == EXIT_OK
    git(project, "add", "-A")
    capsys.readouterr()
    assert main([]) == EXIT_OK
    out, err = capsys.readouterr()
    assert "round trip of 0003" in err
    assert "history checks skipped" not in err
    assert "head 0003" in out


def test_downgrade_that_forgets_a_column(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("history")
    _repo_on_feature(project)
    path = _add_revision(project, downgrade="pass")
    assert main([]) == EXIT_FINDINGS
    out = capsys.readouterr().out
    line = path.read_text().splitlines().index("def downgrade() -> None:") + 1
    assert (
        f"versions/0003_add_nickname.py:{line}: 0003: downgrade does not undo the upgrade: "
        "column public.users.nickname is left behind [downgrade_incomplete]"
    ) in out
    assert "[reupgrade_failed]" in out  # the column is still there when 0003 runs again
    assert "a new revision's downgrade does not undo its upgrade" in out.splitlines()[-1]


def test_downgrade_that_raises(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("history")
    _repo_on_feature(project)
    _add_revision(project, downgrade='op.drop_column("users", "no_such_column")')
    assert main([]) == EXIT_FINDINGS
    out = capsys.readouterr().out
    assert "0003: downgrade failed: revision 0003 (versions/0003_add_nickname.py) failed: " in out
    assert 'column "no_such_column" of relation "users" does not exist' in out
    assert "[downgrade_failed]" in out
    assert "does not build a database from empty" not in out


def test_round_trip_is_off_without_new_revisions(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """On main itself, nothing new: a downgrade that would fail is not run."""
    project = scenario("history")
    _add_revision(project, downgrade='op.drop_column("users", "no_such_column")', stage=False)
    _repo_on_feature(project)  # the broken downgrade is now part of main: not new
    assert main([]) == EXIT_OK
    assert "round trip" not in capsys.readouterr().err


# --- edited and stale revisions --------------------------------------------------------------


def test_edited_merged_revision(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("history")
    _repo_on_feature(project)
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
    _repo_on_feature(project)
    _add_revision(project, downgrade='op.drop_column("users", "nickname")')
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
    _repo_on_feature(project)
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
        if p.ppid == os.getpid() and b"migration_check.worker.main" in p.cmdline
    ]


def test_hook_measures_from_the_staged_files(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under pre-commit (PRE_COMMIT=1) the new revisions are the ones the commit adds."""
    project = scenario("history")
    _repo_on_feature(project)
    _add_revision(project, downgrade="pass")
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
    _add_revision(project, downgrade="pass")
    assert main([]) == EXIT_OK
    err = capsys.readouterr().err
    assert err.count("history checks skipped: no base branch") == 1
    assert main(["--base-ref", "trunk"]) == EXIT_FINDINGS
    assert "[downgrade_incomplete]" in capsys.readouterr().out


def test_round_trip_on_database_url_leaves_nothing(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """The round trip rebuilds its scratch database on the user's server: that one only."""
    from tests.helpers.second_server import second_server

    project = scenario("history")
    _repo_on_feature(project)
    _add_revision(project, downgrade="pass")
    with second_server() as server:
        before, databases = server.dump(), server.databases()
        assert main(["--database-url", server.url()]) == EXIT_FINDINGS
        assert "[downgrade_incomplete]" in capsys.readouterr().out
        assert server.dump() == before
        assert server.databases() == databases


def test_downgrade_that_forgets_a_function(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """Objects only migrations create (functions, triggers, views) must go on the way down too."""
    project = scenario("history")
    _repo_on_feature(project)
    path = project / "versions" / "0003_touch.py"
    path.write_text(
        REVISION.format(message="touch", rev="0003", down="0002", downgrade="pass").replace(
            'op.add_column("users", sa.Column("nickname", sa.String(50), nullable=True))',
            "op.execute(\"CREATE FUNCTION touch() RETURNS int LANGUAGE sql AS 'SELECT 1'\")",
        )
    )
    assert main([]) == EXIT_FINDINGS
    out = capsys.readouterr().out
    assert (
        "0003: downgrade does not undo the upgrade: function public.touch() is left behind" in out
    )


def test_base_caught_on_the_way_up_matches_the_replay(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shortcut (base schema read during the upgrade) gives the replay's verdict.

    Without the cache, and on a cold cache, the upgrade passes through the base's state and the
    round trip uses it; once the cache holds the new revision it must replay the base. Same
    findings each time, for a downgrade that leaves a column, a function and an index behind.
    """
    # The worker's two paths are under test: the verdict cache would answer the third run.
    monkeypatch.setenv("CHECK_MIGRATIONS_VERDICT_CACHE", "0")
    project = scenario("history")
    _repo_on_feature(project)
    path = _add_revision(project, downgrade="pass")
    edit_all(
        path,
        '    op.add_column("users", sa.Column("nickname", sa.String(50), nullable=True))\n',
        '    op.add_column("users", sa.Column("nickname", sa.String(50), nullable=True))\n'
        "    op.execute(\"CREATE FUNCTION touch() RETURNS int LANGUAGE sql AS 'SELECT 1'\")\n"
        '    op.create_index("ix_notes_body", "notes", ["body"])\n',
    )
    edit_all(
        project / "models.py",
        "    body: Mapped[str] = mapped_column(String(500))\n",
        "    body: Mapped[str] = mapped_column(String(500), index=True)\n",
    )
    verdicts = []
    for args, how in [
        (["--no-cache"], "base schema caught on the way up"),
        ([], "base schema caught on the way up"),  # cold cache: stores the database at head
        ([], "base replayed"),  # the cached database already holds 0003
    ]:
        assert main([*args, "--format", "json"]) == EXIT_FINDINGS
        out, err = capsys.readouterr()
        assert f"round trip of 0003: downgrade, compare, upgrade ({how})" in err
        verdicts.append(json.loads(out)["findings"])
    assert verdicts[0] == verdicts[1] == verdicts[2]
    [incomplete] = [f for f in verdicts[0] if f["kind"] == "downgrade_incomplete"]
    for left in ("column public.users.nickname", "function public.touch()",
                 "index public.notes.ix_notes_body"):  # fmt: skip
        assert f"{left} is left behind" in incomplete["message"]

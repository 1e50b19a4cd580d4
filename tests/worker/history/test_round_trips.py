"""History checks: each new revision downgraded and upgraded again, and what that catches.

Each story runs in a git repository made here (helpers/history.py).
"""

from __future__ import annotations

import json

import pytest

from migration_check.cli.app import EXIT_FINDINGS, EXIT_OK, main
from tests.helpers.edits import NICKNAME, edit_all
from tests.helpers.git import git
from tests.helpers.history import REVISION, add_revision, repo_on_feature
from tests.helpers.scenarios import ScenarioFactory

# An outer hook's git must not reach the stories' repositories (conftest.py).
pytestmark = pytest.mark.usefixtures("git_identity")


def test_written_revision_round_trips(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """The writer's revision on a feature branch: the round trip runs and finds nothing."""
    project = scenario("history")
    repo_on_feature(project)
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
    repo_on_feature(project)
    path = add_revision(project, downgrade="pass")
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
    repo_on_feature(project)
    add_revision(project, downgrade='op.drop_column("users", "no_such_column")')
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
    add_revision(project, downgrade='op.drop_column("users", "no_such_column")', stage=False)
    repo_on_feature(project)  # the broken downgrade is now part of main: not new
    assert main([]) == EXIT_OK
    assert "round trip" not in capsys.readouterr().err


def test_round_trip_on_database_url_leaves_nothing(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """The round trip rebuilds its scratch database on the user's server: that one only."""
    from tests.helpers.second_server import second_server

    project = scenario("history")
    repo_on_feature(project)
    add_revision(project, downgrade="pass")
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
    repo_on_feature(project)
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
    repo_on_feature(project)
    path = add_revision(project, downgrade="pass")
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

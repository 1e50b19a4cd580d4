"""``check-migrations revision`` on a project without a naming convention (``alembic init``'s):
an unnamed UNIQUE constraint is written under the name PostgreSQL gives it, so its downgrade can
drop it and its safe form can be written; committed as written, the check passes."""

from __future__ import annotations

import pytest

from migration_check.cli.app import EXIT_OK, main
from tests.helpers.edits import edit
from tests.helpers.git import git
from tests.helpers.history import repo_on_feature
from tests.helpers.scenarios import ScenarioFactory

NAME = "    name: Mapped[str | None] = mapped_column(String(100))\n"


def test_an_unnamed_unique_is_written_under_postgresqls_name_and_passes(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str], git_identity: None
) -> None:
    project = scenario("conn_sync")
    repo_on_feature(project)
    edit(project / "models.py", NAME, NAME.replace("String(100))", "String(100), unique=True)"))
    assert main(["revision", "-m", "unique name", "--rev-id", "0003"]) == EXIT_OK
    out, err = capsys.readouterr()
    (path,) = out.split()
    text = (project / path).read_text()
    assert "constraint(None" not in text, text
    assert "create_unique_constraint(None" not in text, text
    assert "ADD CONSTRAINT users_name_key UNIQUE USING INDEX users_name_key" in text
    assert "op.drop_constraint('users_name_key', 'users', type_='unique')" in text
    assert "as users_name_key, the name PostgreSQL gives it" in err
    git(project, "add", "-A")
    # The history checks run: the round trip (the downgrade drops it) and the safety observation.
    assert main(["--no-cache"]) == EXIT_OK, capsys.readouterr().out

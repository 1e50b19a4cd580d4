"""SQLModel models with a citext column, through a sync env.py and an asyncpg one.

These were right before the extension work (issue 17): kept so here. The truth is plain
Alembic's ``alembic check`` on a database ``alembic upgrade head`` built.
"""

from __future__ import annotations

import shutil

import pytest

from migration_check.cli.app import EXIT_FINDINGS, EXIT_OK, main
from tests.helpers.edits import edit_all
from tests.helpers.plain_alembic import alembic, ok
from tests.helpers.reports import check_json
from tests.helpers.scenarios import ScenarioFactory

AGE = "    age: int | None = None\n"
POWER = (AGE, AGE + "    power: str | None = None\n")


@pytest.mark.parametrize("env", ["sync", "asyncpg"])
def test_sqlmodel_and_citext(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str], scratch_url: str, env: str
) -> None:
    project = scenario("ext_sqlmodel")
    # Truth, from the sync env.py: the history matches the models, until a field is added.
    ok(alembic(project, scratch_url, "upgrade", "head"))
    ok(alembic(project, scratch_url, "check"))
    if env == "asyncpg":
        shutil.copy(project / "env_async.py", project / "env.py")
        (project / ".env").write_text("DATABASE_URL=postgresql+asyncpg://app:app@localhost/app\n")
    assert main([]) == EXIT_OK
    assert "models and migrations agree" in capsys.readouterr().out

    edit_all(project / "models.py", *POWER)
    code, doc = check_json(capsys)
    assert code == EXIT_FINDINGS
    (finding,) = doc["findings"]
    assert (finding["kind"], finding["table"], finding["column"]) == (
        "add_column", "heroes", "power"
    )  # fmt: skip
    line = (project / "models.py").read_text().splitlines().index(POWER[1].splitlines()[1]) + 1
    assert (finding["file"], finding["line"]) == ("models.py", line)
    assert "sqlmodel.sql.sqltypes.AutoString()" in finding["op"]

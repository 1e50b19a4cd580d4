"""The writer without its template: one line naming ``script.py.mako`` and how to restore it.

A project that deleted (or never committed) ``script.py.mako`` got "internal error:
FileNotFoundError" from ``check-migrations revision``: a user's project can cause it, so it is
the project's error, exit 2, with the fix.
"""

from __future__ import annotations

import pytest

from migration_check.cli.app import EXIT_ERROR, main
from tests.helpers.edits import NICKNAME
from tests.helpers.scenarios import ScenarioFactory


def test_a_missing_template_is_the_projects_error(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("history")
    models = project / "models.py"
    models.write_text(models.read_text().replace(*NICKNAME))
    (project / "script.py.mako").unlink()
    before = sorted(p.name for p in (project / "versions").iterdir())
    assert main(["revision", "-m", "add nickname", "--rev-id", "0003"]) == EXIT_ERROR
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("check-migrations: error:")]
    assert len(lines) == 1, err
    assert "script.py.mako is missing" in lines[0]
    assert "alembic/templates/generic/script.py.mako" in lines[0]
    assert "internal error" not in err
    assert "Traceback" not in err
    assert sorted(p.name for p in (project / "versions").iterdir()) == before

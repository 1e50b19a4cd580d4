"""A UNIQUE constraint without a name (no naming convention, as ``alembic init`` leaves a
project) is one change: autogenerate's finding, not a second one from the catalog under the
name PostgreSQL would give it (``users_name_key``)."""

from __future__ import annotations

import json

import pytest

from migration_check.cli.app import EXIT_FINDINGS, main
from tests.helpers.edits import edit
from tests.helpers.scenarios import ScenarioFactory

NAME = "    name: Mapped[str | None] = mapped_column(String(100))\n"


def test_an_unnamed_unique_constraint_is_one_finding(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("conn_sync")
    edit(project / "models.py", NAME, NAME.replace("String(100))", "String(100), unique=True)"))
    assert main(["--format", "json", "--no-cache"]) == EXIT_FINDINGS
    (finding,) = json.loads(capsys.readouterr().out)["findings"]
    assert finding["kind"] == "add_unique"
    assert finding["source"] == "autogenerate"
    assert finding["column"] == "name"
    assert finding["message"] == "unique constraint (name) in the models, no revision creates it"

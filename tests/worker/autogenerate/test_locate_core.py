"""A finding on a Core ``Table(...)`` is placed at its model line, not at ``alembic.ini:1``.

Mapped classes are found through SQLAlchemy's mapper registries; a plain ``Table`` has no mapper,
so its place is read from the source of the module that holds it. Each case edits the
``wording`` scenario's Core table (models/archive.py) only and runs the real checker.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from migration_check.cli.app import EXIT_FINDINGS, main
from tests.helpers.edits import edit
from tests.helpers.scenarios import ScenarioFactory

ARCHIVE = "models/archive.py"


def _findings(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    assert main(["--format", "json"]) == EXIT_FINDINGS
    findings: list[dict[str, Any]] = json.loads(capsys.readouterr().out)["findings"]
    return findings


def _place(finding: dict[str, Any]) -> tuple[str, int]:
    assert finding["located"], finding
    return finding["file"], finding["line"]


def test_a_column_added_to_a_core_table_is_placed_at_its_column_line(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("wording")
    edit(
        project / ARCHIVE,
        '    Column("id", Integer, primary_key=True),\n',
        '    Column("id", Integer, primary_key=True),\n    Column("note", Integer),\n',
    )
    (finding,) = [f for f in _findings(capsys) if f["source"] == "autogenerate"]
    assert finding["kind"] == "add_column"
    assert _place(finding) == (ARCHIVE, 10)


def test_a_core_table_added_is_placed_in_its_own_table_call(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """As for a mapped class, a new table is placed at its first column: line 15 of the file."""
    project = scenario("wording")
    with (project / ARCHIVE).open("a") as fh:
        fh.write('\narchive_notes = Table(\n    "archive_notes",\n    metadata,\n'
                 '    Column("id", Integer, primary_key=True),\n)\n')  # fmt: skip
    (finding,) = [f for f in _findings(capsys) if f["source"] == "autogenerate"]
    assert finding["kind"] == "add_table"
    assert _place(finding) == (ARCHIVE, 15)

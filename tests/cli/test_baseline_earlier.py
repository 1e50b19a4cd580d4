"""A baseline written by an earlier version still holds after the checker rewords a finding.

A baseline entry keeps autogenerate's message. Commit 752d555 reworded the added-constraint
findings: ``constraint None in the models, ...`` became ``unique constraint (name) in the
models, ...`` (with its column). A project that had baselined such a difference must not fail
when it updates the checker; ``check-migrations baseline`` then rewrites the entry in today's
words.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from migration_check.cli.app import EXIT_FINDINGS, EXIT_OK, main
from tests.helpers.edits import edit
from tests.helpers.scenarios import ScenarioFactory

BASELINE = "check-migrations.baseline.json"
NAME = "    name: Mapped[str | None] = mapped_column(String(100))\n"
EMAIL = "    email: Mapped[str] = mapped_column(String(200))\n"


def _write_baseline(project: Path, *entries: dict[str, str]) -> None:
    document = {
        "version": 1,
        "comment": "written by an earlier check-migrations",
        "findings": [{"config": "alembic.ini", **e} for e in entries],
    }
    (project / BASELINE).write_text(json.dumps(document, indent=2) + "\n")


def test_earlier_wording_of_added_constraints_still_matches(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("conn_sync")
    edit(project / "models.py", NAME, NAME.replace("String(100))", "String(100), unique=True)"))
    edit(
        project / "models.py",
        '(Index("ix_users_email", "email"),)',
        '(Index("ix_users_email", "email"), UniqueConstraint("email", name="uq_users_email"))',
    )
    edit(project / "models.py", "import Index,", "import Index, UniqueConstraint,")
    assert EMAIL in (project / "models.py").read_text()
    _write_baseline(
        project,
        {
            "kind": "add_unique",
            "table": "users",
            "message": "constraint None in the models, no revision creates it",
        },
        {
            "kind": "add_unique",
            "table": "users",
            "object": "uq_users_email",
            "message": "constraint uq_users_email in the models, no revision creates it",
        },
    )
    assert main(["--no-cache"]) == EXIT_OK, capsys.readouterr().out
    out = capsys.readouterr().out
    assert out.splitlines()[-1].endswith("; 2 baselined."), out
    assert "Fixed since the baseline" not in out

    # Rewritten in today's words, and still only those two.
    assert main(["baseline"]) == EXIT_OK
    capsys.readouterr()
    entries = json.loads((project / BASELINE).read_text())["findings"]
    assert sorted(e["message"] for e in entries) == [
        "unique constraint (name) in the models, no revision creates it",
        "unique constraint uq_users_email (email) in the models, no revision creates it",
    ]

    # An earlier entry is not a wildcard: another unnamed constraint is new.
    edit(project / "models.py", EMAIL, EMAIL.replace("String(200))", "String(200), unique=True)"))
    _write_baseline(
        project,
        {
            "kind": "add_unique",
            "table": "users",
            "message": "constraint None in the models, no revision creates it",
        },
    )
    assert main(["--no-cache"]) == EXIT_FINDINGS
    out = capsys.readouterr().out
    assert "unique constraint (email) in the models" in out or (
        "unique constraint (name) in the models" in out
    ), out
    assert out.splitlines()[-1].endswith("; 1 baselined."), out

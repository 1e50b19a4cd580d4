"""What ``check-migrations revision`` writes passes the check's own safety observation.

The writer's safe forms are the observation's advice written out; committed as written, in a
project with Alembic's default env.py (one transaction for every revision of an upgrade), they
must give no safety finding. Each case edits the ``history`` scenario's models on a feature
branch, writes the revision, stages it, and runs the real check with its history checks.
"""

from __future__ import annotations

import json

import pytest

from migration_check.cli.app import EXIT_OK, main
from tests.helpers.edits import edit
from tests.helpers.git import git
from tests.helpers.history import repo_on_feature
from tests.helpers.scenarios import ScenarioFactory

BODY = "    body: Mapped[str] = mapped_column(String(500))\n"
CHANGES = {
    "foreign_key": (
        BODY,
        BODY + '    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))\n',
    ),
    "check": (
        BODY,
        BODY + '    __table_args__ = (CheckConstraint("length(body) > 0", name="body_set"),)\n',
    ),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_the_written_validate_revision_gives_no_safety_finding(
    change: str,
    scenario: ScenarioFactory,
    capsys: pytest.CaptureFixture[str],
    git_identity: None,
) -> None:
    project = scenario("history")
    repo_on_feature(project)
    if change == "check":
        edit(
            project / "models.py",
            "from sqlalchemy import ",
            "from sqlalchemy import CheckConstraint, ",
        )
    edit(project / "models.py", *CHANGES[change])
    assert main(["revision", "-m", "constrain notes", "--rev-id", "0003"]) == EXIT_OK
    written = capsys.readouterr().out.split()
    assert len(written) == 2, written  # the NOT VALID revision, then the one that validates
    git(project, "add", "-A")
    code = main(["--no-cache", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert [f for f in report["findings"] if f["source"] == "safety"] == []
    assert code == EXIT_OK, report["findings"]
    # The VALIDATE was observed, outside the transaction that added the constraint.
    (validate,) = [
        s
        for r in report["safety"]
        for s in r["statements"]
        if "VALIDATE CONSTRAINT" in s["statement"]
    ]
    assert validate["autocommit"], validate

"""The output formats a machine or a reviewer acts on, checked against real runs.

The ``two_files`` scenario has drift in two model modules (``models/users.py``,
``models/notes.py``) and a table only the database has (located at ``alembic.ini``), so grouping
per file and the location fallback are both exercised.
"""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from migration_check import __version__
from migration_check.cli import app as cli
from migration_check.cli.app import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK, main
from migration_check.findings import CheckResult, Finding, Location
from migration_check.report.formats import render_text
from tests.helpers.paths import REPO
from tests.helpers.scenarios import ScenarioFactory

SCHEMA = json.loads((REPO / "docs" / "check-migrations.schema.json").read_text())
REVISION_COMMAND = 'check-migrations revision -m "describe the change" --rev-id 0003'


def _validate(document: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(SCHEMA).validate(document)


def _line_of(path: Path, needle: str) -> int:
    lines = path.read_text().splitlines()
    hits = [i for i, line in enumerate(lines, 1) if needle in line]
    assert len(hits) == 1, f"{needle!r} in {path}: {hits}"
    return hits[0]


def test_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_schema_rejects_what_it_should() -> None:
    """The schema is not vacuous: a finding without a line, or a drift with exit 0, fails."""
    good = {
        "schema_version": 1,
        "tool": {"name": "check-migrations", "version": __version__},
        "verdict": "in_sync",
        "exit_code": 0,
        "config": "alembic.ini",
        "heads": [],
        "revisions_applied": 0,
        "revision_command": "alembic revision",
        "findings": [],
        "errors": [],
    }
    _validate(good)
    with pytest.raises(jsonschema.ValidationError):
        _validate({**good, "verdict": "drift"})
    finding = {
        "kind": "add_column", "table": "t", "column": "c", "object": None, "subject": "t.c",
        "message": "m", "op": None, "hint": None, "file": "models.py", "located": True,
    }  # fmt: skip
    with pytest.raises(jsonschema.ValidationError, match="'line' is a required property"):
        _validate({**good, "verdict": "drift", "exit_code": 1, "findings": [finding]})


def test_json_findings_in_two_files(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("two_files")
    assert main(["--format", "json"]) == EXIT_FINDINGS
    out = capsys.readouterr()
    document = json.loads(out.out)  # the whole of stdout is one JSON document
    _validate(document)
    assert document["verdict"] == "drift"
    assert document["exit_code"] == EXIT_FINDINGS
    assert document["tool"] == {"name": "check-migrations", "version": __version__}
    assert document["heads"] == ["0002"]
    assert document["revisions_applied"] == 2
    assert document["revision_command"] == REVISION_COMMAND
    where = {
        f["subject"]: (f["kind"], f["file"], f["line"], f["located"]) for f in document["findings"]
    }
    assert where == {
        "legacy_imports": ("remove_table", "alembic.ini", 1, False),
        "notes.title": (
            "add_column", "models/notes.py",
            _line_of(project / "models/notes.py", "title: Mapped"), True,
        ),
        "notes.body": (
            "modify_type", "models/notes.py",
            _line_of(project / "models/notes.py", "body: Mapped"), True,
        ),
        "users.phone": (
            "add_column", "models/users.py",
            _line_of(project / "models/users.py", "phone: Mapped"), True,
        ),
    }  # fmt: skip
    phone = next(f for f in document["findings"] if f["subject"] == "users.phone")
    assert phone["op"] == (
        "op.add_column('users', sa.Column('phone', sa.String(length=30), nullable=True))"
    )
    assert "starting a throwaway PostgreSQL" in out.err


def test_json_in_sync(scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]) -> None:
    scenario("base")
    assert main(["--format", "json"]) == EXIT_OK
    document = json.loads(capsys.readouterr().out)
    _validate(document)
    assert (document["verdict"], document["findings"], document["heads"]) == (
        "in_sync", [], ["0002"],
    )  # fmt: skip


def test_json_on_a_failing_revision(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario("bad_sql")
    assert main(["--format", "json"]) == EXIT_ERROR
    out = capsys.readouterr()
    document = json.loads(out.out)
    _validate(document)
    assert document["verdict"] == "error"
    [error] = document["errors"]
    assert error["kind"] == "migration"
    assert error["message"].startswith("revision 0002 (versions/0002_broken.py) failed")
    # The same line a human reads on stderr.
    assert out.err.strip().splitlines()[-1] == f"check-migrations: error: {error['message']}"


def test_json_on_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--format", "json", "--no-such-flag"]) == EXIT_ERROR
    document = json.loads(capsys.readouterr().out)
    _validate(document)
    assert document["errors"][0]["kind"] == "usage"
    assert "--no-such-flag" in document["errors"][0]["message"]


def test_json_untracked_revision(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """In a git work tree, a revision file never added is a finding with its git add."""
    project = scenario("base")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=project, check=True)
    subprocess.run(
        [*git, "add", "alembic.ini", "env.py", "models.py", "versions/0001_initial.py"],
        cwd=project, check=True,
    )  # fmt: skip
    assert main(["--format", "json"]) == EXIT_FINDINGS
    document = json.loads(capsys.readouterr().out)
    _validate(document)
    assert document["findings"] == [
        {
            "kind": "untracked_revision",
            "table": None,
            "column": None,
            "object": "versions/0002_notes.py",
            "subject": "versions/0002_notes.py",
            "message": "revision file not tracked by git: the commit would not include it",
            "op": None,
            "hint": "git add versions/0002_notes.py",
            "file": "versions/0002_notes.py",
            "line": 1,
            "located": True,
            "source": "git",
            "in_database": None,
            "in_models": None,
        }
    ]


def test_github_annotations_and_step_summary_in_two_files(
    scenario: ScenarioFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    project = scenario("two_files")
    summary = tmp_path / "step_summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert main(["--format", "github"]) == EXIT_FINDINGS

    title = _line_of(project / "models/notes.py", "title: Mapped")
    body = _line_of(project / "models/notes.py", "body: Mapped")
    phone = _line_of(project / "models/users.py", "phone: Mapped")
    generate = f"%0AGenerate it: {REVISION_COMMAND}"
    assert capsys.readouterr().out.splitlines() == [
        "::group::alembic.ini",
        "::error file=alembic.ini,line=1,title=Missing migration%3A legacy_imports::"
        "table in the database, gone from the models [remove_table]"
        "%0AA revision needs:%0Aop.drop_table('legacy_imports')" + generate,
        "::endgroup::",
        "::group::models/notes.py",
        f"::error file=models/notes.py,line={title},title=Missing migration%3A notes.title::"
        "column title VARCHAR(80) in the models, no revision adds it [add_column]"
        "%0AA revision needs:%0Aop.add_column('notes', sa.Column('title', "
        "sa.String(length=80), nullable=True))" + generate,
        f"::error file=models/notes.py,line={body},title=Missing migration%3A notes.body::"
        "type is VARCHAR(1000) in the models, VARCHAR(500) in the database [modify_type]"
        "%0AA revision needs:%0Aop.alter_column('notes', 'body',"
        "%0A           existing_type=sa.VARCHAR(length=500),"
        "%0A           type_=sa.String(length=1000),"
        "%0A           existing_nullable=False)" + generate,
        "::endgroup::",
        "::group::models/users.py",
        f"::error file=models/users.py,line={phone},title=Missing migration%3A users.phone::"
        "column phone VARCHAR(30) in the models, no revision adds it [add_column]"
        "%0AA revision needs:%0Aop.add_column('users', sa.Column('phone', "
        "sa.String(length=30), nullable=True))" + generate,
        "::endgroup::",
        "check-migrations: 4 problems: models changed without a matching revision.",
    ]
    # Appended, never overwriting what earlier steps wrote.
    assert summary.read_text().splitlines() == [
        "earlier step",
        "### check-migrations: 4 problems: models changed without a matching revision",
        "",
        "| Where | What | Kind | Message |",
        "| --- | --- | --- | --- |",
        "| `alembic.ini:1` | `legacy_imports` | remove_table | "
        "table in the database, gone from the models |",
        f"| `models/notes.py:{title}` | `notes.title` | add_column | "
        "column title VARCHAR(80) in the models, no revision adds it |",
        f"| `models/notes.py:{body}` | `notes.body` | modify_type | "
        "type is VARCHAR(1000) in the models, VARCHAR(500) in the database |",
        f"| `models/users.py:{phone}` | `users.phone` | add_column | "
        "column phone VARCHAR(30) in the models, no revision adds it |",
        "",
        "Generate the missing revision, review it, and commit it with the models:",
        "",
        "```sh",
        REVISION_COMMAND,
        "```",
    ]


def test_github_on_a_failing_revision(
    scenario: ScenarioFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    scenario("bad_sql")
    summary = tmp_path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert main(["--format", "github"]) == EXIT_ERROR
    out = capsys.readouterr()
    message = out.err.strip().splitlines()[-1].removeprefix("check-migrations: error: ")
    assert message.startswith("revision 0002 (versions/0002_broken.py) failed")
    assert out.out.splitlines() == [f"::error title=check-migrations could not check::{message}"]
    assert summary.read_text().splitlines() == [
        "### check-migrations could not check",
        "",
        message,
    ]


def test_text_groups_by_table_with_summary_last(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario("two_files")
    assert main([]) == EXIT_FINDINGS
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert [ln for ln in lines if ln and not ln.startswith(" ")] == [
        "legacy_imports",
        "notes",
        "users",
        "Generate the missing revision, review it, and commit it with the models:",
        "check-migrations: 4 problems in 3 tables: models changed without a matching revision.",
    ]
    assert "\033[" not in out.out  # captured output is not a terminal
    # Progress is on stderr only.
    assert "comparing the database with the models" in out.err
    assert "comparing" not in out.out


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_and_never_with_no_color(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    assert cli._use_color(_Terminal()) is True
    assert cli._use_color(io.StringIO()) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert cli._use_color(_Terminal()) is False
    result = CheckResult(
        findings=[Finding("add_column", "t", "m", column="c", location=Location("m.py", 3))]
    )
    assert "\033[31m" in render_text(result, color=True)
    assert "\033[" not in render_text(result, color=False)


def test_headline_names_what_is_wrong() -> None:
    untracked = Finding(
        "untracked_revision", None, "revision file not tracked by git",
        name="versions/0003_x.py", location=Location("versions/0003_x.py", 1),
        hint="git add versions/0003_x.py",
    )  # fmt: skip
    text = render_text(CheckResult(findings=[untracked]))
    assert text.splitlines() == [
        "revision history",
        "  versions/0003_x.py:1: revision file not tracked by git [untracked_revision]",
        "      fix: git add versions/0003_x.py",
        "",
        "check-migrations: 1 problem: revision files are not tracked by git.",
    ]

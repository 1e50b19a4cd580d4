"""CONCURRENTLY outside autocommit_block() in a new revision: the check's own upgrade stops on it
(SQLSTATE 25001), which is the ``concurrently_in_transaction`` safety finding (exit 1) with the
safe form, and a line saying the models were not compared; never an agreement.

A revision the base already had, ``safety = "off"``, or the finding set aside (allow comment,
ignore rule, baseline, ``safety = "warn"``) keep the upgrade's error line (exit 2).
"""

from __future__ import annotations

import json

import jsonschema
import pytest

from migration_check.cli.app import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK, main
from tests.helpers.paths import REPO
from tests.helpers.safety import check_json, project_with, safety_kinds
from tests.helpers.scenarios import ScenarioFactory

_UNSAFE = 'op.create_index("ix_users_name", "users", ["name"], postgresql_concurrently=True)'
_UNDO = 'op.drop_index("ix_users_name", "users")'
_LINE = "cannot run inside a transaction block (SQLSTATE 25001)"


@pytest.fixture(autouse=True)
def _git(git_identity: None) -> None:
    """Every test here commits a base and adds a revision on a branch."""


@pytest.mark.parametrize(
    ("unsafe", "undo", "base", "statement", "form"),
    [
        (_UNSAFE, _UNDO, "", "CREATE INDEX CONCURRENTLY ix_users_name ON users (name)",
         "    op.create_index('ix_users_name', 'users', ['name'], postgresql_concurrently=True)"),
        ('op.drop_index("ix_users_name", table_name="users", postgresql_concurrently=True)',
         'op.create_index("ix_users_name", "users", ["name"])',
         'op.create_index("ix_users_name", "users", ["name"])',
         "DROP INDEX CONCURRENTLY ix_users_name",
         "    op.drop_index('ix_users_name', table_name='users', postgresql_concurrently=True)"),
        ('op.execute("CREATE INDEX CONCURRENTLY ix_users_name ON users (name)")', _UNDO, "",
         "CREATE INDEX CONCURRENTLY ix_users_name ON users (name)",
         "    op.execute('CREATE INDEX CONCURRENTLY ix_users_name ON users (name)')"),
    ],
    ids=["create_index", "drop_index", "execute"],
)  # fmt: skip
def test_concurrently_in_a_transaction_is_a_finding_and_the_safe_form_passes(
    unsafe: str, undo: str, base: str, statement: str, form: str,
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    base_undo = _UNDO if base else "pass"
    project_with(scenario, unsafe, undo, base_upgrade=base, base_downgrade=base_undo)
    code, report = check_json(capsys)
    assert safety_kinds(report) == ["concurrently_in_transaction"], report["findings"]
    assert code == EXIT_FINDINGS
    (finding,) = report["findings"]
    assert (finding["file"], finding["line"], finding["table"]) == ("versions/0100_new.py", 16,
                                                                    "users")  # fmt: skip
    assert f"statement: {statement}" in finding["message"]
    assert _LINE in finding["message"]
    assert "SHARE UPDATE EXCLUSIVE on users" in finding["message"]
    assert finding["op"] == "with op.get_context().autocommit_block():\n" + form
    assert "revision 0100 (versions/0100_new.py) failed" in report["unchecked"]
    schema = json.loads((REPO / "docs" / "check-migrations.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(report)
    (record,) = report["safety"]
    assert record["revision"] == "0100"
    assert [f["kind"] for f in record["statements"][0]["findings"]] == [
        "concurrently_in_transaction"
    ]

    project_with(scenario, finding["op"], undo, base_upgrade=base, base_downgrade=base_undo,
                 dest="pasted")  # fmt: skip
    code, report = check_json(capsys)
    assert safety_kinds(report) == [], report["findings"]
    assert report["unchecked"] is None
    assert code == EXIT_OK, report["findings"]


def test_text_and_github_reports_say_the_models_were_not_compared(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project_with(scenario, _UNSAFE, _UNDO)
    assert main(["--no-cache"]) == EXIT_FINDINGS
    out = capsys.readouterr().out
    assert "versions/0100_new.py:16: users (ix_users_name): fails: " in out
    assert "[concurrently_in_transaction]" in out
    assert "Models and migrations were not compared: the history does not reach head " in out
    assert "agree" not in out
    assert out.rstrip().endswith(
        "1 problem in 1 table: a new revision's upgrade stops at a statement that cannot run in "
        "a transaction (safety)."
    )
    assert main(["--no-cache", "--format", "github"]) == EXIT_FINDINGS
    out = capsys.readouterr().out
    assert "::error file=versions/0100_new.py,line=16,title=" in out
    assert "Safe form:%0Awith op.get_context().autocommit_block():" in out
    assert "::error title=Models not compared::" in out


def _stops_with_the_line(capsys: pytest.CaptureFixture[str], *args: str) -> None:
    assert main(["--no-cache", *args]) == EXIT_ERROR
    captured = capsys.readouterr()
    assert f"check-migrations: error: revision 0100 (versions/0100_new.py) failed: CREATE " \
           f"INDEX CONCURRENTLY {_LINE}" in captured.err  # fmt: skip
    assert "Traceback" not in captured.err
    assert "agree" not in captured.out


def test_safety_off_keeps_the_error_line(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project_with(scenario, _UNSAFE, _UNDO)
    _stops_with_the_line(capsys, "--safety", "off")


def test_a_base_revision_that_fails_keeps_the_error_line(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """The base's own history stops the upgrade: not a finding of this change."""
    project_with(scenario, "pass", base_upgrade=_UNSAFE, base_downgrade=_UNDO)
    assert main(["--no-cache"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert f"revision 0003 (versions/0003_base.py) failed: CREATE INDEX CONCURRENTLY {_LINE}" in err


@pytest.mark.parametrize("how", ["allow", "ignore", "warn", "baseline"])
def test_the_finding_set_aside_still_fails_the_check(
    how: str, scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """Accepting the finding does not make the upgrade reach head: nothing was compared."""
    unsafe = _UNSAFE
    if how == "allow":
        unsafe = f"{_UNSAFE}  # check-migrations: allow concurrently-in-transaction on users: ok"
    project = project_with(scenario, unsafe, _UNDO)
    settings = {"ignore": 'ignore = ["concurrently_in_transaction:users.*"]',
                "warn": 'safety = "warn"'}.get(how)  # fmt: skip
    if settings:
        (project / "pyproject.toml").write_text(f"[tool.check-migrations]\n{settings}\n")
    if how == "baseline":
        assert main(["baseline", "--no-cache"]) == EXIT_OK
        capsys.readouterr()
        assert (project / "migration-baseline.json").is_file() or any(project.glob("*baseline*"))
    _stops_with_the_line(capsys)

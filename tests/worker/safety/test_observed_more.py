"""The safety observation beyond one hazard per revision: advice, the written safe form checked
again, and this repository's own history with each revision taken as new (PostgreSQL 15:
test_observed_pg15.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from migration_check.cli.app import EXIT_FINDINGS, EXIT_OK
from tests.helpers.git import git
from tests.helpers.paths import REPO
from tests.helpers.safety import check_json, project_with, safety_kinds
from tests.helpers.scenarios import ScenarioFactory


@pytest.fixture(autouse=True)
def _git(git_identity: None) -> None:
    """Every test here commits a base and adds a revision on a branch."""


def test_lock_held_across_statements_and_fk_without_index_are_advice(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project_with(
        scenario,
        'op.add_column("users", sa.Column("editor_id", sa.Integer(), nullable=True))\n'
        'op.create_foreign_key("fk_users_editor", "users", "users", ["editor_id"], ["id"], '
        "postgresql_not_valid=True)",
        'op.drop_column("users", "editor_id")',
    )
    code, report = check_json(capsys)
    assert code == EXIT_OK, report["findings"]
    warnings = {w["kind"]: w for w in report["warnings"]}
    assert sorted(warnings) == ["fk_without_index", "lock_held", "lock_timeout"]
    assert "1 later statement(s) run: versions/0100_new.py:17" in warnings["lock_held"]["message"]
    assert "postgresql_concurrently=True" in warnings["fk_without_index"]["op"]


def test_the_written_safe_form_passes(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """The finding's own safe form, pasted in place of the op, gives no finding."""
    undo = 'op.drop_index("ix_users_name", "users")'
    project_with(scenario, 'op.create_index("ix_users_name", "users", ["name"])', undo)
    code, report = check_json(capsys)
    assert code == EXIT_FINDINGS
    (finding,) = [f for f in report["findings"] if f["source"] == "safety"]
    project_with(scenario, finding["op"], undo, dest="pasted")
    code, report = check_json(capsys)
    assert safety_kinds(report) == []
    assert code == EXIT_OK


@pytest.mark.parametrize("new", ["0001", "0002", "0003"])
def test_own_history_each_revision_taken_as_new(
    new: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """Revisions that only create tables are safe; 0003 also changes the existing expenses."""
    project = tmp_path / "repo"
    project.mkdir()
    shutil.copy(REPO / "alembic.ini", project / "alembic.ini")
    for name in ("alembic", "expense_models"):
        shutil.copytree(REPO / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
    versions = project / "alembic" / "versions"
    later = sorted(p for p in versions.glob("*.py") if p.name[:4] >= new)
    held = {p: p.read_text() for p in later}
    for p in later:
        p.unlink()
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "base")
    git(project, "checkout", "-q", "-b", "feature")
    first = min(held)
    first.write_text(held[first])
    git(project, "add", "-A")
    monkeypatch.chdir(project)
    code, report = check_json(capsys)
    assert [r["revision"] for r in report["safety"]] == [new]
    if new != "0003":
        assert safety_kinds(report) == [], report["findings"]
        return
    # 0003 is really unsafe for an existing expenses table: its foreign key to the new rules
    # table is added valid (a scan of expenses under SHARE ROW EXCLUSIVE), and its index is
    # built without CONCURRENTLY (writes to expenses wait for the build).
    found = {f["kind"]: f for f in report["findings"] if f["source"] == "safety"}
    assert sorted(found) == ["constraint_validated", "create_index"]
    assert found["constraint_validated"]["object"] == (
        "fk_expenses_recurring_rule_id_recurring_expense_rules"
    )
    assert "postgresql_not_valid=True" in found["constraint_validated"]["op"]
    assert "postgresql_concurrently=True" in found["create_index"]["op"]
    assert {f["table"] for f in found.values()} == {"expenses"}
    assert code == EXIT_FINDINGS


def test_bad_safety_setting_is_one_line(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    from migration_check.cli.app import EXIT_ERROR, main

    project = scenario("safety")
    (project / "pyproject.toml").write_text('[tool.check-migrations]\nsafety = "loud"\n')
    assert main([]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "invalid value 'loud' for safety (one of error, warn, off)" in err
    assert "Traceback" not in err


def test_ignore_rule_and_baseline_take_safety_findings(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    from migration_check.cli.app import main

    project = project_with(
        scenario,
        'op.create_index("ix_users_name", "users", ["name"])',
        'op.drop_index("ix_users_name", "users")',
    )
    (project / "pyproject.toml").write_text(
        '[tool.check-migrations]\nignore = ["create_index:users.ix_users_*"]\n'
    )
    code, report = check_json(capsys)
    assert code == EXIT_OK, report["findings"]
    assert report["ignored"] == 1
    (project / "pyproject.toml").unlink()
    assert main(["baseline", "--no-cache"]) == EXIT_OK
    capsys.readouterr()
    code, report = check_json(capsys)
    assert code == EXIT_OK, report["findings"]
    assert [f["kind"] for f in report["baselined"]] == ["create_index"]

"""The safety observation: each hazard in a new revision is exactly its finding, with the safe
form; the safe form passes; what the new revisions create themselves is exempt.

Real server, real Alembic, the real CLI: the scenario (tests/helpers/safety.py) commits a base
on main and adds one revision on a feature branch, so the history checks take it as new.
"""

from __future__ import annotations

import pytest

from migration_check.cli.app import EXIT_FINDINGS, EXIT_OK
from tests.helpers.safety import CASES, check_json, project_with, safety_kinds
from tests.helpers.scenarios import ScenarioFactory


@pytest.fixture(autouse=True)
def _git(git_identity: None) -> None:
    """Every test here commits a base and adds a revision on a branch."""


@pytest.mark.parametrize(
    ("kind", "unsafe", "undo", "safe", "safe_undo", "base"), CASES, ids=[c[0] for c in CASES]
)
def test_hazard_is_its_finding_and_the_safe_form_passes(
    kind: str, unsafe: str, undo: str, safe: str, safe_undo: str, base: str,
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    base_undo = 'op.drop_index("ix_users_name", "users")' if base else "pass"
    project_with(scenario, unsafe, undo, base_upgrade=base, base_downgrade=base_undo)
    code, report = check_json(capsys)
    assert safety_kinds(report) == [kind], report["findings"]
    assert code == EXIT_FINDINGS
    finding = next(f for f in report["findings"] if f["source"] == "safety")
    assert finding["file"] == "versions/0100_new.py"
    assert finding["line"] >= 16
    assert finding["table"] == "users"
    assert finding["op"]
    assert report["safety"][0]["revision"] == "0100"

    project_with(scenario, safe, safe_undo, base_upgrade=base, base_downgrade=base_undo,
                 dest=f"{kind}-safe")  # fmt: skip
    code, report = check_json(capsys)
    assert safety_kinds(report) == [], report["findings"]
    assert code == EXIT_OK, report["findings"]


def test_objects_the_new_revisions_create_are_exempt(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """A new table: indexes built, constraints validated, a column retyped, all under no risk."""
    project_with(
        scenario,
        'op.create_table("tags", sa.Column("id", sa.Integer(), primary_key=True),\n'
        '                sa.Column("label", sa.String(20), nullable=False))\n'
        'op.create_index("ix_tags_label", "tags", ["label"])\n'
        'op.create_check_constraint("ck_tags_label", "tags", "length(label) > 0")\n'
        'op.alter_column("tags", "label", type_=sa.String(10))\n'
        'op.create_unique_constraint("uq_tags_label", "tags", ["label"])',
        'op.drop_table("tags")',
    )
    code, report = check_json(capsys)
    assert safety_kinds(report) == []
    assert report["warnings"] == []
    assert code == EXIT_OK
    statements = report["safety"][0]["statements"]
    assert len(statements) == 5
    assert all(s["findings"] == [] for s in statements)


def test_advice_is_a_warning_and_safety_warn_fails_nothing(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project_with(scenario, 'op.drop_column("users", "status")',
                 'op.add_column("users", sa.Column("status", sa.String(20), '
                 "server_default=sa.text(\"'active'\"), nullable=False))")  # fmt: skip
    code, report = check_json(capsys)
    assert code == EXIT_OK
    assert sorted(w["kind"] for w in report["warnings"]) == ["drop_column", "lock_timeout"]
    project_with(scenario, 'op.create_index("ix_users_name", "users", ["name"])',
                 'op.drop_index("ix_users_name", "users")', dest="warn")  # fmt: skip
    code, report = check_json(capsys, "--safety", "warn")
    assert code == EXIT_OK
    assert "create_index" in [w["kind"] for w in report["warnings"]]
    code, report = check_json(capsys, "--safety", "off")
    assert code == EXIT_OK
    assert report["safety"] == []
    assert report["warnings"] == []


def test_allow_comment_accepts_the_finding(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project_with(
        scenario,
        "# check-migrations: allow create-index on users: users has 40 rows in production\n"
        'op.create_index("ix_users_name", "users", ["name"])',
        'op.drop_index("ix_users_name", "users")',
    )
    code, report = check_json(capsys)
    assert code == EXIT_OK, report["findings"]
    marks = report["safety"][0]["statements"][0]["findings"]
    assert {"kind": "create_index", "table": "users",
            "allowed": "users has 40 rows in production"} in marks  # fmt: skip
    assert [w["kind"] for w in report["warnings"]] == ["lock_timeout"]  # advice stays

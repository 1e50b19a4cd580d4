"""Findings read the way a reviewer says them: one change, one finding, PostgreSQL's words.

Each case edits the ``wording`` scenario's models only (the revisions stay), runs the real
checker, and asserts the one line a reviewer reads, the op code, and both sides.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from migration_check.cli.app import EXIT_FINDINGS, EXIT_OK, main
from migration_check.findings import KINDS, Finding
from migration_check.run.check import run_check
from migration_check.settings import Settings
from tests.helpers.edits import edit
from tests.helpers.scenarios import ScenarioFactory


def _line_of(path: Path, needle: str) -> int:
    hits = [i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line]
    assert len(hits) == 1, f"{needle!r} in {path}: {hits}"
    return hits[0]


def _json(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    assert main(["--format", "json"]) == EXIT_FINDINGS
    findings: list[dict[str, Any]] = json.loads(capsys.readouterr().out)["findings"]
    return findings


def _only(findings: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(findings) == 1, json.dumps(findings, indent=2)
    return findings[0]


def _one_finding(settings: Settings | None = None) -> Finding:
    result = run_check(settings or Settings())
    assert len(result.findings) == 1, result.findings
    return result.findings[0]


def test_wording_scenario_is_in_sync(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario("wording")
    assert main([]) == EXIT_OK, capsys.readouterr().out


FK = 'ForeignKey("users.id", ondelete="CASCADE")'
# Each case: the FK in the models, then the one message and both sides of the finding.
FK_CASES = {
    "ondelete": (
        'ForeignKey("users.id", ondelete="RESTRICT")',
        "foreign key fk_notes_user_id_users: ON DELETE CASCADE in the database, "
        "RESTRICT in the models",
        "FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE RESTRICT",
    ),
    "ondelete_dropped": (
        'ForeignKey("users.id")',
        "foreign key fk_notes_user_id_users: ON DELETE CASCADE in the database, "
        "NO ACTION in the models",
        "FOREIGN KEY (user_id) REFERENCES users(id)",
    ),
    "onupdate": (
        'ForeignKey("users.id", ondelete="CASCADE", onupdate="CASCADE")',
        "foreign key fk_notes_user_id_users: ON UPDATE NO ACTION in the database, "
        "CASCADE in the models",
        "FOREIGN KEY (user_id) REFERENCES users(id) ON UPDATE CASCADE ON DELETE CASCADE",
    ),
    "deferrable": (
        'ForeignKey("users.id", ondelete="CASCADE", deferrable=True, initially="DEFERRED")',
        "foreign key fk_notes_user_id_users: NOT DEFERRABLE in the database, "
        "DEFERRABLE INITIALLY DEFERRED in the models",
        "FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE "
        "DEFERRABLE INITIALLY DEFERRED",
    ),
    "referenced_column": (
        'ForeignKey("users.legacy_id", ondelete="CASCADE")',
        "foreign key fk_notes_user_id_users: references users(id) in the database, "
        "users(legacy_id) in the models",
        "FOREIGN KEY (user_id) REFERENCES users(legacy_id) ON DELETE CASCADE",
    ),
}


@pytest.mark.parametrize("case", sorted(FK_CASES))
def test_foreign_key_rule_change_is_one_finding(
    case: str, scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("wording")
    new, message, in_models = FK_CASES[case]
    edit(project / "models/notes.py", FK, new)
    finding = _only(_json(capsys))
    assert (finding["kind"], finding["subject"], finding["object"], finding["message"]) == (
        "modify_fk", "notes.user_id", "fk_notes_user_id_users", message,
    )  # fmt: skip
    assert (finding["file"], finding["line"]) == (
        "models/notes.py", _line_of(project / "models/notes.py", "user_id: Mapped"),
    )  # fmt: skip
    # The revision needs the drop and the create, in that order, as autogenerate writes them.
    drop, create = finding["op"].split("\n", 1)
    name = "op.f('fk_notes_user_id_users')"
    assert drop == f"op.drop_constraint({name}, 'notes', type_='foreignkey')"
    assert create.startswith(f"op.create_foreign_key({name}, 'notes', 'users', ['user_id'], ")
    if case == "ondelete":
        full = _one_finding()
        assert (full.in_database, full.in_models) == (
            "FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE", in_models,
        )  # fmt: skip


def test_unnamed_foreign_key_pairs_by_its_columns(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a naming convention the models' key has no name: its columns identify it."""
    project = scenario("wording")
    base = project / "models/base.py"
    base.write_text(re.sub(r"naming_convention=\{.*?\}", "", base.read_text(), flags=re.S))
    edit(project / "models/notes.py", FK, 'ForeignKey("users.id", ondelete="RESTRICT")')
    finding = _only(_json(capsys))
    assert (finding["kind"], finding["object"], finding["message"]) == (
        "modify_fk", "fk_notes_user_id_users",
        "foreign key fk_notes_user_id_users: ON DELETE CASCADE in the database, "
        "RESTRICT in the models",
    )  # fmt: skip
    assert finding["op"].splitlines()[1].startswith("op.create_foreign_key(None, 'notes', ")


def test_timezone_flip_names_postgresql_types(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("wording")
    edit(project / "models/users.py", "mapped_column(DateTime())", "mapped_column(DateTime(True))")
    finding = _only(_json(capsys))
    assert (finding["kind"], finding["subject"], finding["message"]) == (
        "modify_type", "users.created_at",
        "type is TIMESTAMP WITH TIME ZONE in the models, "
        "TIMESTAMP WITHOUT TIME ZONE in the database",
    )  # fmt: skip
    full = _one_finding()
    assert (full.in_database, full.in_models) == (
        "TIMESTAMP WITHOUT TIME ZONE", "TIMESTAMP WITH TIME ZONE",
    )  # fmt: skip


def test_identity_added_says_identity(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("wording")
    edit(
        project / "models/notes.py", "from sqlalchemy import ", "from sqlalchemy import Identity, "
    )
    edit(
        project / "models/notes.py",
        "id: Mapped[int] = mapped_column(primary_key=True)",
        "id: Mapped[int] = mapped_column(Identity(), primary_key=True)",
    )
    finding = _only(_json(capsys))
    assert "modify_identity" in KINDS
    assert (finding["kind"], finding["subject"], finding["message"]) == (
        "modify_identity", "notes.id",
        "GENERATED BY DEFAULT AS IDENTITY in the models, "
        "not an identity column in the database",
    )  # fmt: skip
    assert "server default" not in finding["message"]


def test_identity_options_changed_name_only_what_differs(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("wording")
    edit(project / "models/legacy.py", "Identity()", "Identity(start=10)")
    finding = _only(_json(capsys))
    assert (finding["kind"], finding["subject"], finding["message"]) == (
        "modify_identity", "legacy_imports.id",
        "identity START WITH 10 in the models, START WITH 1 in the database",
    )  # fmt: skip


def test_index_column_order_is_one_finding(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("wording")
    edit(
        project / "models/users.py",
        'Index("ix_users_name_status", "name", "status")',
        'Index("ix_users_name_status", "status", "name")',
    )
    finding = _only(_json(capsys))
    assert (finding["kind"], finding["subject"], finding["message"]) == (
        "modify_index", "users (ix_users_name_status)",
        "index ix_users_name_status: column order is (name, status) in the database, "
        "(status, name) in the models",
    )  # fmt: skip
    drop, create = finding["op"].split("\n", 1)
    assert drop == "op.drop_index(op.f('ix_users_name_status'), table_name='users')"
    assert create.startswith("op.create_index('ix_users_name_status', 'users', ['status', 'name']")


def test_index_renamed_by_its_convention_stays_two_findings(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """Reordered under a naming convention, the name changes too: one finding per name, the
    names the catalog comparison matches on (merging them left its add_index repeated)."""
    project = scenario("wording")
    edit(
        project / "models/users.py",
        'Index("ix_users_name_status", "name", "status")',
        'Index(None, "status", "name")',
    )
    findings = _json(capsys)
    assert sorted((f["kind"], f["object"]) for f in findings) == [
        ("add_index", "ix_users_status"), ("remove_index", "ix_users_name_status"),
    ]  # fmt: skip


def test_unique_constraint_columns_changed_is_one_finding(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("wording")
    users = project / "models/users.py"
    edit(users, "from sqlalchemy import ", "from sqlalchemy import UniqueConstraint, ")
    edit(users, "mapped_column(String(200), unique=True)", "mapped_column(String(200))")
    edit(users, '"status"),)', '"status"), UniqueConstraint("email", "name"))')
    finding = _only(_json(capsys))
    assert (finding["kind"], finding["object"], finding["message"]) == (
        "modify_unique", "uq_users_email",
        "unique constraint uq_users_email: columns (email) in the database, (email, name) "
        "in the models",
    )  # fmt: skip
    drop, create = finding["op"].split("\n", 1)
    assert drop == "op.drop_constraint(op.f('uq_users_email'), 'users', type_='unique')"
    assert create.startswith("op.create_unique_constraint(op.f('uq_users_email'), 'users', ")


# Each case: the import line the models package loses, the module and the line that defines it.
UNIMPORTED = {
    "declarative": (
        "from models.legacy import LegacyImport\n",
        "legacy_imports",
        "models/legacy.py",
        "class LegacyImport(Base):",
    ),
    "core_table": (
        "from models.archive import archive\n",
        "archive",
        "models/archive.py",
        "Table(",
    ),
}


@pytest.mark.parametrize("case", sorted(UNIMPORTED))
def test_table_of_a_module_nothing_imports(
    case: str, scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("wording")
    line, table, module, definition = UNIMPORTED[case]
    statement = line.strip()
    edit(project / "models/__init__.py", line, "")
    init = project / "models/__init__.py"
    init.write_text(re.sub(r'"(LegacyImport|archive)", ', "", init.read_text()))
    finding = _only(_json(capsys))
    assert (finding["kind"], finding["subject"], finding["file"], finding["line"]) == (
        "remove_table", table, module, _line_of(project / module, definition),
    )  # fmt: skip
    assert finding["message"] == f"{module} defines {table} but nothing imports it"
    # Dropping the table is the wrong advice: importing the module is the fix.
    assert finding["op"] is None
    assert finding["hint"] == f"add `{statement}` to models/__init__.py"


def test_a_table_no_module_defines_still_reads_as_removed(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("wording")
    edit(project / "models/__init__.py", "from models.archive import archive\n", "")
    init = project / "models/__init__.py"
    init.write_text(init.read_text().replace('"archive", ', ""))
    (project / "models/archive.py").unlink()
    finding = _only(_json(capsys))
    assert (finding["kind"], finding["subject"], finding["message"]) == (
        "remove_table", "archive", "table in the database, gone from the models",
    )  # fmt: skip
    assert finding["op"] == "op.drop_table('archive')"


def test_findings_of_a_table_follow_the_model_lines(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("wording")
    users = project / "models/users.py"
    # Three changes whose kinds (add_column, modify_nullable, modify_type) sort otherwise.
    edit(users, "mapped_column(DateTime())", "mapped_column(DateTime(), nullable=False)")
    edit(users, "mapped_column(String(100))", "mapped_column(String(120))")
    edit(users, "email: Mapped[str] = mapped_column(String(200), unique=True)\n",
         "email: Mapped[str] = mapped_column(String(200), unique=True)\n"
         "    phone: Mapped[str | None] = mapped_column(String(30))\n")  # fmt: skip
    assert main([]) == EXIT_FINDINGS
    out = capsys.readouterr().out
    found = re.findall(r"^  models/users\.py:(\d+): (\S+):", out, flags=re.M)
    assert [subject for _, subject in found] == ["users.phone", "users.name", "users.created_at"]
    assert [int(line) for line, _ in found] == [
        _line_of(users, "phone: Mapped"), _line_of(users, "name: Mapped"),
        _line_of(users, "created_at: Mapped"),
    ]  # fmt: skip


def test_locating_helpers_are_public_in_locate() -> None:
    """The first opinion (ops.py) and the catalog comparison share them: public names of
    worker/autogenerate/locate.py, not private ones imported across modules."""
    from migration_check.worker.autogenerate import locate

    assert {"Locator", "class_location", "attribute_location"} <= set(locate.__all__)

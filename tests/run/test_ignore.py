"""Ignore rules in [tool.check-migrations]: real scenario projects through ``main([...])``."""

from __future__ import annotations

from pathlib import Path

import pytest

from migration_check.cli.app import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK, main
from migration_check.findings import KINDS, Finding
from migration_check.run.ignores import finding_path, parse_rules
from tests.helpers.edits import PHONE, edit, settings
from tests.helpers.scenarios import ScenarioFactory


def drift(project: Path) -> None:
    """Two differences: users.phone added, notes.body widened."""
    edit(project / "models.py", *PHONE)
    edit(project / "models.py", "mapped_column(String(500))", "mapped_column(String(1000))")


def test_finding_path_is_schema_table_object() -> None:
    def path(table: str | None, column: str | None = None, name: str | None = None) -> str:
        return finding_path(Finding("add_column", table, "m", column=column, name=name))

    assert path("users") == "users"
    assert path("users", column="phone") == "users.phone"
    assert path("audit.events", column="at") == "audit.events.at"
    # A named index or constraint is the object, even when a column is known too.
    assert path("notes", column="user_id", name="fk_notes_user") == "notes.fk_notes_user"
    assert path(None, name="versions/0003_x.py") == "versions/0003_x.py"


@pytest.mark.parametrize(
    ("rule", "table", "column", "matches"),
    [
        ("remove_table:legacy_*", "legacy_users", None, True),
        ("remove_table:legacy_*", "users", None, False),
        ("*:audit.*", "audit.events", "at", True),
        ("*:audit.*", "public_audit", None, False),
        ("remove_*:users.name", "users", "name", True),
        ("add_*:users.name", "users", "name", False),
    ],
)
def test_rule_matching(rule: str, table: str, column: str | None, matches: bool) -> None:
    kind = "remove_table" if column is None else "remove_column"
    [parsed] = parse_rules([rule], "test")
    assert parsed.matches(Finding(kind, table, "m", column=column)) is matches


def test_ignored_findings_are_counted_not_reported(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("base")
    drift(project)
    settings(project, 'ignore = ["add_column:users.*"]')
    assert main([]) == EXIT_FINDINGS
    out = capsys.readouterr().out
    assert "users.phone" not in out
    assert "notes.body: type is VARCHAR(1000)" in out
    assert out.splitlines()[-1] == (
        "check-migrations: 1 problem in 1 table: models changed without a matching revision; "
        "1 ignored."
    )


def test_everything_ignored_exits_0_with_the_count(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("base")
    drift(project)
    settings(project, 'ignore = ["add_column:users.phone", "modify_type:notes.body"]')
    assert main([]) == EXIT_OK
    out = capsys.readouterr()
    assert out.out.splitlines()[-1].startswith("check-migrations: models and migrations agree")
    assert out.out.rstrip().endswith("; 2 ignored.")
    assert "warning" not in out.err


def test_a_rule_that_matches_nothing_is_warned_about(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("base")
    drift(project)
    settings(project, 'ignore = ["add_column:users.phone", "remove_table:legacy_*"]')
    assert main([]) == EXIT_FINDINGS
    err = capsys.readouterr().err
    warnings = [ln for ln in err.splitlines() if "warning" in ln]
    assert warnings == [
        f"check-migrations: warning: ignore rule 'remove_table:legacy_*' ({project}/"
        "pyproject.toml [tool.check-migrations]) matched nothing; remove it"
    ]


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        ("drop_tables:legacy_*", "unknown finding kind 'drop_tables'"),
        ("legacy_*", "is not KIND:GLOB"),
        ("remove_table:", "is not KIND:GLOB"),
    ],
)
def test_a_bad_rule_is_exit_2_naming_it_before_any_server_starts(
    rule: str, says: str, scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("base")
    settings(project, f'ignore = ["{rule}"]')
    assert main([]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"check-migrations: error: {project}/pyproject.toml [tool.check-migrations]: "
        f"ignore rule {rule!r}{':' if 'unknown' in says else ''} {says}"
        + (f"; known: {', '.join(sorted(KINDS))}, or * for any" if "unknown" in says else "")
        + ("" if "unknown" in says else ' (e.g. "remove_table:legacy_*" or "*:audit.*")')
    ]


def test_ignore_is_not_a_list(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("base")
    settings(project, "ignore = 3")
    assert main([]) == EXIT_ERROR
    assert capsys.readouterr().err.splitlines() == [
        f"check-migrations: error: {project}/pyproject.toml [tool.check-migrations]: invalid "
        "value 3 for ignore (a list of strings)"
    ]


def test_ignore_from_the_environment(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = scenario("base")
    drift(project)
    monkeypatch.setenv("CHECK_MIGRATIONS_IGNORE", "add_column:users.phone, modify_type:notes.*")
    assert main([]) == EXIT_OK
    assert capsys.readouterr().out.rstrip().endswith("; 2 ignored.")


def test_env_py_include_object_still_applies_first(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """include_object filters inside autogenerate; a rule only sees what is left."""
    project = scenario("base")
    drift(project)
    env = project / "env.py"
    edit(
        env,
        "target_metadata = metadata\n",
        "target_metadata = metadata\n\n\n"
        "def include_object(obj, name, type_, reflected, compare_to):\n"
        '    return not (type_ == "column" and name == "body")\n',
    )
    env.write_text(
        env.read_text().replace(
            "compare_server_default=True)",
            "compare_server_default=True,\n"
            "                          include_object=include_object)",
        )
    )
    settings(project, 'ignore = ["add_column:users.phone"]')
    assert main([]) == EXIT_OK
    out = capsys.readouterr()
    assert out.out.rstrip().endswith("; 1 ignored.")
    assert "warning" not in out.err

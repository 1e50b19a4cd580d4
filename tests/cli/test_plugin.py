"""The pytest plugin, run by pytest itself (pytester) in copies of scenario projects."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.edits import PHONE, edit
from tests.helpers.paths import SCENARIOS

pytest_plugins = ["pytester"]

WIDER = ("mapped_column(String(500))", "mapped_column(String(1000))")


def project(pytester: pytest.Pytester, name: str = "base", dest: str = ".") -> Path:
    target = pytester.path / dest
    shutil.copytree(SCENARIOS / name, target, dirs_exist_ok=True)
    return target


def test_nothing_runs_unless_asked(pytester: pytest.Pytester) -> None:
    project(pytester)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes()
    # The header lists the plugin's distribution (check-migrations-0.1.0); no item is collected.
    assert "collected 0 items" in result.stdout.str()
    assert "alembic.ini" not in result.stdout.str()


def test_an_in_sync_project_passes(pytester: pytest.Pytester) -> None:
    project(pytester)
    result = pytester.runpytest("-p", "no:cacheprovider", "--check-migrations", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*check-migrations?alembic.ini? PASSED*"])


def test_a_failure_shows_the_text_report(pytester: pytest.Pytester) -> None:
    edit(project(pytester) / "models.py", *WIDER)
    result = pytester.runpytest("-p", "no:cacheprovider", "--check-migrations")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ check-migrations?alembic.ini? _*",
            "notes",
            "  models.py:31: notes.body: type is VARCHAR(1000) in the models, VARCHAR(500) in "
            "the database [modify_type]",
            "      op.alter_column('notes', 'body',",
            "*",
            "Generate the missing revision, review it, and commit it with the models:",
            '  check-migrations revision -m "describe the change" --rev-id 0003',
            "",
            "check-migrations: 1 problem in 1 table: models changed without a matching revision.",
            "*short test summary info*",
            "FAILED ::check-migrations?alembic.ini?*",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_one_item_per_config_with_ignore_rules_and_errors(pytester: pytest.Pytester) -> None:
    edit(project(pytester, dest="a") / "models.py", *WIDER)
    edit(project(pytester, dest="b") / "models.py", *PHONE)
    project(pytester, "bad_sql", dest="c")
    pytester.makepyprojecttoml(
        "[tool.check-migrations]\n"
        'configs = ["a/alembic.ini", "b/alembic.ini", "c/alembic.ini"]\n'
        'ignore = ["modify_type:notes.body"]\n'
    )
    # a's only finding is ignored; b's is not; c cannot be checked.
    result = pytester.runpytest("-p", "no:cacheprovider", "--check-migrations", "-v")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*check-migrations?a/alembic.ini? PASSED*",
            "*check-migrations?b/alembic.ini? FAILED*",
            "*check-migrations?c/alembic.ini? FAILED*",
            "*_ check-migrations?b/alembic.ini? _*",
            "users",
            "  b/models.py:*: users.phone: column phone VARCHAR(30) in the models, no revision "
            "adds it ?add_column?",
            "*_ check-migrations?c/alembic.ini? _*",
            "check-migrations: error: revision 0002 (versions/0002_broken.py) failed*",
        ]
    )


def test_bad_settings_are_one_failing_item(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyprojecttoml('[tool.check-migrations]\nignore = ["drop_tables:x"]\n')
    result = pytester.runpytest("-p", "no:cacheprovider", "--check-migrations")
    result.assert_outcomes(failed=1)
    said = "*ignore rule 'drop_tables:x': unknown finding kind 'drop_tables'*"
    result.stdout.fnmatch_lines([said])


def test_loading_the_plugin_imports_nothing_heavy() -> None:
    """Every pytest run in an environment with the package loads the plugin: keep it cheap."""
    code = (
        "import sys, migration_check.cli.pytest_plugin\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('migration_check', 'click', 'sqlalchemy', 'alembic', 'psycopg')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    # migration_check.cli is the package's __init__: a docstring, nothing imported.
    expected = ["migration_check", "migration_check.cli", "migration_check.cli.pytest_plugin"]
    assert out.strip() == repr(expected)

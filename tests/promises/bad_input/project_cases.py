"""Bad input in the project: alembic.ini, env.py, models, revisions, .env and settings.

Each case starts from a scenario project (a copy of ``tests/scenarios/base`` or a ``bad_*``
directory) and breaks one thing. Progress lines are silenced (CHECK_MIGRATIONS_QUIET=1), so
stderr must be exactly the error line: no traceback, no second line. Two cases are not errors
at all and say so: an empty history with models present is drift (exit 1), and two heads is a
finding (exit 1) that prints the ``alembic merge heads`` command. Bad input from the machine
(URLs, servers, binaries, run directories) is in environment_cases.py; test_bad_input.py runs
both.
"""

from __future__ import annotations

from pathlib import Path

from migration_check.cli.app import EXIT_FINDINGS
from tests.helpers.bad_input import (
    Case,
    Ctx,
    env_prepend,
    write_revision,
)
from tests.helpers.edits import edit
from tests.helpers.second_server import OWNER_PASSWORD


def no_alembic_ini(project: Path, ctx: Ctx) -> list[str]:
    (project / "alembic.ini").unlink()
    return []


def ini_not_ini(project: Path, ctx: Ctx) -> list[str]:
    (project / "alembic.ini").write_text("script_location = .\n[alembic\n")
    return []


def wrong_script_location(project: Path, ctx: Ctx) -> list[str]:
    edit(project / "alembic.ini", "script_location = %(here)s", "script_location = migrations")
    return []


def missing_section(project: Path, ctx: Ctx) -> list[str]:
    return ["--name", "tenants"]


def env_raises(project: Path, ctx: Ctx) -> list[str]:
    env_prepend(project, 'raise RuntimeError("SECRET_KEY is not set")')
    return []


def env_exits(project: Path, ctx: Ctx) -> list[str]:
    env_prepend(project, 'import sys\nsys.exit("configure APP_ENV first")')
    return []


def env_never_runs_migrations(project: Path, ctx: Ctx) -> list[str]:
    edit(project / "env.py", "run_migrations_online()\n", "")
    return []


def env_never_commits(project: Path, ctx: Ctx) -> list[str]:
    # Its own engine on DATABASE_URL (allowed: the scratch database), an explicit begin(),
    # and no commit: the upgrade "succeeds" and is rolled back when the connection closes.
    edit(
        project / "env.py",
        "    with engine.connect() as connection:\n",
        "    with engine.connect() as connection:\n        connection.begin()\n",
    )
    edit(
        project / "env.py",
        '    connectable = config.attributes.get("connection")',
        "    connectable = None",
    )
    return []


def target_metadata_none(project: Path, ctx: Ctx) -> list[str]:
    edit(project / "env.py", "target_metadata = metadata", "target_metadata = None")
    return []


def model_import_error(project: Path, ctx: Ctx) -> list[str]:
    edit(
        project / "models.py",
        "from sqlalchemy import",
        "import billing_helpers\nfrom sqlalchemy import",
    )
    return []


def model_syntax_error(project: Path, ctx: Ctx) -> list[str]:
    edit(project / "models.py", "class User(Base):", "class User(Base)")
    return []


def revision_syntax_error(project: Path, ctx: Ctx) -> list[str]:
    write_revision(
        project, "0003", "0002", "    op.add_column('users', sa.Column('x', sa.Integer()", "oops"
    )
    return []


def revision_sql_fails(project: Path, ctx: Ctx) -> list[str]:
    return []


def revision_raises(project: Path, ctx: Ctx) -> list[str]:
    write_revision(
        project, "0003", "0002", "    op.add_column('users', sa.Column('x', sa.Intger()))", "typo"
    )
    return []


def missing_down_revision(project: Path, ctx: Ctx) -> list[str]:
    write_revision(project, "0003", "0099", "    pass", "orphan")
    return []


def revision_cycle(project: Path, ctx: Ctx) -> list[str]:
    edit(project / "versions" / "0001_initial.py", "down_revision = None", 'down_revision = "0002"')
    return []


def not_from_empty(project: Path, ctx: Ctx) -> list[str]:
    return []


def empty_versions(project: Path, ctx: Ctx) -> list[str]:
    for path in (project / "versions").glob("*.py"):
        path.unlink()
    return []


def two_heads(project: Path, ctx: Ctx) -> list[str]:
    write_revision(project, "0003", "0001", "    pass", "branch")
    return []


def malformed_dotenv(project: Path, ctx: Ctx) -> list[str]:
    (project / ".env").write_text(
        f"APP_ENV=dev\nDATABASE_URL=postgresql+psycopg://app:{OWNER_PASSWORD}@db/app\n"
        "this line is not an assignment\n"
    )
    return []


def bad_pyproject_setting(project: Path, ctx: Ctx) -> list[str]:
    (project / "pyproject.toml").write_text("[tool.check-migrations]\ntimeuot = 30\n")
    return []


CASES: dict[str, Case] = {
    "no_alembic_ini": Case(no_alembic_ini, expect=(r"alembic\.ini: no such file", r"--config")),
    "ini_not_ini": Case(ini_not_ini, expect=(r"alembic\.ini: not a valid ini file",)),
    "wrong_script_location": Case(
        wrong_script_location,
        expect=(
            r"error: alembic\.ini: script_location 'migrations': Path doesn't exist: migrations;",
            r"set script_location to the directory holding env\.py",
        ),
    ),
    "missing_section": Case(
        missing_section, expect=(r"alembic\.ini: no \[tenants\] section", r"--name")
    ),
    "env_raises": Case(
        env_raises, expect=(r"^check-migrations: error: env\.py:\d+: RuntimeError: SECRET_KEY",)
    ),
    "env_exits": Case(env_exits, expect=(r"env\.py stopped: configure APP_ENV first",)),
    "env_never_runs_migrations": Case(
        env_never_runs_migrations, expect=(r"env\.py: env\.py never called .*run_migrations",)
    ),
    "env_never_commits": Case(
        env_never_commits,
        expect=(
            r"env\.py: after the upgrade the scratch database's alembic_version holds nothing, "
            r"not head 0002: env\.py did not migrate the database the checker handed it",
        ),
    ),
    "target_metadata_none": Case(
        target_metadata_none, expect=(r"env\.py: target_metadata is None; set it",)
    ),
    "model_import_error": Case(
        model_import_error, expect=(r"models\.py:1: cannot import module 'billing_helpers'",)
    ),
    "model_syntax_error": Case(model_syntax_error, expect=(r"models\.py:\d+: SyntaxError",)),
    "revision_syntax_error": Case(
        revision_syntax_error, expect=(r"versions/0003_oops\.py:\d+: SyntaxError",)
    ),
    "revision_sql_fails": Case(
        revision_sql_fails,
        scenario="bad_sql",
        expect=(
            r"revision 0002 \(versions/0002_broken\.py\)",
            r'relation "missing_table" does not exist',
            r"SQLSTATE 42P01",
        ),
    ),
    "revision_raises": Case(
        revision_raises,
        expect=(r"revision 0003 \(versions/0003_typo\.py\) raised AttributeError", r"Intger"),
    ),
    "missing_down_revision": Case(
        missing_down_revision,
        expect=(r"versions/0003_orphan\.py", r"0099", r"down_revision"),
    ),
    "revision_cycle": Case(
        revision_cycle,
        expect=(r"form a cycle", r"0001 \(versions/0001_initial\.py\)", r"down_revision"),
    ),
    "not_from_empty": Case(
        not_from_empty,
        scenario="bad_not_from_empty",
        expect=(
            r"revision 0002 \(versions/0002_legacy_code\.py\)",
            r'relation "legacy_accounts" does not exist',
            r"the history does not build a database from empty",
        ),
    ),
    "empty_versions_is_drift": Case(
        empty_versions,
        exit=EXIT_FINDINGS,
        expect=(r"users: table in the models, no revision creates it \[add_table\]",),
    ),
    "two_heads_is_a_finding": Case(
        two_heads, exit=EXIT_FINDINGS, expect=(r"2 heads", r"alembic merge heads")
    ),
    "malformed_dotenv": Case(malformed_dotenv, expect=(r"\.env:3", r"KEY=VALUE")),
    "bad_pyproject_setting": Case(
        bad_pyproject_setting, expect=(r"pyproject\.toml .*unknown setting 'timeuot'",)
    ),
}

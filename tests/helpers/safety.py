"""The safety tests' scenario: a git repository whose feature branch adds one revision.

tests/scenarios/safety is the history scenario (users, notes) with an env.py that compares
nothing, so each test's revision may change the schema as it likes and only the safety
observation decides the verdict.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from migration_check.cli.app import main
from tests.helpers.git import git
from tests.helpers.scenarios import ScenarioFactory

REVISION = '''"""{rev}

Revision ID: {rev}
Revises: {down}
"""
import sqlalchemy as sa
from alembic import op

revision = "{rev}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
{upgrade}


def downgrade() -> None:
{downgrade}
'''


def _block(code: str) -> str:
    return "\n".join("    " + line if line else "" for line in code.strip("\n").splitlines())


def project_with(
    scenario: ScenarioFactory,
    upgrade: str,
    downgrade: str = "pass",
    *,
    base_upgrade: str = "",
    base_downgrade: str = "pass",
    dest: str = "project",
) -> Path:
    """The scenario on main (plus ``base_upgrade`` as revision 0003), a new revision on feature."""
    project = scenario("safety", dest)
    down = "0002"
    if base_upgrade:
        (project / "versions" / "0003_base.py").write_text(
            REVISION.format(
                rev="0003",
                down="0002",
                upgrade=_block(base_upgrade),
                downgrade=_block(base_downgrade),
            )
        )
        down = "0003"
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "base")
    git(project, "checkout", "-q", "-b", "feature")
    (project / "versions" / "0100_new.py").write_text(
        REVISION.format(rev="0100", down=down, upgrade=_block(upgrade), downgrade=_block(downgrade))
    )
    git(project, "add", "-A")
    return project


def check_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["--format", "json", "--no-cache", *args])
    out, err = capsys.readouterr()
    assert out, err
    return code, json.loads(out)


def safety_kinds(report: dict[str, Any]) -> list[str]:
    return sorted(f["kind"] for f in report["findings"] if f["source"] == "safety")


# (kind, unsafe upgrade, its downgrade, safe upgrade, its downgrade, base revision 0003)
CASES = [
    ("table_rewrite",
     'op.alter_column("users", "name", type_=sa.String(50))',
     'op.alter_column("users", "name", type_=sa.String(100))',
     'op.alter_column("users", "name", type_=sa.String(200))',
     'op.alter_column("users", "name", type_=sa.String(100))', ""),
    ("create_index",
     'op.create_index("ix_users_name", "users", ["name"])',
     'op.drop_index("ix_users_name", "users")',
     'with op.get_context().autocommit_block():\n'
     '    op.create_index("ix_users_name", "users", ["name"], postgresql_concurrently=True)',
     'op.drop_index("ix_users_name", "users")', ""),
    ("drop_index",
     'op.drop_index("ix_users_name", "users")',
     'op.create_index("ix_users_name", "users", ["name"])',
     'with op.get_context().autocommit_block():\n'
     '    op.drop_index("ix_users_name", "users", postgresql_concurrently=True)',
     'op.create_index("ix_users_name", "users", ["name"])',
     'op.create_index("ix_users_name", "users", ["name"])'),
    ("constraint_validated",
     'op.create_check_constraint("ck_users_email", "users", "length(email) > 0")',
     'op.drop_constraint("ck_users_email", "users", type_="check")',
     'op.create_check_constraint("ck_users_email", "users", "length(email) > 0", '
     "postgresql_not_valid=True)",
     'op.drop_constraint("ck_users_email", "users", type_="check")', ""),
    ("set_not_null",
     'op.alter_column("users", "name", nullable=False)',
     'op.alter_column("users", "name", nullable=True)',
     'op.create_check_constraint("ck_users_name_nn", "users", "name IS NOT NULL", '
     "postgresql_not_valid=True)",
     'op.drop_constraint("ck_users_name_nn", "users", type_="check")', ""),
    ("not_null_without_default",
     'op.add_column("users", sa.Column("age", sa.Integer(), nullable=False))',
     'op.drop_column("users", "age")',
     'op.add_column("users", sa.Column("age", sa.Integer(), nullable=False, '
     'server_default="0"))',
     'op.drop_column("users", "age")', ""),
    ("unique_constraint",
     'op.create_unique_constraint("uq_users_name", "users", ["name"])',
     'op.drop_constraint("uq_users_name", "users", type_="unique")',
     'with op.get_context().autocommit_block():\n'
     '    op.create_index("uq_users_name", "users", ["name"], unique=True, '
     "postgresql_concurrently=True)\n"
     'op.execute("ALTER TABLE users ADD CONSTRAINT uq_users_name UNIQUE USING INDEX '
     'uq_users_name")',
     'op.drop_constraint("uq_users_name", "users", type_="unique")', ""),
    ("validate_same_transaction",  # op.f: the name as written, not the naming convention's
     'op.create_check_constraint(op.f("ck_users_email"), "users", "length(email) > 0", '
     "postgresql_not_valid=True)\n"
     'op.execute("ALTER TABLE users VALIDATE CONSTRAINT ck_users_email")',
     'op.drop_constraint("ck_users_email", "users", type_="check")',
     'op.create_check_constraint("ck_users_email", "users", "length(email) > 0", '
     "postgresql_not_valid=True)",
     'op.drop_constraint("ck_users_email", "users", type_="check")', ""),
]  # fmt: skip

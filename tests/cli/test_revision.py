"""``check-migrations revision``: the missing revision written without a database of one's own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from migration_check.cli.app import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK, main
from migration_check.findings import Finding
from migration_check.run.project import next_rev_id
from migration_check.worker.revision import (
    REVIEW_COMMENT,
    UNDONE_COMMENT,
    add_hand_written,
    hand_written_code,
)
from tests.helpers.edits import NICKNAME, edit_all
from tests.helpers.paths import REPO
from tests.helpers.scenarios import ScenarioFactory


def _ruff_check(path: Path) -> subprocess.CompletedProcess[str]:
    # The repository's own rule set, which is stricter than ruff's defaults.
    return subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--config",
         str(REPO / "pyproject.toml"), str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_written_revision_makes_the_check_pass(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("history")
    edit_all(project / "models.py", *NICKNAME)
    assert main([]) == EXIT_FINDINGS
    out = capsys.readouterr().out
    # The check's hint is the writer, with the project's next hand-chosen id.
    assert 'check-migrations revision -m "describe the change" --rev-id 0003' in out

    assert main(["revision", "-m", "add nickname", "--rev-id", "0003"]) == EXIT_OK
    out = capsys.readouterr().out
    written = project / "versions" / "0003_add_nickname.py"
    assert out.splitlines() == [str(written.relative_to(project))]
    text = written.read_text()
    assert "op.add_column(" in text
    assert 'down_revision = "0002"' in text  # post_write_hooks ran: ruff format's quotes
    assert REVIEW_COMMENT not in text  # nothing from the catalog: no hand-written part
    lint = _ruff_check(written)
    assert lint.returncode == 0, lint.stdout + lint.stderr

    assert main([]) == EXIT_OK
    assert "models and migrations agree (3 revision(s) applied, head 0003" in (
        capsys.readouterr().out
    )


def test_nothing_to_write(scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]) -> None:
    project = scenario("history")
    before = sorted(p.name for p in (project / "versions").iterdir())
    assert main(["revision", "-m", "nothing"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "nothing to write" in out
    assert sorted(p.name for p in (project / "versions").iterdir()) == before


def test_failing_revision_stops_the_writer(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("bad_sql")
    before = sorted(p.name for p in (project / "versions").iterdir())
    assert main(["revision", "-m", "x"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "0002" in err
    assert sorted(p.name for p in (project / "versions").iterdir()) == before


def test_existing_rev_id_is_one_line_exit_2(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("history")
    edit_all(project / "models.py", *NICKNAME)
    assert main(["revision", "-m", "dup", "--rev-id", "0002"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "0002" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        (["0001", "0002", "0003"], "0004"),
        (["0009"], "0010"),
        (["001", "002"], "003"),
        ([], None),
        (["ae1027a6acf"], None),
        (["0001", "1975ea83b712"], None),
        (["1", "2"], "3"),
        (["9", "10"], "11"),
        (["0001", "02"], None),  # padded to no one width
        (["99"], "100"),
        (["08", "99"], None),  # the padding has run out
    ],
)
def test_rev_id_convention(ids: list[str], expected: str | None) -> None:
    assert next_rev_id(ids) == expected


ENUM_CODE = "op.execute(\"ALTER TYPE user_status ADD VALUE IF NOT EXISTS 'archived'\")"
BLOCK_CODE = (
    "with op.get_context().autocommit_block():\n"
    "    op.execute(\"ALTER TYPE user_status ADD VALUE 'gone'\")\n"
    "op.execute('COMMENT ON TYPE user_status IS NULL')"
)


def test_hand_written_part_is_placed_under_the_review_comment(tmp_path: Path) -> None:
    """Unit level: the catalog comparison (another branch) supplies these findings for real."""
    from alembic.autogenerate import render_python_code
    from alembic.operations import ops

    findings = [
        Finding("add_enum_value", "users", "enum value", op=ENUM_CODE, source="catalog"),
        Finding("add_enum_value", "users", "same value twice", op=ENUM_CODE, source="catalog"),
        Finding("modify_check", "users", "block", op=BLOCK_CODE, source="catalog"),
        Finding("add_column", "users", "autogenerate's", op="op.add_column(...)"),
    ]
    codes = hand_written_code(findings)
    assert codes == sorted([ENUM_CODE, BLOCK_CODE])
    upgrade = ops.UpgradeOps(ops=[ops.DropTableOp("legacy")])
    add_hand_written(upgrade, codes)
    body = render_python_code(upgrade)
    lines = [ln.strip() for ln in body.splitlines()]
    assert lines.index(REVIEW_COMMENT) > lines.index("op.drop_table('legacy')")
    assert lines.count(ENUM_CODE) == 1
    module = tmp_path / "rev.py"
    module.write_text("from alembic import op\n\n\ndef upgrade() -> None:\n    " + body + "\n")
    compile(module.read_text(), str(module), "exec")
    # The block kept its shape: the statement inside the with, the next one after it.
    source = module.read_text()
    inside = "autocommit_block():\n        op.execute(\"ALTER TYPE user_status ADD VALUE 'gone'\")"
    assert inside in source
    assert "\n    op.execute('COMMENT ON TYPE user_status IS NULL')" in source
    subprocess.run([sys.executable, "-m", "ruff", "format", "-q", "--no-cache", str(module)],
                   check=True)  # fmt: skip
    lint = _ruff_check(module)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_hand_written_nothing_from_the_catalog_adds_nothing() -> None:
    from alembic.operations import ops

    upgrade = ops.UpgradeOps(ops=[])
    add_hand_written(upgrade, hand_written_code([Finding("add_column", "t", "m", op="x")]))
    assert upgrade.is_empty()


STATE_REVISION = '''"""user state

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    state = sa.Enum("active", "archived", name="user_state")
    state.create(op.get_bind())
    op.add_column("users", sa.Column("state", state, nullable=True))


def downgrade() -> None:
    op.drop_column("users", "state")
    sa.Enum(name="user_state").drop(op.get_bind())
'''


def test_enum_value_is_written_by_hand_for_review(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """Autogenerate cannot see a new enum value; the catalog comparison supplies the code."""
    project = scenario("history")
    (project / "versions" / "0003_user_state.py").write_text(STATE_REVISION)
    edit_all(
        project / "models.py",
        "from sqlalchemy import ForeignKey,",
        "from sqlalchemy import Enum, ForeignKey,",
    )
    edit_all(
        project / "models.py",
        *(
            "    name: Mapped[str | None] = mapped_column(String(100))\n",
            "    name: Mapped[str | None] = mapped_column(String(100))\n"
            '    state: Mapped[str | None] = mapped_column(Enum("active", "archived", '
            'name="user_state"))\n',
        ),
    )
    assert main([]) == EXIT_OK
    edit_all(project / "models.py", '"archived", name=', '"archived", "gone", name=')
    assert main([]) == EXIT_FINDINGS
    assert "[add_enum_value" in capsys.readouterr().out

    assert main(["revision", "-m", "state gone", "--rev-id", "0004"]) == EXIT_OK
    written = project / "versions" / "0004_state_gone.py"
    assert capsys.readouterr().out.splitlines() == [str(written.relative_to(project))]
    text = written.read_text()
    upgrade = text.split("def upgrade() -> None:")[1].split("def downgrade")[0]
    assert REVIEW_COMMENT in upgrade
    after = upgrade.split(REVIEW_COMMENT)[1]
    assert "ALTER TYPE" in after
    assert "ADD VALUE 'gone'" in after
    # The catalog renders the change both ways: downgrade() rebuilds the type without 'gone'.
    downgrade = text.split("def downgrade() -> None:")[1]
    assert UNDONE_COMMENT in downgrade
    assert "CREATE TYPE" in downgrade
    assert "'gone'" not in downgrade
    lint = _ruff_check(written)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert main([]) == EXIT_OK

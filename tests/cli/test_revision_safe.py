"""``check-migrations revision`` writes the safe form of ops on tables that already exist.

Each written revision is applied with the real ``alembic upgrade`` / ``downgrade`` on a
database of its own, linted, and checked again: the safe form must be the same schema
(no drift), reached without the locks autogenerate's form takes (shared/SAFETY.md).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from migration_check.cli.app import EXIT_ERROR, EXIT_OK, main
from tests.helpers.edits import NAME_LINE, NICKNAME, edit
from tests.helpers.paths import REPO
from tests.helpers.plain_alembic import alembic, ok
from tests.helpers.scenarios import ScenarioFactory

NAME = NAME_LINE
BODY = "    body: Mapped[str] = mapped_column(String(500))\n"
INDEXED_NAME = (NAME, "    name: Mapped[str | None] = mapped_column(String(100), index=True)\n")
UNIQUE_NICKNAME = (
    NAME,
    NAME + "    nickname: Mapped[str | None] = mapped_column(String(50), unique=True)\n",
)
AUTHOR = (
    BODY,
    BODY + '    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))\n',
)
CHECK = (
    BODY,
    BODY + '    __table_args__ = (CheckConstraint("length(body) > 0", name="body_set"),)\n',
)
TAGS = """

class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    label: Mapped[str] = mapped_column(String(40), index=True, unique=True)
"""
BLOCK = "with op.get_context().autocommit_block():"
TIMEOUT = "op.execute(\"SET lock_timeout = '5s'\")"


def _bodies(path: Path) -> tuple[str, str]:
    text = path.read_text()
    upgrade, downgrade = text.split("def upgrade() -> None:")[1].split("def downgrade() -> None:")
    return upgrade, downgrade


def _statements(body: str) -> list[str]:
    return [ln.strip() for ln in body.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def _ruff_clean(path: Path) -> None:
    lint = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--config",
         str(REPO / "pyproject.toml"), str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert lint.returncode == 0, lint.stdout + lint.stderr


def _alembic(project: Path, url: str, *args: str) -> None:
    """The real ``alembic`` command, against a database of the test's own (env.py's URL)."""
    ok(alembic(project, url, *args))


def _validated(url: str, name: str) -> bool | None:
    """Whether constraint ``name`` is validated (None: there is no such constraint)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.text("SELECT convalidated FROM pg_constraint WHERE conname = :n"), {"n": name}
            ).first()
    finally:
        engine.dispose()
    return None if row is None else bool(row[0])


def _round_trip(project: Path, url: str, base: str = "0002") -> None:
    _alembic(project, url, "upgrade", "head")
    _alembic(project, url, "downgrade", base)
    _alembic(project, url, "upgrade", "head")


def _written(capsys: pytest.CaptureFixture[str]) -> tuple[list[str], list[str]]:
    out, err = capsys.readouterr()
    notes = [ln for ln in err.splitlines() if ln.startswith("check-migrations: wrote ")]
    return out.splitlines(), notes


def test_index_on_an_existing_table_is_built_concurrently(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str], scratch_url: str
) -> None:
    project = scenario("history")
    edit(project / "models.py", *INDEXED_NAME)
    assert main(["revision", "-m", "index name", "--rev-id", "0003"]) == EXIT_OK
    out, notes = _written(capsys)
    assert out == ["versions/0003_index_name.py"]
    assert notes == [
        "check-migrations: wrote create_index ix_users_name CONCURRENTLY (the table exists: "
        "a plain CREATE INDEX blocks writes while it builds)"
    ]
    written = project / "versions" / "0003_index_name.py"
    upgrade, downgrade = _bodies(written)
    for body, call in ((upgrade, "op.create_index("), (downgrade, "op.drop_index(")):
        lines = _statements(body)
        assert lines[0] == BLOCK
        assert lines[1].startswith(call)
        assert "postgresql_concurrently=True" in body
    assert "lock_timeout" not in upgrade  # a concurrent build takes no blocking lock
    _ruff_clean(written)
    _round_trip(project, scratch_url)
    assert main([]) == EXIT_OK


def test_foreign_key_is_added_not_valid_and_validated_in_a_second_revision(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str], scratch_url: str
) -> None:
    project = scenario("history")
    edit(project / "models.py", *AUTHOR)
    assert main(["revision", "-m", "note author", "--rev-id", "0003"]) == EXIT_OK
    out, notes = _written(capsys)
    assert out == [
        "versions/0003_note_author.py",
        "versions/0004_validate_fk_notes_author_id_users.py",
    ]
    assert any("create_foreign_key fk_notes_author_id_users NOT VALID" in n for n in notes)
    assert any("SET lock_timeout = '5s'" in n and "notes" in n for n in notes)
    first = project / out[0]
    second = project / out[1]
    upgrade, _ = _bodies(first)
    assert _statements(upgrade)[0] == TIMEOUT  # add_column locks notes ACCESS EXCLUSIVE
    assert "postgresql_not_valid=True" in upgrade
    text = second.read_text()
    assert 'down_revision = "0003"' in text
    assert 'op.execute("ALTER TABLE notes VALIDATE CONSTRAINT fk_notes_author_id_users")' in text
    for path in (first, second):
        _ruff_clean(path)
    # Production takes the brief lock first, and validates later under a weaker one.
    _alembic(project, scratch_url, "upgrade", "0003")
    assert _validated(scratch_url, "fk_notes_author_id_users") is False
    _alembic(project, scratch_url, "upgrade", "head")
    assert _validated(scratch_url, "fk_notes_author_id_users") is True
    _alembic(project, scratch_url, "downgrade", "0002")
    assert _validated(scratch_url, "fk_notes_author_id_users") is None
    _alembic(project, scratch_url, "upgrade", "head")
    assert main([]) == EXIT_OK


def test_check_constraint_is_added_not_valid_and_validated_in_a_second_revision(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str], scratch_url: str
) -> None:
    """Autogenerate cannot see a CHECK: the catalog's code is the one written NOT VALID."""
    project = scenario("history")
    edit(
        project / "models.py", "from sqlalchemy import ", "from sqlalchemy import CheckConstraint, "
    )
    edit(project / "models.py", *CHECK)
    assert main(["revision", "-m", "body set", "--rev-id", "0003"]) == EXIT_OK
    out, notes = _written(capsys)
    assert out == ["versions/0003_body_set.py", "versions/0004_validate_ck_notes_body_set.py"]
    assert any("create_check_constraint ck_notes_body_set NOT VALID" in n for n in notes)
    upgrade, _ = _bodies(project / out[0])
    assert _statements(upgrade)[0] == TIMEOUT  # even NOT VALID locks notes, briefly
    assert "postgresql_not_valid=True" in upgrade
    assert "VALIDATE CONSTRAINT ck_notes_body_set" in (project / out[1]).read_text()
    for path in out:
        _ruff_clean(project / path)
    _alembic(project, scratch_url, "upgrade", "0003")
    assert _validated(scratch_url, "ck_notes_body_set") is False
    _alembic(project, scratch_url, "upgrade", "head")
    assert _validated(scratch_url, "ck_notes_body_set") is True
    _round_trip(project, scratch_url)
    # A NOT VALID check left unvalidated would differ in the catalog ("... NOT VALID").
    assert main([]) == EXIT_OK


def test_unique_constraint_is_attached_to_a_concurrent_index(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str], scratch_url: str
) -> None:
    project = scenario("history")
    edit(project / "models.py", *UNIQUE_NICKNAME)
    assert main(["revision", "-m", "nickname", "--rev-id", "0003"]) == EXIT_OK
    out, notes = _written(capsys)
    assert out == ["versions/0003_nickname.py"]
    assert any("create_unique_constraint uq_users_nickname as a unique index" in n for n in notes)
    upgrade, _ = _bodies(project / out[0])
    lines = _statements(upgrade)
    assert lines[0] == TIMEOUT
    assert lines.index(BLOCK) < next(i for i, ln in enumerate(lines) if "USING INDEX" in ln)
    assert "unique=True" in upgrade
    assert "postgresql_concurrently=True" in upgrade
    assert "UNIQUE USING INDEX uq_users_nickname" in upgrade
    _ruff_clean(project / out[0])
    _round_trip(project, scratch_url)
    assert _validated(scratch_url, "uq_users_nickname") is True
    assert main([]) == EXIT_OK


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ([], TIMEOUT),
        (["--write-lock-timeout", "250ms"], "op.execute(\"SET lock_timeout = '250ms'\")"),
        (["--write-lock-timeout", "off"], None),
    ],
)
def test_lock_timeout_comes_first_when_an_existing_table_is_locked(
    scenario: ScenarioFactory,
    capsys: pytest.CaptureFixture[str],
    scratch_url: str,
    flag: list[str],
    expected: str | None,
) -> None:
    project = scenario("history")
    edit(project / "models.py", *NICKNAME)
    assert main(["revision", "-m", "nickname", "--rev-id", "0003", *flag]) == EXIT_OK
    out, notes = _written(capsys)
    upgrade, _ = _bodies(project / out[0])
    lines = _statements(upgrade)
    if expected is None:
        assert "lock_timeout" not in upgrade
        assert notes == []
    else:
        assert lines[0] == expected
        assert lines[1].startswith("op.add_column(")
        assert len(notes) == 1
        assert "at the top of upgrade() (it locks users:" in notes[0]
    _ruff_clean(project / out[0])
    _round_trip(project, scratch_url)
    assert main([]) == EXIT_OK


def test_a_bad_lock_timeout_is_one_line_exit_2(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("history")
    edit(project / "models.py", *NICKNAME)
    before = sorted(p.name for p in (project / "versions").iterdir())
    code = main(["revision", "-m", "x", "--write-lock-timeout", "5 seconds"])
    assert code == EXIT_ERROR
    err = capsys.readouterr().err
    assert "--write-lock-timeout" in err
    assert "'5 seconds' is not a PostgreSQL time: give e.g. 5s, 500ms or 1min" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in (project / "versions").iterdir()) == before


def _tags_and_index(project: Path) -> None:
    edit(project / "models.py", *INDEXED_NAME)
    edit(project / "models.py", *AUTHOR)
    (project / "models.py").write_text((project / "models.py").read_text() + TAGS)


def test_a_table_the_revision_creates_keeps_plain_ops(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str], scratch_url: str
) -> None:
    """An empty new table cannot block anyone: its index and FK stay as autogenerate wrote."""
    project = scenario("history")
    _tags_and_index(project)
    assert main(["revision", "-m", "tags", "--rev-id", "0003"]) == EXIT_OK
    out, notes = _written(capsys)
    assert out[0] == "versions/0003_tags.py"
    upgrade, downgrade = _bodies(project / out[0])
    tags = upgrade.split('"tags",', 1)[1].split("op.add_column")[0]
    assert 'op.create_index(op.f("ix_tags_label"), "tags", ["label"], unique=True)' in tags
    assert "postgresql" not in tags
    assert 'op.drop_index(op.f("ix_tags_label"), table_name="tags")' in downgrade
    # The existing tables' ops in the same revision are rewritten.
    assert upgrade.count(BLOCK) == 1
    assert not any("tags" in n for n in notes)
    assert any("create_index ix_users_name CONCURRENTLY" in n for n in notes)
    for path in out:
        _ruff_clean(project / path)
    _round_trip(project, scratch_url)
    assert main([]) == EXIT_OK


def test_plain_writes_autogenerates_ops(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str], scratch_url: str
) -> None:
    project = scenario("history")
    _tags_and_index(project)
    assert main(["revision", "-m", "tags", "--rev-id", "0003", "--plain"]) == EXIT_OK
    out, notes = _written(capsys)
    assert out == ["versions/0003_tags.py"]
    assert notes == []
    text = (project / out[0]).read_text()
    for safe in (
        "autocommit_block",
        "postgresql_concurrently",
        "postgresql_not_valid",
        "lock_timeout",
    ):
        assert safe not in text
    assert 'op.create_index(op.f("ix_users_name"), "users", ["name"], unique=False)' in text
    _ruff_clean(project / out[0])
    _round_trip(project, scratch_url)
    assert main([]) == EXIT_OK


DIRECTIVES = '''

def number_revisions(context, revision, directives):
    """Sequential ids, as many projects number them (Alembic's cookbook hook)."""
    head = context.script.get_current_head()
    directives[0].rev_id = f"{int(head) + 1:04d}"

'''


def test_env_pys_process_revision_directives_runs_first(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """The safe forms rewrite what env.py's hook made: its id, and the next after it."""
    project = scenario("history")
    env = project / "env.py"
    edit(env, "\n\ndef run_migrations_online", DIRECTIVES + "\ndef run_migrations_online")
    env.write_text(
        env.read_text().replace(
            "compare_server_default=True)",
            "compare_server_default=True,\n"
            "                          process_revision_directives=number_revisions)",
        )
    )
    edit(project / "models.py", *AUTHOR)
    assert main(["revision", "-m", "note author"]) == EXIT_OK
    out, notes = _written(capsys)
    assert out == [
        "versions/0003_note_author.py",
        "versions/0004_validate_fk_notes_author_id_users.py",
    ]
    assert "postgresql_not_valid=True" in (project / out[0]).read_text()
    assert 'down_revision = "0003"' in (project / out[1]).read_text()
    assert any("NOT VALID" in n for n in notes)
    assert main([]) == EXIT_OK


def test_dropping_an_existing_table_sets_the_lock_timeout_first() -> None:
    """Unit level, on Alembic's own ops: DROP TABLE of a table that was there locks it."""
    from alembic.autogenerate import render_python_code
    from alembic.operations import ops

    from migration_check.worker.safe_forms import SafeForms

    upgrade = ops.UpgradeOps([ops.DropTableOp("legacy"), ops.CreateTableOp("fresh", [])])
    forms = SafeForms("5s", validate_later=True)
    forms.rewrite(upgrade, upgrade=True)
    lines = _statements(render_python_code(upgrade))
    assert lines[:2] == [TIMEOUT, "op.drop_table('legacy')"]
    assert forms.notes == [
        "wrote SET lock_timeout = '5s' at the top of upgrade() (it locks legacy: a lock queued "
        "behind a long query blocks every query after it)"
    ]

"""The comparison folded into the upgrade's run of env.py (worker/autogenerate/folded.py).

A check on a reused migrated database at head runs env.py once, where it ran it twice (an
upgrade of nothing, then ``alembic check``'s comparison); each case holds that check to
``--no-cache``'s exit code, stdout and error line (tests/helpers/folded.py).
"""

from __future__ import annotations

from pathlib import Path

from tests.helpers.edits import edit
from tests.helpers.folded import fold_check, folded_agrees, stored
from tests.helpers.soundness import add_user_column, drift_in_notes

CONFIGURE = "context.configure(connection=connectable, target_metadata=target_metadata,"


def _configure_with(project: Path, options: str) -> None:
    """More ``context.configure`` options in the sharing branch (the one the checker takes)."""
    edit(project / "env.py", CONFIGURE, f"{CONFIGURE} {options},")


def test_a_check_at_head_runs_env_py_once(tmp_path: Path, run_root: Path) -> None:
    check = fold_check(tmp_path, run_root)
    assert stored(check).envpy_runs == 2
    reused = folded_agrees(check)
    assert reused.exit == 0
    assert reused.envpy_runs == 1


def test_a_drifted_model_on_the_reused_database(tmp_path: Path, run_root: Path) -> None:
    check = fold_check(tmp_path, run_root)
    stored(check)
    drift_in_notes(check.project)
    reused = folded_agrees(check)
    assert reused.exit == 1
    assert "notes.pinned" in reused.stdout


def test_include_object_and_include_name_filter_the_folded_comparison(
    tmp_path: Path, run_root: Path
) -> None:
    check = fold_check(tmp_path, run_root)
    edit(check.project / "env.py", "def run_migrations_online", (
        "def include_name(name, type_, parent_names):\n"
        "    return not (type_ == 'column' and name == 'name')\n\n\n"
        "def include_object(obj, name, type_, reflected, compare_to):\n"
        "    return not (type_ == 'table' and name == 'notes' or name == 'nickname')\n\n\n"
        "def run_migrations_online"))  # fmt: skip
    _configure_with(check.project, "include_name=include_name, include_object=include_object")
    stored(check)
    drift_in_notes(check.project)  # a table include_object leaves out
    # A reflected column include_name leaves out, gone from the models.
    edit(
        check.project / "models.py",
        "    name: Mapped[str | None] = mapped_column(String(100))\n",
        "",
    )
    add_user_column(check.project, "nickname: Mapped[str | None] = mapped_column(String(50))")
    assert folded_agrees(check).exit == 0
    add_user_column(check.project, "nick: Mapped[str | None] = mapped_column(String(50))")
    reused = folded_agrees(check)
    assert reused.exit == 1
    assert "users.nick" in reused.stdout
    assert "nickname" not in reused.stdout


def test_process_revision_directives_that_empties_the_directives(
    tmp_path: Path, run_root: Path
) -> None:
    check = fold_check(tmp_path, run_root)
    edit(check.project / "env.py", "def run_migrations_online", (
        "def process_revision_directives(context, revision, directives):\n"
        "    directives[:] = []\n\n\n"
        "def run_migrations_online"))  # fmt: skip
    _configure_with(check.project, "process_revision_directives=process_revision_directives")
    stored(check)
    drift_in_notes(check.project)
    folded_agrees(check)


def test_process_revision_directives_that_rejects_them(tmp_path: Path, run_root: Path) -> None:
    check = fold_check(tmp_path, run_root)
    edit(check.project / "env.py", "def run_migrations_online", (
        "def process_revision_directives(context, revision, directives):\n"
        "    if not directives[0].upgrade_ops.is_empty():\n"
        "        raise ValueError('autogenerate found changes; write them by hand')\n\n\n"
        "def run_migrations_online"))  # fmt: skip
    _configure_with(check.project, "process_revision_directives=process_revision_directives")
    stored(check)
    drift_in_notes(check.project)
    reused = folded_agrees(check)
    assert reused.exit == 2
    assert len(reused.errors) == 1
    assert "env.py" in reused.errors[0]
    assert "ValueError: autogenerate found changes" in reused.errors[0]


def test_sql_env_py_runs_after_run_migrations_is_not_called_stale(
    tmp_path: Path, run_root: Path
) -> None:
    """Its SQL is compared with the entry's after the run (record.sql_changed): the folded
    comparison's own SQL, and the models' database build's, must not count as env.py's."""
    check = fold_check(tmp_path, run_root)
    edit(check.project / "env.py", (
        "        with context.begin_transaction():\n"
        "            context.run_migrations()\n"
        "        return\n"), (
        "        with context.begin_transaction():\n"
        "            context.run_migrations()\n"
        "        from sqlalchemy import text\n"
        "        connectable.execute(text('SELECT count(*) FROM alembic_version'))\n"
        "        return\n"))  # fmt: skip
    stored(check)
    drift_in_notes(check.project)
    assert folded_agrees(check).exit == 1

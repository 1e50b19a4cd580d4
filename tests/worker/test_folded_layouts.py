"""The folded comparison (worker/autogenerate/folded.py) across layouts and around its limits.

An async env.py and the revision writer fold; a multiple-heads problem skips the comparison
either way; an env.py that asks which command runs it is not folded; a reused database found
stale only after the run discards the fold and compares again. Each held to ``--no-cache``.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

import alembic
from tests.helpers.edits import edit
from tests.helpers.folded import REUSED, fold_check, folded_agrees, stored
from tests.helpers.soundness import drift_in_notes

SHARING_RUN = (
    "        with context.begin_transaction():\n"
    "            context.run_migrations()\n"
    "        return\n"
)


@pytest.mark.parametrize("scenario", ["async_env", "conn_async"])
def test_an_async_env_py_folds(tmp_path: Path, run_root: Path, scenario: str) -> None:
    """async_env drives its own event loop; conn_async is handed the checker's (run_sync)."""
    check = fold_check(tmp_path, run_root, scenario)
    stored(check)
    drift_in_notes(check.project)
    reused = folded_agrees(check)
    assert reused.exit == 1
    assert reused.envpy_runs == 1


def test_the_revision_writer_on_a_reused_database(tmp_path: Path, run_root: Path) -> None:
    check = fold_check(tmp_path, run_root)
    # The template every revision is written from, as `alembic init` leaves it.
    shutil.copy(Path(alembic.__file__).parent / "templates" / "generic" / "script.py.mako",
                check.project)  # fmt: skip
    stored(check)
    drift_in_notes(check.project)
    twin = replace(check, project=tmp_path / "twin")
    shutil.copytree(check.project, twin.project)
    args = ("revision", "-m", "add pinned", "--rev-id", "0003")
    reused = folded_agrees(check, *args, twin=twin)
    assert reused.exit == 0, reused.describe()
    assert reused.envpy_runs == 2  # the folded check, then the writer's own run

    def written(project: Path) -> str:
        text = (project / "versions" / "0003_add_pinned.py").read_text()
        return "\n".join(line for line in text.splitlines() if "Create Date" not in line)

    assert "op.add_column(" in written(check.project)
    assert written(check.project) == written(twin.project)


def test_multiple_heads_on_a_reused_database_compare_nothing(
    tmp_path: Path, run_root: Path
) -> None:
    """No fold, no comparison: passes on the code before the fold too, by design."""
    check = fold_check(tmp_path, run_root)
    stored(check)
    for rev in ("0003", "0004"):
        (check.project / "versions" / f"{rev}_branch.py").write_text(
            f'"""branch\n\nRevision ID: {rev}\nRevises: 0002\n"""\n'
            f'revision = "{rev}"\ndown_revision = "0002"\nbranch_labels = None\n'
            "depends_on = None\n\n\ndef upgrade() -> None:\n    pass\n\n\n"
            "def downgrade() -> None:\n    pass\n"
        )
    reused = check.run()
    assert REUSED in reused.stderr, reused.describe()
    fresh = check.run("--no-cache")
    assert reused == fresh, f"{reused.describe()}\n  != {fresh.describe()}"
    assert reused.exit == 1
    assert "0003" in reused.stdout
    assert "0004" in reused.stdout
    assert "comparing the database with the models" not in reused.stderr
    assert reused.envpy_runs == fresh.envpy_runs == 1


def test_an_env_py_that_asks_which_command_runs_it_is_not_folded(
    tmp_path: Path, run_root: Path
) -> None:
    """The upgrade's run answers "head" where the comparison's has none: it runs env.py
    twice, as before (passes on the code before the fold too, by design). Folded, this
    env.py's filter would hide the drift from the comparison: a false "agree"."""
    check = fold_check(tmp_path, run_root)
    edit(check.project / "env.py", "def run_migrations_online", (
        "try:\n"
        "    UPGRADING = context.get_revision_argument() is not None\n"
        "except KeyError:  # `alembic check` hands none\n"
        "    UPGRADING = False\n\n\n"
        "def include_object(obj, name, type_, reflected, compare_to):\n"
        "    return not (UPGRADING and name == 'notes')\n\n\n"
        "def run_migrations_online"))  # fmt: skip
    edit(check.project / "env.py", "context.configure(connection=connectable,",
         "context.configure(connection=connectable, include_object=include_object,")  # fmt: skip
    stored(check)
    drift_in_notes(check.project)
    reused = check.run()
    assert REUSED in reused.stderr, reused.describe()
    fresh = check.run("--no-cache")
    assert reused == fresh, f"{reused.describe()}\n  != {fresh.describe()}"
    assert reused.exit == 1
    assert reused.envpy_runs == fresh.envpy_runs == 2


def test_a_database_found_stale_after_the_folded_run_is_compared_again(
    tmp_path: Path, run_root: Path
) -> None:
    """env.py's SQL after run_migrations differs on every run: the cache finds the reused
    database stale after the run (record.sql_changed), so the fold's findings are discarded,
    the history replayed and compared, the models' database rebuilt (passes on the code
    before the fold too, by design: it is the fold's way back)."""
    check = fold_check(tmp_path, run_root)
    edit(check.project / "env.py", SHARING_RUN, SHARING_RUN.replace("        return\n", (
        "        import time\n"
        "        from sqlalchemy import text\n"
        "        connectable.execute(text(f'SELECT {time.time_ns()}'))\n"
        "        return\n")))  # fmt: skip
    stored(check)
    drift_in_notes(check.project)
    reused = check.run()
    assert REUSED in reused.stderr, reused.describe()
    assert "replaying the history: the SQL env.py runs around the migrations changed" in (
        reused.stderr
    )
    fresh = check.run("--no-cache")
    assert reused == fresh, f"{reused.describe()}\n  != {fresh.describe()}"
    assert reused.exit == 1
    assert reused.envpy_runs == 3  # the folded run, the replay, the comparison
    # The fold's early build of the models' database was undone, not built over.
    assert "create_all() on the models failed" not in reused.stderr, reused.describe()
    assert reused.stderr.count("the models' database is built") == 1, reused.describe()

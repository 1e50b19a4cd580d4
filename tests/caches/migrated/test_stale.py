"""The migrated-database cache is never served stale: every edit it depends on misses.

Edited revisions, env.py, alembic.ini, models, library versions, version_locations set by
env.py, and every shape of import a revision can make of a helper module.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from migration_check.cli.app import EXIT_FINDINGS, EXIT_OK, main
from tests.helpers.caches import STORED, USING, migrated_entries
from tests.helpers.edits import NEW_REVISION, edit
from tests.helpers.reports import run_main
from tests.helpers.scenarios import ScenarioFactory


def test_edited_old_revision_is_replayed_not_served_stale(
    scenario: ScenarioFactory, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("base")
    assert run_main(capsys)[0] == EXIT_OK
    # The oldest revision now builds a wider column than the models declare.
    edit(project / "versions" / "0001_initial.py", "sa.String(100)", "sa.String(120)")
    rc, out, err = run_main(capsys)
    assert rc == EXIT_FINDINGS, err
    assert USING not in err
    assert "upgrading 2 revision(s)" in err
    assert "users.name: type is VARCHAR(100) in the models, VARCHAR(120) in the database" in out


@pytest.mark.parametrize(
    ("filename", "old", "new"),
    [
        ("env.py", "target_metadata = metadata\n", "target_metadata = metadata  # edited\n"),
        ("alembic.ini", "[alembic]\n", "[alembic]\n# edited\n"),
    ],
)
def test_edited_env_or_ini_misses_the_cache(
    filename: str,
    old: str,
    new: str,
    scenario: ScenarioFactory,
    cache_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = scenario("base")
    assert run_main(capsys)[0] == EXIT_OK
    edit(project / filename, old, new)
    rc, _out, err = run_main(capsys)
    assert rc == EXIT_OK
    assert USING not in err
    assert "upgrading 2 revision(s)" in err
    assert STORED in err  # the new state gets its own entry


def test_worker_rejects_an_entry_from_other_library_versions(
    scenario: ScenarioFactory, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI picks entries by file content only; the worker checks the rest of the key."""
    scenario("base")
    assert run_main(capsys)[0] == EXIT_OK
    (entry,) = migrated_entries(cache_dir)
    meta_path = entry / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["env"]["libraries"]["alembic"] = "0.0.1"
    meta_path.write_text(json.dumps(meta))
    rc, _out, err = run_main(capsys)
    assert rc == EXIT_OK
    assert "cached migrated database is stale (PostgreSQL, Python, library version" in err
    assert "upgrading 2 revision(s)" in err
    assert USING not in err


def test_edited_models_replay_from_empty(
    scenario: ScenarioFactory, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model edit beyond its column declarations (here a module-level naming convention) is in
    the key; a column alone is not (issue 20, tests/caches/migrated/test_model_edit_reuse.py)."""
    project = scenario("base")
    assert run_main(capsys)[0] == EXIT_OK
    edit(
        project / "models.py",
        "    name: Mapped[str | None] = mapped_column(String(100))\n",
        "    name: Mapped[str | None] = mapped_column(String(100))\n"
        "    phone: Mapped[str | None] = mapped_column(String(30))\n",
    )
    edit(project / "models.py", '"ix": "ix_%(column_0_label)s"', '"ix": "idx_%(column_0_label)s"')
    (project / "versions" / "0003_phone.py").write_text(NEW_REVISION)
    rc, out, err = run_main(capsys)
    assert rc == EXIT_OK, out + err
    assert USING not in err
    assert "upgrading 3 revision(s)" in err
    assert STORED in err


def test_env_py_setting_version_locations_is_never_served_stale(
    scenario: ScenarioFactory, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Revisions env.py adds at run time are outside what was hashed: no entry is kept."""
    project = scenario("base")
    (project / "versions").rename(project / "history")
    (project / "versions").mkdir()
    edit(
        project / "env.py",
        "target_metadata = metadata\n",
        "target_metadata = metadata\n"
        "context.script.version_locations = [str(__import__('pathlib').Path("
        "config.config_file_name).resolve().parent / 'history')]\n",
    )
    rc, out, err = run_main(capsys)
    assert rc == EXIT_OK, out + err
    assert "2 revision(s) applied" in out
    assert STORED not in err
    edit(project / "history" / "0001_initial.py", "sa.String(100)", "sa.String(120)")
    rc, out, err = run_main(capsys)
    assert rc == EXIT_FINDINGS
    assert USING not in err
    assert "users.name: type is VARCHAR(100) in the models, VARCHAR(120) in the database" in out


# A revision whose column width comes from a project module, imported in one of the shapes a
# project uses. The models declare 10; the helper's LEN then changes to 20: the replay builds
# VARCHAR(20), so the verdict must become "drift" however the module was reached.
HELPER_REVISION = '''"""code

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op
{top}
revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
{body}
    op.add_column("users", sa.Column("code", sa.String(LEN), nullable=True))


def downgrade() -> None:
    op.drop_column("users", "code")
'''


IMPORT_SHAPES = {
    # The repro: imported inside upgrade(), re-exported by outer from inner.
    "inside_upgrade_transitive": ("", "    from hpkg.outer import LEN"),
    "top_level_transitive": ("from hpkg.outer import LEN\n", ""),
    "importlib": (
        "",
        "    import importlib\n\n    LEN = importlib.import_module('hpkg.outer').LEN",
    ),
    "module_attribute": ("import hpkg.outer\n", "    LEN = hpkg.outer.LEN"),
}


@pytest.mark.parametrize("shape", sorted(IMPORT_SHAPES))
def test_every_import_shape_invalidates_the_entry(
    shape: str, scenario: ScenarioFactory, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("base")
    (project / "hpkg").mkdir()
    (project / "hpkg" / "__init__.py").write_text("")
    (project / "hpkg" / "inner.py").write_text("LEN = 10\n")
    (project / "hpkg" / "outer.py").write_text("from hpkg.inner import LEN\n\n__all__ = ['LEN']\n")
    top, body = IMPORT_SHAPES[shape]
    (project / "versions" / "0003_code.py").write_text(HELPER_REVISION.format(top=top, body=body))
    edit(
        project / "models.py",
        "    name: Mapped[str | None] = mapped_column(String(100))\n",
        "    name: Mapped[str | None] = mapped_column(String(100))\n"
        "    code: Mapped[str | None] = mapped_column(String(10))\n",
    )
    rc, out, err = run_main(capsys)
    assert rc == EXIT_OK, out + err
    assert STORED in err
    (project / "hpkg" / "inner.py").write_text("LEN = 20\n")
    slow = main(["--no-cache"])
    slow_out = capsys.readouterr().out
    assert slow == EXIT_FINDINGS, slow_out
    rc, out, err = run_main(capsys)
    assert USING not in err
    assert "upgrading 3 revision(s)" in err
    assert (rc, out) == (slow, slow_out)

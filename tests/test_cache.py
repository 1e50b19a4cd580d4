"""The migrated-database cache: served when nothing it depends on moved, never stale.

Real runs through ``main([...])`` (and the CLI as subprocesses for concurrency) against the
bundled PostgreSQL, each test with its own cache directory.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from migration_check.caches.dirs import bound_pycache
from migration_check.caches.migrated import FORMAT, prune
from migration_check.cli.app import EXIT_FINDINGS, EXIT_OK, main

from .conftest import REPO, ScenarioFactory
from .fault_helpers import shared_dir
from .prereq import require_mount

USING = "using cached migrated database"
STORED = "cached the migrated database for later runs"

NEW_REVISION = '''"""phone

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
    op.add_column("users", sa.Column("phone", sa.String(30), nullable=True))


def downgrade() -> None:
    op.drop_column("users", "phone")
'''


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("CHECK_MIGRATIONS_CACHE_DIR", str(path))
    # These tests are about the migrated database, which a stored verdict would skip.
    monkeypatch.setenv("CHECK_MIGRATIONS_VERDICT_CACHE", "0")
    return path


def _entries(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.glob("migrated-*"))


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def _check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_unchanged_history_is_served_from_the_cache(
    scenario: ScenarioFactory, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario("base")
    rc, out1, err = _check(capsys)
    assert rc == EXIT_OK
    assert STORED in err
    assert USING not in err
    assert len(_entries(cache_dir)) == 1

    rc, out2, err = _check(capsys)
    assert rc == EXIT_OK
    assert f"{USING} (2 revision(s), head 0002)" in err
    assert "upgrading 0 revision(s)" in err
    assert STORED not in err  # nothing new to keep
    assert out2 == out1  # same verdict, same revision count


def test_edited_old_revision_is_replayed_not_served_stale(
    scenario: ScenarioFactory, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("base")
    assert _check(capsys)[0] == EXIT_OK
    # The oldest revision now builds a wider column than the models declare.
    _edit(project / "versions" / "0001_initial.py", "sa.String(100)", "sa.String(120)")
    rc, out, err = _check(capsys)
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
    assert _check(capsys)[0] == EXIT_OK
    _edit(project / filename, old, new)
    rc, _out, err = _check(capsys)
    assert rc == EXIT_OK
    assert USING not in err
    assert "upgrading 2 revision(s)" in err
    assert STORED in err  # the new state gets its own entry


def test_worker_rejects_an_entry_from_other_library_versions(
    scenario: ScenarioFactory, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI picks entries by file content only; the worker checks the rest of the key."""
    scenario("base")
    assert _check(capsys)[0] == EXIT_OK
    (entry,) = _entries(cache_dir)
    meta_path = entry / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["env"]["libraries"]["alembic"] = "0.0.1"
    meta_path.write_text(json.dumps(meta))
    rc, _out, err = _check(capsys)
    assert rc == EXIT_OK
    assert "cached migrated database is stale (PostgreSQL, Python, library version" in err
    assert "upgrading 2 revision(s)" in err
    assert USING not in err


def test_new_head_revision_starts_from_the_cached_ancestor(
    scenario: ScenarioFactory, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("base")
    assert _check(capsys)[0] == EXIT_OK
    # A data-only revision: the models need no edit (an edit would invalidate the entry).
    (project / "versions" / "0003_phone.py").write_text(
        NEW_REVISION.replace(
            'op.add_column("users", sa.Column("phone", sa.String(30), nullable=True))',
            "op.execute(\"UPDATE users SET status = 'active'\")",
        )
    )
    rc, out, err = _check(capsys)
    assert rc == EXIT_OK, out + err
    assert f"{USING} (2 revision(s), head 0002)" in err
    assert "upgrading 1 revision(s)" in err
    assert "3 revision(s) applied, head 0003" in out
    assert STORED in err

    rc, out, err = _check(capsys)
    assert rc == EXIT_OK
    assert f"{USING} (3 revision(s), head 0003)" in err
    assert "upgrading 0 revision(s)" in err


def test_edited_models_replay_from_empty(
    scenario: ScenarioFactory, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model edit beyond its column declarations (here a module-level naming convention) is in
    the key; a column alone is not (issue 20, tests/test_cache_model_edit_reuse.py)."""
    project = scenario("base")
    assert _check(capsys)[0] == EXIT_OK
    _edit(
        project / "models.py",
        "    name: Mapped[str | None] = mapped_column(String(100))\n",
        "    name: Mapped[str | None] = mapped_column(String(100))\n"
        "    phone: Mapped[str | None] = mapped_column(String(30))\n",
    )
    _edit(project / "models.py", '"ix": "ix_%(column_0_label)s"', '"ix": "idx_%(column_0_label)s"')
    (project / "versions" / "0003_phone.py").write_text(NEW_REVISION)
    rc, out, err = _check(capsys)
    assert rc == EXIT_OK, out + err
    assert USING not in err
    assert "upgrading 3 revision(s)" in err
    assert STORED in err


def test_new_revision_that_drifts_is_still_reported(
    scenario: ScenarioFactory, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A revision applied on top of the cached database is compared like any other."""
    project = scenario("base")
    assert _check(capsys)[0] == EXIT_OK
    (project / "versions" / "0003_phone.py").write_text(NEW_REVISION)
    rc, out, err = _check(capsys)
    assert rc == EXIT_FINDINGS
    assert USING in err
    assert "users.phone: column phone in the database, gone from the models" in out


@pytest.mark.parametrize("how", ["flag", "env"])
def test_no_cache_bypasses_it(
    how: str,
    scenario: ScenarioFactory,
    cache_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scenario("base")
    assert _check(capsys)[0] == EXIT_OK
    before = sorted(p.name for p in cache_dir.iterdir())
    args: list[str] = []
    if how == "flag":
        args = ["--no-cache"]
    else:
        monkeypatch.setenv("CHECK_MIGRATIONS_NO_CACHE", "1")
    rc, _out, err = _check(capsys, *args)
    assert rc == EXIT_OK
    assert USING not in err
    assert STORED not in err
    assert "upgrading 2 revision(s)" in err
    assert sorted(p.name for p in cache_dir.iterdir()) == before


def test_pruning_keeps_the_most_recently_used_entries(
    scenario: ScenarioFactory,
    cache_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHECK_MIGRATIONS_CACHE_ENTRIES", "2")
    projects = [scenario("base", dest=f"p{i}") for i in range(3)]
    stored: list[set[Path]] = []
    for project in projects:
        os.chdir(project)
        assert _check(capsys)[0] == EXIT_OK
        stored.append(set(_entries(cache_dir)))
    assert len(_entries(cache_dir)) == 2
    oldest = next(iter(stored[0]))
    assert oldest not in _entries(cache_dir)
    assert not list(cache_dir.glob(".tmp-*"))
    assert not list(cache_dir.glob(".trash-*"))
    # The first project lost its entry: it replays, and stays correct.
    os.chdir(projects[0])
    rc, _out, err = _check(capsys)
    assert rc == EXIT_OK
    assert USING not in err


def test_prune_removes_least_recently_used(tmp_path: Path) -> None:
    for i in range(4):
        entry = tmp_path / f"migrated-scope-{i}"
        (entry / "data").mkdir(parents=True)
        (entry / "meta.json").write_text(json.dumps({"format": FORMAT}))
        os.utime(entry / "meta.json", (1000 + i, 1000 + i))
    old_format = tmp_path / "migrated-scope-old"
    (old_format / "data").mkdir(parents=True)
    (old_format / "meta.json").write_text(json.dumps({"format": FORMAT - 1}))
    removed = prune(tmp_path, keep=2)
    assert sorted(p.name for p in removed) == [
        "migrated-scope-0",
        "migrated-scope-1",
        "migrated-scope-old",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["migrated-scope-2", "migrated-scope-3"]


def test_concurrent_runs_share_one_whole_entry(scenario: ScenarioFactory, cache_dir: Path) -> None:
    project = scenario("base")
    env = {**os.environ, "CHECK_MIGRATIONS_CACHE_DIR": str(cache_dir)}
    cmd = [sys.executable, str(REPO / "tools" / "check_migrations.py")]
    procs = [
        subprocess.Popen(cmd, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    results = [p.communicate(timeout=300) for p in procs]
    for proc, (_out, err) in zip(procs, results, strict=True):
        assert proc.returncode == EXIT_OK, err.decode()
    (entry,) = _entries(cache_dir)
    assert json.loads((entry / "meta.json").read_text())["heads"] == ["0002"]
    assert not list(cache_dir.glob(".tmp-*"))
    # Whoever won the race left a whole, usable entry.
    again = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, check=False)
    assert again.returncode == EXIT_OK, again.stderr
    assert USING in again.stderr


def test_relative_script_location_from_another_directory_hits(
    scenario: ScenarioFactory,
    cache_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Recorded paths are absolute: the CLI re-hashes them from its own working directory."""
    project = scenario("base")
    _edit(project / "alembic.ini", "script_location = %(here)s", "script_location = .")
    _edit(project / "alembic.ini", "version_locations = %(here)s/versions", "")
    monkeypatch.chdir(project.parent)
    assert _check(capsys, "--config", "project/alembic.ini")[0] == EXIT_OK
    rc, _out, err = _check(capsys, "--config", "project/alembic.ini")
    assert rc == EXIT_OK
    assert f"{USING} (2 revision(s), head 0002)" in err


def test_env_py_setting_version_locations_is_never_served_stale(
    scenario: ScenarioFactory, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Revisions env.py adds at run time are outside what was hashed: no entry is kept."""
    project = scenario("base")
    (project / "versions").rename(project / "history")
    (project / "versions").mkdir()
    _edit(
        project / "env.py",
        "target_metadata = metadata\n",
        "target_metadata = metadata\n"
        "context.script.version_locations = [str(__import__('pathlib').Path("
        "config.config_file_name).resolve().parent / 'history')]\n",
    )
    rc, out, err = _check(capsys)
    assert rc == EXIT_OK, out + err
    assert "2 revision(s) applied" in out
    assert STORED not in err
    _edit(project / "history" / "0001_initial.py", "sa.String(100)", "sa.String(120)")
    rc, out, err = _check(capsys)
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
    _edit(
        project / "models.py",
        "    name: Mapped[str | None] = mapped_column(String(100))\n",
        "    name: Mapped[str | None] = mapped_column(String(100))\n"
        "    code: Mapped[str | None] = mapped_column(String(10))\n",
    )
    rc, out, err = _check(capsys)
    assert rc == EXIT_OK, out + err
    assert STORED in err
    (project / "hpkg" / "inner.py").write_text("LEN = 20\n")
    slow = main(["--no-cache"])
    slow_out = capsys.readouterr().out
    assert slow == EXIT_FINDINGS, slow_out
    rc, out, err = _check(capsys)
    assert USING not in err
    assert "upgrading 3 revision(s)" in err
    assert (rc, out) == (slow, slow_out)


def _mount_read_only(target: Path) -> None:
    """A read-only file system at ``target`` (root ignores permission bits; EROFS it does not)."""
    target.mkdir(parents=True, exist_ok=True)
    require_mount(["-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(target)])


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    target = tmp_path / "ro"
    _mount_read_only(target)
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


@pytest.mark.root
@pytest.mark.parametrize("where", ["home", "cache_dir"])
def test_read_only_cache_location_runs_without_the_cache(
    where: str,
    read_only: Path,
    scenario: ScenarioFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scenario("base")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    if where == "home":
        monkeypatch.delenv("CHECK_MIGRATIONS_CACHE_DIR", raising=False)
        monkeypatch.setenv("HOME", str(read_only))
        unwritable = read_only / ".cache"
    else:
        monkeypatch.setenv("CHECK_MIGRATIONS_CACHE_DIR", str(read_only))
        unwritable = read_only
    rc, out, err = _check(capsys)
    assert rc == EXIT_OK, err
    assert "models and migrations agree" in out
    warnings = [ln for ln in err.splitlines() if "warning" in ln or "error" in ln]
    assert warnings == [
        f"check-migrations: warning: cannot write the cache ({unwritable}: Read-only file "
        "system); running without it (set CHECK_MIGRATIONS_CACHE_DIR to a writable directory)"
    ], err
    assert STORED not in err


def _tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def test_initialised_clusters_are_bounded_least_recently_used_first(
    scenario: ScenarioFactory, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One cluster per PostgreSQL build, ~30 MB each: only the two most recently used stay."""
    scenario("base")
    cache_dir.mkdir()
    for i in range(3):  # clusters of builds no longer installed, used long ago
        fake = cache_dir / f"cluster-{i:016x}-0"
        fake.mkdir()
        (fake / "PG_VERSION").write_text("16\n")
        os.utime(fake, (1000 + i, 1000 + i))
    assert _check(capsys)[0] == EXIT_OK
    clusters = sorted(p.name for p in cache_dir.glob("cluster-*"))
    assert len(clusters) == 2, clusters
    assert f"cluster-{2:016x}-0" in clusters  # the most recently used of the old ones
    assert not list(cache_dir.glob(".trash-*"))
    # The surviving real cluster still serves the next run.
    rc, _out, err = _check(capsys)
    assert rc == EXIT_OK
    assert "initialising" not in err


def test_worker_bytecode_cache_is_bounded(
    scenario: ScenarioFactory,
    cache_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scenario("base")
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.delenv("PYTHONPYCACHEPREFIX", raising=False)
    monkeypatch.setenv("CHECK_MIGRATIONS_PYCACHE_MB", "1")
    assert _check(capsys)[0] == EXIT_OK
    pycache = cache_dir / "pycache"
    assert pycache.is_dir()
    assert 0 < _tree_size(pycache) <= 1024 * 1024


def test_bound_pycache_removes_least_recently_used_files(tmp_path: Path) -> None:
    root = tmp_path / "pycache"
    for i in range(10):
        path = root / f"d{i % 3}" / f"m{i}.pyc"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 1000)
        os.utime(path, (2000 + i, 2000 + i))
    assert bound_pycache(root, cap_bytes=5000) == 7000  # down to three quarters of the cap
    assert sorted(p.name for p in root.rglob("*.pyc")) == ["m7.pyc", "m8.pyc", "m9.pyc"]
    assert bound_pycache(root, cap_bytes=1) == 0  # walked at most once an hour


def test_clear_cache_removes_everything_and_says_what(
    scenario: ScenarioFactory,
    cache_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scenario("base")
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.delenv("PYTHONPYCACHEPREFIX", raising=False)
    with shared_dir("cm-clear-") as tmp:
        # The server user's copy of the binaries lives under $TMPDIR: this test's own.
        monkeypatch.setattr(tempfile, "tempdir", str(tmp))
        assert _check(capsys)[0] == EXIT_OK
        assert _entries(cache_dir)
        cached = sorted(p.name for p in cache_dir.iterdir())
        assert any(n.startswith("cluster-") for n in cached), cached
        assert "pycache" in cached
        rc, out, err = _check(capsys, "--clear-cache")
        assert rc == EXIT_OK, err
        lines = out.splitlines()
        for name in cached:
            assert any(ln.startswith(f"removed {cache_dir / name} (") for ln in lines), out
        assert re.fullmatch(r"cleared \d+ cache item\(s\), [\d.]+ MB", lines[-1]), out
        assert list(cache_dir.iterdir()) == []
        assert not list(tmp.glob("check-migrations-pg/*"))
        assert _check(capsys, "--clear-cache")[1] == "the cache was empty\n"
        # And the checker still works from nothing.
        rc, _out, err = _check(capsys)
        assert rc == EXIT_OK, err

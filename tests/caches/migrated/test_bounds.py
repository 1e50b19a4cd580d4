"""What the caches keep is bounded, least recently used first, and ``--clear-cache`` empties it."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import pytest

from migration_check.caches.dirs import bound_pycache
from migration_check.caches.migrated import FORMAT, prune
from migration_check.cli.app import EXIT_OK
from tests.helpers.caches import USING, migrated_entries
from tests.helpers.checker import shared_dir
from tests.helpers.reports import run_main
from tests.helpers.scenarios import ScenarioFactory


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
        assert run_main(capsys)[0] == EXIT_OK
        stored.append(set(migrated_entries(cache_dir)))
    assert len(migrated_entries(cache_dir)) == 2
    oldest = next(iter(stored[0]))
    assert oldest not in migrated_entries(cache_dir)
    assert not list(cache_dir.glob(".tmp-*"))
    assert not list(cache_dir.glob(".trash-*"))
    # The first project lost its entry: it replays, and stays correct.
    os.chdir(projects[0])
    rc, _out, err = run_main(capsys)
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
    assert run_main(capsys)[0] == EXIT_OK
    clusters = sorted(p.name for p in cache_dir.glob("cluster-*"))
    assert len(clusters) == 2, clusters
    assert f"cluster-{2:016x}-0" in clusters  # the most recently used of the old ones
    assert not list(cache_dir.glob(".trash-*"))
    # The surviving real cluster still serves the next run.
    rc, _out, err = run_main(capsys)
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
    assert run_main(capsys)[0] == EXIT_OK
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
        assert run_main(capsys)[0] == EXIT_OK
        assert migrated_entries(cache_dir)
        cached = sorted(p.name for p in cache_dir.iterdir())
        assert any(n.startswith("cluster-") for n in cached), cached
        assert "pycache" in cached
        rc, out, err = run_main(capsys, "--clear-cache")
        assert rc == EXIT_OK, err
        lines = out.splitlines()
        for name in cached:
            assert any(ln.startswith(f"removed {cache_dir / name} (") for ln in lines), out
        assert re.fullmatch(r"cleared \d+ cache item\(s\), [\d.]+ MB", lines[-1]), out
        assert list(cache_dir.iterdir()) == []
        assert not list(tmp.glob("check-migrations-pg/*"))
        assert run_main(capsys, "--clear-cache")[1] == "the cache was empty\n"
        # And the checker still works from nothing.
        rc, _out, err = run_main(capsys)
        assert rc == EXIT_OK, err

"""The migrated-database cache serves an unchanged or grown history, and only to who may use it.

Real runs through ``main([...])`` (and the CLI as subprocesses for concurrency) against the
bundled PostgreSQL, each with its own cache directory (conftest.py). What makes an entry stale
is in test_stale.py; how the caches stay bounded in test_bounds.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from migration_check.cli.app import EXIT_FINDINGS, EXIT_OK
from tests.helpers.caches import STORED, USING, migrated_entries
from tests.helpers.edits import NEW_REVISION, edit
from tests.helpers.paths import REPO
from tests.helpers.prereq import require_mount
from tests.helpers.reports import run_main
from tests.helpers.scenarios import ScenarioFactory


def test_unchanged_history_is_served_from_the_cache(
    scenario: ScenarioFactory, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario("base")
    rc, out1, err = run_main(capsys)
    assert rc == EXIT_OK
    assert STORED in err
    assert USING not in err
    assert len(migrated_entries(cache_dir)) == 1

    rc, out2, err = run_main(capsys)
    assert rc == EXIT_OK
    assert f"{USING} (2 revision(s), head 0002)" in err
    assert "upgrading 0 revision(s)" in err
    assert STORED not in err  # nothing new to keep
    assert out2 == out1  # same verdict, same revision count


def test_new_head_revision_starts_from_the_cached_ancestor(
    scenario: ScenarioFactory, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("base")
    assert run_main(capsys)[0] == EXIT_OK
    # A data-only revision: the models need no edit (an edit would invalidate the entry).
    (project / "versions" / "0003_phone.py").write_text(
        NEW_REVISION.replace(
            'op.add_column("users", sa.Column("phone", sa.String(30), nullable=True))',
            "op.execute(\"UPDATE users SET status = 'active'\")",
        )
    )
    rc, out, err = run_main(capsys)
    assert rc == EXIT_OK, out + err
    assert f"{USING} (2 revision(s), head 0002)" in err
    assert "upgrading 1 revision(s)" in err
    assert "3 revision(s) applied, head 0003" in out
    assert STORED in err

    rc, out, err = run_main(capsys)
    assert rc == EXIT_OK
    assert f"{USING} (3 revision(s), head 0003)" in err
    assert "upgrading 0 revision(s)" in err


def test_new_revision_that_drifts_is_still_reported(
    scenario: ScenarioFactory, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A revision applied on top of the cached database is compared like any other."""
    project = scenario("base")
    assert run_main(capsys)[0] == EXIT_OK
    (project / "versions" / "0003_phone.py").write_text(NEW_REVISION)
    rc, out, err = run_main(capsys)
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
    assert run_main(capsys)[0] == EXIT_OK
    before = sorted(p.name for p in cache_dir.iterdir())
    args: list[str] = []
    if how == "flag":
        args = ["--no-cache"]
    else:
        monkeypatch.setenv("CHECK_MIGRATIONS_NO_CACHE", "1")
    rc, _out, err = run_main(capsys, *args)
    assert rc == EXIT_OK
    assert USING not in err
    assert STORED not in err
    assert "upgrading 2 revision(s)" in err
    assert sorted(p.name for p in cache_dir.iterdir()) == before


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
    (entry,) = migrated_entries(cache_dir)
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
    edit(project / "alembic.ini", "script_location = %(here)s", "script_location = .")
    edit(project / "alembic.ini", "version_locations = %(here)s/versions", "")
    monkeypatch.chdir(project.parent)
    assert run_main(capsys, "--config", "project/alembic.ini")[0] == EXIT_OK
    rc, _out, err = run_main(capsys, "--config", "project/alembic.ini")
    assert rc == EXIT_OK
    assert f"{USING} (2 revision(s), head 0002)" in err


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
    rc, out, err = run_main(capsys)
    assert rc == EXIT_OK, err
    assert "models and migrations agree" in out
    warnings = [ln for ln in err.splitlines() if "warning" in ln or "error" in ln]
    assert warnings == [
        f"check-migrations: warning: cannot write the cache ({unwritable}: Read-only file "
        "system); running without it (set CHECK_MIGRATIONS_CACHE_DIR to a writable directory)"
    ], err
    assert STORED not in err

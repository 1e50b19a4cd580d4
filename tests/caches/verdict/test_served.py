"""The verdict cache serves an unchanged check, and only what it may: never --no-cache, never an
error, never a damaged or foreign entry; its entries are private and bounded.

Every test runs real checks through ``main([...])`` against the bundled PostgreSQL, with its own
cache directory (conftest.py). What makes a check miss is in test_misses.py, what its key holds
in test_key.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from migration_check.caches.verdict import prune
from migration_check.cli.app import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK
from tests.helpers.caches import (
    HIT,
    Capsys,
    prepare_every_input_kind,
    stored_then,
    verdict_files,
)
from tests.helpers.edits import edit
from tests.helpers.reports import run_main
from tests.helpers.scenarios import ScenarioFactory


def test_unchanged_inputs_serve_the_same_output_and_exit_code(
    scenario: ScenarioFactory, cache_dir: Path, capsys: Capsys
) -> None:
    project = scenario("base")
    assert stored_then(capsys)[0] == EXIT_OK
    assert len(verdict_files(cache_dir)) == 1
    # A drifting project is stored and served as such too: exit 1 and the same findings.
    edit(project / "models.py", "    body: Mapped[str] = mapped_column(String(500))\n",
         "    body: Mapped[str] = mapped_column(String(500))\n"
         "    pinned: Mapped[bool | None]\n")  # fmt: skip
    rc, out = stored_then(capsys, "--format", "json")
    assert rc == EXIT_FINDINGS
    assert '"pinned"' in out


def test_no_cache_neither_reads_nor_writes_verdicts(
    scenario: ScenarioFactory, cache_dir: Path, capsys: Capsys
) -> None:
    scenario("base")
    rc, _, err = run_main(capsys, "--no-cache")
    assert rc == EXIT_OK
    assert verdict_files(cache_dir) == []
    stored_then(capsys)
    rc, _, err = run_main(capsys, "--no-cache")
    assert HIT not in err


def test_verdict_cache_setting_turns_it_off(
    scenario: ScenarioFactory, cache_dir: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario("base")
    monkeypatch.setenv("CHECK_MIGRATIONS_VERDICT_CACHE", "0")
    run_main(capsys)
    _, _, err = run_main(capsys)
    assert HIT not in err
    assert verdict_files(cache_dir) == []


def test_errors_are_never_stored(
    scenario: ScenarioFactory, cache_dir: Path, capsys: Capsys
) -> None:
    scenario("bad_sql")
    rc, _, _ = run_main(capsys)
    assert rc == EXIT_ERROR
    rc, _, err = run_main(capsys)
    assert rc == EXIT_ERROR
    assert HIT not in err
    assert verdict_files(cache_dir) == []


def test_prune_keeps_the_most_recently_used(tmp_path: Path) -> None:
    for i in range(5):
        path = tmp_path / f"verdict-{i}.json"
        path.write_text("{}")
        os.utime(path, (1000 + i, 1000 + i))
    removed = prune(tmp_path, keep=2)
    assert sorted(p.name for p in removed) == ["verdict-0.json", "verdict-1.json", "verdict-2.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["verdict-3.json", "verdict-4.json"]


def test_entries_are_private_and_hold_no_variable_values(
    scenario: ScenarioFactory, cache_dir: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = scenario("base")
    prepare_every_input_kind(project, monkeypatch)
    monkeypatch.setenv("STATUS_DEFAULT", "s3cret-token-value")
    edit(project / "versions" / "0001_initial.py", "'active'", "'s3cret-token-value'")
    assert stored_then(capsys)[0] == EXIT_OK
    [entry] = verdict_files(cache_dir)
    assert entry.stat().st_mode & 0o777 == 0o600
    assert "s3cret-token-value" not in entry.read_text()


def test_a_damaged_entry_is_a_miss_not_a_crash(
    scenario: ScenarioFactory, cache_dir: Path, capsys: Capsys
) -> None:
    import json

    scenario("base")
    stored_then(capsys)
    [entry] = verdict_files(cache_dir)
    data = json.loads(entry.read_text())
    for damage in ({**data, "inputs": {}}, {**data, "event": {"type": "result"}}, [1], "x"):
        entry.write_text(json.dumps(damage))
        rc, _, err = run_main(capsys)
        assert rc == EXIT_OK
        assert HIT not in err
    entry.write_text("{not json")
    rc, _, err = run_main(capsys)
    assert (rc, HIT in err) == (EXIT_OK, False)

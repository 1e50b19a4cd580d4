"""``--start-from``: both caches serve a check that starts from a dump, never an edited dump's.

psql reads the dump, so no recorded input covers it: its content is in the migrated database's
scope and in the verdict's key (caches/dump.py). Each test edits the dump between two checks
and compares the second with ``--no-cache``; the edit makes the project drift (the dump's
``legacy_accounts`` gains a column the models lack), so a reused database or verdict would be a
false "agree".
"""

from __future__ import annotations

from pathlib import Path

import pytest

from migration_check.cli.app import EXIT_FINDINGS, EXIT_OK
from tests.helpers.caches import HIT, STORED, USING, migrated_entries, verdict_files
from tests.helpers.production_dump import PRODUCTION_AT_0001
from tests.helpers.reports import run_main
from tests.helpers.scenarios import ScenarioFactory

Capsys = pytest.CaptureFixture[str]

LEGACY = "id SERIAL, code VARCHAR(10),"
EDITED = "id SERIAL, code VARCHAR(10), extra INTEGER,"
DRIFT = "legacy_accounts.extra"
ARGS = ("--start-from", "schema.sql", "-v")


@pytest.fixture
def project(scenario: ScenarioFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CHECK_MIGRATIONS_CACHE_DIR", str(tmp_path / "cache"))
    path = scenario("bad_not_from_empty")
    (path / "schema.sql").write_text(PRODUCTION_AT_0001)
    return path


def _edit_dump(project: Path) -> None:
    dump = project / "schema.sql"
    text = dump.read_text()
    assert text.count(LEGACY) == 1
    # Same size as before would not matter: the key is the content, not a stat.
    dump.write_text(text.replace(LEGACY, EDITED))


def _same_as_no_cache(capsys: Capsys) -> tuple[int, str, str]:
    rc, out, err = run_main(capsys, *ARGS)
    rc_nc, out_nc, _ = run_main(capsys, *ARGS, "--no-cache")
    assert (rc, out) == (rc_nc, out_nc), err
    return rc, out, err


def test_an_edited_dump_never_reuses_the_migrated_database(
    project: Path, tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHECK_MIGRATIONS_VERDICT_CACHE", "0")
    rc, _, err = run_main(capsys, *ARGS)
    assert rc == EXIT_OK, err
    assert STORED in err
    assert len(migrated_entries(tmp_path / "cache")) == 1
    rc, _, err = run_main(capsys, *ARGS)  # the same dump: the migrated database is served
    assert rc == EXIT_OK, err
    assert USING in err

    _edit_dump(project)
    rc, out, err = _same_as_no_cache(capsys)
    assert rc == EXIT_FINDINGS, out
    assert DRIFT in out
    assert USING not in err


def test_an_edited_dump_never_reuses_the_verdict(project: Path, capsys: Capsys) -> None:
    rc, _, err = run_main(capsys, *ARGS)
    assert rc == EXIT_OK, err
    rc, _, err = run_main(capsys, *ARGS)  # the same dump: the verdict is served
    assert rc == EXIT_OK, err
    assert HIT in err

    _edit_dump(project)
    rc, out, err = _same_as_no_cache(capsys)
    assert rc == EXIT_FINDINGS, out
    assert DRIFT in out
    assert HIT not in err


def test_a_stale_entry_replays_from_the_dump(
    project: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker drops a cached database its own check finds stale (here: other ``-x``
    arguments, which the CLI leaves to it): the replay from empty starts from the dump again,
    as 0002 needs the dump's legacy_accounts."""
    monkeypatch.setenv("CHECK_MIGRATIONS_VERDICT_CACHE", "0")
    assert run_main(capsys, *ARGS)[0] == EXIT_OK
    args = (*ARGS, "-x", "tenant=a")
    rc, out, err = run_main(capsys, *args)
    assert "cached migrated database is stale" in err
    assert rc == EXIT_OK, out + err
    rc_nc, out_nc, _ = run_main(capsys, *args, "--no-cache")
    assert (rc, out) == (rc_nc, out_nc)


def test_a_dump_psql_could_include_from_keeps_the_caches_off_and_says_so(
    project: Path, tmp_path: Path, capsys: Capsys
) -> None:
    (project / "more.sql").write_text("SELECT 1;\n")
    (project / "schema.sql").write_text(PRODUCTION_AT_0001 + "\\i more.sql\n")
    for _ in range(2):
        rc, _, err = run_main(capsys, *ARGS)
        assert rc == EXIT_OK, err
        said = [ln for ln in err.splitlines() if "schema.sql:17 has a psql meta-command" in ln]
        assert len(said) == 1, err
        assert [w for w in (HIT, USING, STORED) if w in err] == [], err
    assert migrated_entries(tmp_path / "cache") == []
    assert verdict_files(tmp_path / "cache") == []

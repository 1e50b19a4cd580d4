"""A stale migrated database is replayed from empty in a cluster as fresh as a new one.

The cached entry is a whole cluster: the roles its history created are in it, outside any
database. Replaying the history from empty there (the entry found stale in the worker) must not
meet them: a revision's CREATE ROLE would fail on them, where a fresh server gives the verdict.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from migration_check.cli.app import EXIT_OK
from tests.helpers.caches import STORED, migrated_entries
from tests.helpers.edits import edit
from tests.helpers.reports import run_main
from tests.helpers.scenarios import ScenarioFactory

UPGRADE = "def upgrade() -> None:\n"
ROLE = UPGRADE + '    op.execute("CREATE ROLE cm_reader NOLOGIN")\n'


def test_a_stale_entry_whose_history_created_a_role_replays_as_no_cache(
    scenario: ScenarioFactory, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("base")
    first = project / "versions" / "0001_initial.py"
    edit(first, UPGRADE, ROLE)
    rc, _out, err = run_main(capsys)
    assert rc == EXIT_OK, err
    assert STORED in err
    # As after an upgrade of Alembic: the CLI picks the entry by its files, the worker rejects it.
    (entry,) = migrated_entries(cache_dir)
    meta = json.loads((entry / "meta.json").read_text())
    meta["env"]["libraries"]["alembic"] = "0.0.1"
    (entry / "meta.json").write_text(json.dumps(meta))
    rc, out, err = run_main(capsys)
    assert "is stale" in err  # the worker found it so, in the entry's own cluster
    assert rc == EXIT_OK, err
    assert (rc, out) == run_main(capsys, "--no-cache")[:2]

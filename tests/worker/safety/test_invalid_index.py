"""An index left INVALID by a new revision: ``CREATE INDEX ... ON ONLY`` a partitioned table that
existed before, whose partition's index is never attached. The upgrade succeeds; the end state
holds the invalid index, which is the ``invalid_index`` finding, and the statement is not a
``create_index`` (ON ONLY builds nothing). The safe form attaches the partition's index.
"""

from __future__ import annotations

import pytest

from migration_check.cli.app import EXIT_FINDINGS, EXIT_OK
from tests.helpers.safety import check_json, project_with, safety_kinds
from tests.helpers.safety_more import INVALID_INDEX
from tests.helpers.scenarios import ScenarioFactory


@pytest.fixture(autouse=True)
def _git(git_identity: None) -> None:
    """Every test here commits a base and adds a revision on a branch."""


def test_index_on_only_a_partitioned_table_left_invalid(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    kind, unsafe, undo, safe, safe_undo, base, base_undo = INVALID_INDEX
    project_with(scenario, unsafe, undo, base_upgrade=base, base_downgrade=base_undo)
    code, report = check_json(capsys)
    assert safety_kinds(report) == [kind], report["findings"]
    assert code == EXIT_FINDINGS
    (finding,) = report["findings"]
    assert (finding["file"], finding["line"]) == ("versions/0100_new.py", 16)
    assert (finding["table"], finding["object"]) == ("events", "ix_events_at")
    assert finding["message"].startswith(
        "leaves ix_events_at INVALID: an index ON ONLY events is valid only once every "
        "partition's index is attached; events_2000 has none"
    )
    assert "statement: CREATE INDEX ix_events_at ON ONLY events (at)" in finding["message"]
    assert finding["op"] == (
        "with op.get_context().autocommit_block():\n"
        '    op.execute("CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_events_at_events_2000 '
        'ON events_2000 USING btree (at)")\n'
        'op.execute("ALTER INDEX ix_events_at ATTACH PARTITION ix_events_at_events_2000")'
    )

    project_with(scenario, safe, safe_undo, base_upgrade=base, base_downgrade=base_undo,
                 dest="safe")  # fmt: skip
    code, report = check_json(capsys)
    assert safety_kinds(report) == [], report["findings"]
    assert code == EXIT_OK, report["findings"]


def test_the_written_safe_form_attaches_and_passes(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """The finding's own safe form, added after the ON ONLY statement, gives no finding."""
    _kind, unsafe, undo, _safe, _safe_undo, base, base_undo = INVALID_INDEX
    project_with(scenario, unsafe, undo, base_upgrade=base, base_downgrade=base_undo)
    _code, report = check_json(capsys)
    (finding,) = report["findings"]
    project_with(scenario, f"{unsafe}\n{finding['op']}", undo, base_upgrade=base,
                 base_downgrade=base_undo, dest="pasted")  # fmt: skip
    code, report = check_json(capsys)
    assert safety_kinds(report) == [], report["findings"]
    assert code == EXIT_OK, report["findings"]


def test_a_failed_concurrent_build_the_revision_catches_leaves_it_invalid(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """Duplicates the base's data holds: the unique build fails, the revision goes on."""
    project_with(
        scenario,
        "with op.get_context().autocommit_block():\n"
        "    try:\n"
        '        op.create_index("uq_users_name", "users", ["name"], unique=True,\n'
        "                        postgresql_concurrently=True)\n"
        "    except sa.exc.IntegrityError:\n"
        "        pass  # deduplicated by a later revision",
        'op.execute("DROP INDEX IF EXISTS uq_users_name")',
        base_upgrade="op.execute(\"INSERT INTO users (email, name) VALUES ('a@example.com', "
        "'twin'), ('b@example.com', 'twin')\")",
    )
    code, report = check_json(capsys)
    found = {f["kind"]: f for f in report["findings"] if f["source"] == "safety"}
    assert sorted(found) == ["invalid_index"], report["findings"]
    invalid = found["invalid_index"]
    assert (invalid["table"], invalid["object"], invalid["line"]) == ("users", "uq_users_name", 18)
    assert invalid["message"].startswith(
        "leaves uq_users_name INVALID (a failed CONCURRENTLY build)"
    )
    assert "DROP INDEX CONCURRENTLY IF EXISTS uq_users_name" in invalid["op"]
    assert code == EXIT_FINDINGS

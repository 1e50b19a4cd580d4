"""Every hazard scenario on PostgreSQL 15 too: the unsafe revision gives exactly its finding, its
safe form none. The scenarios are tests/helpers/safety.py's CASES and safety_more.py's; the
bundled server runs them in test_observed.py, test_invalid_index.py and test_concurrently.py.
"""

from __future__ import annotations

import pytest

from migration_check.cli.app import EXIT_FINDINGS, EXIT_OK
from tests.helpers.prereq import require_pg15
from tests.helpers.safety import CASES, check_json, project_with, safety_kinds
from tests.helpers.safety_more import CONCURRENTLY_IN_TRANSACTION, INVALID_INDEX
from tests.helpers.scenarios import ScenarioFactory

# As test_observed.py undoes CASES' base revision (it creates ix_users_name, when there is one).
_ALL = [(*c, 'op.drop_index("ix_users_name", "users")' if c[5] else "pass") for c in CASES]
_ALL += [INVALID_INDEX, CONCURRENTLY_IN_TRANSACTION]


@pytest.fixture(autouse=True)
def _git(git_identity: None) -> None:
    """Every test here commits a base and adds a revision on a branch."""


@pytest.mark.pg15
@pytest.mark.parametrize(
    ("kind", "unsafe", "undo", "safe", "safe_undo", "base", "base_undo"), _ALL,
    ids=[c[0] for c in _ALL],
)  # fmt: skip
def test_hazard_and_its_safe_form_on_postgresql_15(
    kind: str, unsafe: str, undo: str, safe: str, safe_undo: str, base: str, base_undo: str,
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    pg15 = ["--postgres-bin", str(require_pg15())]
    project_with(scenario, unsafe, undo, base_upgrade=base, base_downgrade=base_undo)
    code, report = check_json(capsys, *pg15)
    assert safety_kinds(report) == [kind], report["findings"]
    assert code == EXIT_FINDINGS
    (finding,) = [f for f in report["findings"] if f["source"] == "safety"]
    assert finding["file"] == "versions/0100_new.py"
    assert finding["table"] == ("events" if kind == "invalid_index" else "users")
    assert finding["op"]
    assert report["safety"][0]["revision"] == "0100"

    project_with(scenario, safe, safe_undo, base_upgrade=base, base_downgrade=base_undo,
                 dest=f"{kind}-safe")  # fmt: skip
    code, report = check_json(capsys, *pg15)
    assert safety_kinds(report) == [], report["findings"]
    assert code == EXIT_OK, report["findings"]

"""Seeding a table whose column's domain has a CHECK: the row is built, the observation runs.

A domain's CHECK is a constraint of the type, not of the table, so the table's constraints do
not name it; the seed must find the columns of that domain and move them on, not crash.
"""

from __future__ import annotations

import pytest

from migration_check.cli.app import EXIT_FINDINGS
from tests.helpers.safety import check_json, project_with, safety_kinds
from tests.helpers.scenarios import ScenarioFactory

BASE = (
    'op.execute("CREATE DOMAIN big_amount AS integer CHECK (VALUE > 10)")\n'
    'op.execute("CREATE TABLE measures (id serial PRIMARY KEY, amount big_amount NOT NULL)")'
)
BASE_UNDO = 'op.execute("DROP TABLE measures")\nop.execute("DROP DOMAIN big_amount")'


def test_a_domain_check_moves_its_column_to_the_next_candidate(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str], git_identity: None
) -> None:
    project_with(
        scenario,
        'op.create_index("ix_measures_amount", "measures", ["amount"])',
        'op.drop_index("ix_measures_amount", "measures")',
        base_upgrade=BASE,
        base_downgrade=BASE_UNDO,
    )
    code, report = check_json(capsys)
    assert "safety" in report, report  # not an error document
    (revision,) = report["safety"]
    assert "public.measures" in revision["seeded"], revision["not_seeded"]
    assert safety_kinds(report) == ["create_index"]
    assert code == EXIT_FINDINGS

"""A two-revision safe form whose second part validates, pasted into a project that keeps
Alembic's default env.py (every revision of one upgrade in one transaction): its VALIDATE runs in
``autocommit_block()``, so it still does not run under the lock of the ADD before it."""

from __future__ import annotations

import pytest

from migration_check.cli.app import EXIT_OK
from tests.helpers.safety import check_json
from tests.helpers.safety_forms import FORMS, Form, build, paste
from tests.helpers.scenarios import ScenarioFactory

VALIDATING = [f for f in FORMS if f.id in ("constraint_validated", "set_not_null")]


@pytest.mark.parametrize("form", VALIDATING, ids=[f.id for f in VALIDATING])
def test_the_second_part_validates_outside_the_first_ones_transaction(
    form: Form, scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str],
    git_identity: None,
) -> None:  # fmt: skip
    build(scenario, form, [form.unsafe], [form.undo], dest="unsafe")
    _, report = check_json(capsys)
    (finding,) = [f for f in report["findings"] if f["kind"] == form.kind]
    parts = paste(form.unsafe, finding["op"], finding["line"])
    assert len(parts) == 2, finding["op"]
    build(scenario, form, parts, list(form.downs), dest="pasted", per_migration=False)
    code, report = check_json(capsys)
    assert report["findings"] == [], "\n---\n".join(parts)
    assert code == EXIT_OK

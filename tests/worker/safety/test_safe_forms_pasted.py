"""Each safe form is the code itself: pasted as it is written, it passes and reaches the models.

For every hazard whose safe form is code, the finding's own ``op`` text replaces the unsafe op
in the revision (a form in two revisions becomes two revisions, split at its label line); the
check then finds no safety hazard, and the drift check (env.py compares the models, edited to
the change's end state) still agrees. The exact names the form must carry are asserted: a
general recipe would not paste, and would not pass. tests/helpers/safety_forms.py has the cases.
"""

from __future__ import annotations

from typing import Any

import pytest

from migration_check.cli.app import EXIT_FINDINGS, EXIT_OK
from tests.helpers.prereq import require_pg15
from tests.helpers.safety import check_json
from tests.helpers.safety_forms import FORMS, Form, build, paste
from tests.helpers.scenarios import ScenarioFactory

# What a safe form may still be told as advice: the expand/contract steps drop or rename, and
# a brief ACCESS EXCLUSIVE is held while the ops after it in the same revision run.
ADVICE = {"drop_column", "rename_column", "rename_table", "lock_held", "lock_timeout"}


@pytest.fixture(autouse=True)
def _git(git_identity: None) -> None:
    """Every test here commits a base and adds revisions on a branch."""


def _pasted(form: Form, scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str],
            *args: str) -> None:  # fmt: skip
    build(scenario, form, [form.unsafe], [form.undo], dest="unsafe")
    code, report = check_json(capsys, *args)
    found = [f for f in [*report["findings"], *report["warnings"]] if f["kind"] == form.kind]
    assert len(found) == 1, report["findings"]
    assert all(f["source"] == "safety" for f in report["findings"]), report["findings"]
    finding = found[0]
    for name in form.names:
        assert name in finding["op"], f"{name!r} not in the safe form:\n{finding['op']}"
    if form.kind in ("rename_column", "rename_table"):  # advice: a warning
        assert code == EXIT_OK
    else:
        assert code == EXIT_FINDINGS
    parts = paste(form.unsafe, finding["op"], finding["line"])
    assert len(parts) == len(form.downs), finding["op"]
    build(scenario, form, parts, list(form.downs), dest="pasted")
    code, report = check_json(capsys, *args)
    _agrees(report, parts)
    assert code == EXIT_OK, report["findings"]


def _agrees(report: dict[str, Any], parts: list[str]) -> None:
    shown = "\n---\n".join(parts)
    assert report["findings"] == [], f"{report['findings']}\npasted:\n{shown}"
    assert {w["kind"] for w in report["warnings"]} <= ADVICE, report["warnings"]
    assert [r["revision"] for r in report["safety"]] == [
        f"{100 + i:04d}" for i in range(len(parts))
    ]


@pytest.mark.parametrize("form", FORMS, ids=[f.id for f in FORMS])
def test_the_pasted_safe_form_passes(
    form: Form, scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    _pasted(form, scenario, capsys)


@pytest.mark.pg15
@pytest.mark.parametrize("form", FORMS, ids=[f.id for f in FORMS])
def test_the_pasted_safe_form_passes_on_postgresql_15(
    form: Form, scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    _pasted(form, scenario, capsys, "--postgres-bin", str(require_pg15()))

"""The baseline: `check-migrations baseline`, then checks that fail on new findings only."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from migration_check.cli.app import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK, main
from tests.helpers.edits import PHONE, edit, settings
from tests.helpers.paths import REPO
from tests.helpers.scenarios import ScenarioFactory

SCHEMA = json.loads((REPO / "docs" / "check-migrations.schema.json").read_text())
BASELINE = "check-migrations.baseline.json"
WIDER = ("mapped_column(String(500))", "mapped_column(String(1000))")


def baseline_of(project: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["baseline"]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith(f"check-migrations: {BASELINE}: ")
    return (project / BASELINE).read_text()


def test_baseline_then_only_new_findings_fail(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("base")
    edit(project / "models.py", *WIDER)
    assert main([]) == EXIT_FINDINGS
    capsys.readouterr()

    text = baseline_of(project, capsys)
    assert text == (
        "{\n"
        '  "version": 1,\n'
        '  "comment": "Findings check-migrations accepts (fails on new ones only). '
        'Regenerate with: check-migrations baseline",\n'
        '  "findings": [\n'
        '    {"config": "alembic.ini", "kind": "modify_type", "table": "notes", '
        '"column": "body", "in_database": "VARCHAR(500)", "in_models": "VARCHAR(1000)"}\n'
        "  ]\n"
        "}\n"
    )

    assert main([]) == EXIT_OK
    out = capsys.readouterr().out
    assert out == (
        "check-migrations: no new differences (2 revision(s) applied, head 0002, "
        "alembic.ini); 1 baselined.\n"
    )

    # A new difference fails; the baselined one stays out of the report.
    edit(project / "models.py", *PHONE)
    assert main([]) == EXIT_FINDINGS
    out = capsys.readouterr().out
    assert "users.phone: column phone VARCHAR(30)" in out
    assert "notes.body" not in out
    assert out.splitlines()[-1].endswith("; 1 baselined.")


def test_fixed_entries_are_listed_and_exit_0(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("base")
    edit(project / "models.py", *WIDER)
    edit(project / "models.py", *PHONE)
    baseline_of(project, capsys)
    edit(project / "models.py", WIDER[1], WIDER[0])  # notes.body fixed
    assert main([]) == EXIT_OK
    out = capsys.readouterr().out
    assert out == (
        "Fixed since the baseline (remove them with `check-migrations baseline`):\n"
        "  notes.body [modify_type]\n"
        "\n"
        "check-migrations: no new differences (2 revision(s) applied, head 0002, "
        "alembic.ini); 1 baselined, 1 fixed.\n"
    )
    # Regenerating drops the fixed entry.
    assert '"notes"' not in baseline_of(project, capsys)
    assert main([]) == EXIT_OK
    assert "fixed" not in capsys.readouterr().out


def test_a_changed_difference_is_new_not_baselined(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """The worst bug is a false agree: a baseline for VARCHAR(1000) must not hide 2000."""
    project = scenario("base")
    edit(project / "models.py", *WIDER)
    baseline_of(project, capsys)
    edit(project / "models.py", WIDER[1], "mapped_column(String(2000))")
    assert main([]) == EXIT_FINDINGS
    out = capsys.readouterr().out
    assert "notes.body: type is VARCHAR(2000) in the models, VARCHAR(500)" in out
    assert "  notes.body [modify_type]" in out  # the old entry: fixed
    assert out.splitlines()[-1].endswith("; 1 fixed.")


def test_moving_the_model_line_keeps_the_baseline(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("base")
    edit(project / "models.py", *WIDER)
    before = baseline_of(project, capsys)
    assert not re.search(r"models\.py|\"line\"", before)
    edit(project / "models.py", "class Note(Base):\n", "\n\n# moved\nclass Note(Base):\n")
    assert main([]) == EXIT_OK
    assert capsys.readouterr().out.rstrip().endswith("; 1 baselined.")
    assert baseline_of(project, capsys) == before


def test_json_and_github_carry_baselined_and_fixed(
    scenario: ScenarioFactory,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = scenario("base")
    edit(project / "models.py", *WIDER)
    edit(project / "models.py", *PHONE)
    baseline_of(project, capsys)
    edit(project / "models.py", *PHONE[::-1])  # users.phone fixed; notes.body still baselined

    assert main(["--format", "json"]) == EXIT_OK
    doc = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    assert doc["verdict"] == "in_sync"
    assert [f["subject"] for f in doc["baselined"]] == ["notes.body"]
    assert doc["fixed"] == [
        {
            "config": "alembic.ini",
            "kind": "add_column",
            "table": "users",
            "column": "phone",
            "message": "column phone VARCHAR(30) in the models, no revision adds it",
        }
    ]
    assert doc["ignored"] == 0

    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert main(["--format", "github"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "::group::Baselined (1, not failing the check)" in out
    assert "notes.body: type is VARCHAR(1000)" in out
    assert (
        "::notice title=Fixed since the baseline::users.phone [add_column]: remove it with "
        "`check-migrations baseline`"
    ) in out
    text = summary.read_text()
    assert "Not failing the check: 1 baselined, 1 fixed." in text
    assert "- `users.phone [add_column]`" in text


def test_baseline_setting_names_the_file(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("base")
    settings(project, 'baseline = "ci/drift-baseline.json"')
    # Named in the settings, it must exist: a typo must not silently disable the baseline.
    assert main([]) == EXIT_ERROR
    assert capsys.readouterr().err.splitlines() == [
        "check-migrations: error: ci/drift-baseline.json: baseline file not found; create it "
        "with `check-migrations baseline` or fix the baseline setting"
    ]
    (project / "ci").mkdir()
    edit(project / "models.py", *WIDER)
    assert main(["baseline"]) == EXIT_OK
    entry = json.loads((project / "ci" / "drift-baseline.json").read_text())["findings"][0]
    assert entry["config"] == "../alembic.ini"  # relative to the baseline file
    assert main([]) == EXIT_OK


@pytest.mark.parametrize(
    "content", ["{not json", '{"version": 2, "findings": []}', '{"version": 1, "findings": [3]}']
)
def test_a_bad_baseline_file_is_exit_2(
    content: str, scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("base")
    (project / BASELINE).write_text(content)
    assert main([]) == EXIT_ERROR
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"check-migrations: error: {BASELINE}: not a ")
    assert line.endswith("regenerate it with `check-migrations baseline`")


def test_ignored_findings_stay_out_of_the_baseline(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("base")
    edit(project / "models.py", *WIDER)
    edit(project / "models.py", *PHONE)
    settings(project, 'ignore = ["add_column:users.phone"]')
    assert main(["baseline"]) == EXIT_OK
    assert capsys.readouterr().out == (
        f"check-migrations: {BASELINE}: 1 finding(s) recorded, 1 ignored by rules; commit it.\n"
    )
    assert "phone" not in (project / BASELINE).read_text()


def test_baseline_of_a_broken_project_is_exit_2_and_writes_nothing(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("bad_sql")
    assert main(["baseline"]) == EXIT_ERROR
    assert "revision 0002" in capsys.readouterr().err
    assert not (project / BASELINE).exists()

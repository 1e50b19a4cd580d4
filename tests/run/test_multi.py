"""Several Alembic configs in one run (monorepos): sections, exit codes, teardown."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import jsonschema
import pytest

from migration_check.cli.app import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK, main
from tests.helpers.checker import checker_env, start_checker, wait_for_line
from tests.helpers.edits import edit, settings
from tests.helpers.paths import REPO, SCENARIOS
from tests.helpers.procfs import children_of, leftovers, postgres_pids
from tests.helpers.scenarios import ScenarioFactory

SCHEMA = json.loads((REPO / "docs" / "check-migrations.schema.json").read_text())
WIDER = ("mapped_column(String(500))", "mapped_column(String(1000))")


@pytest.fixture
def monorepo(scenario: ScenarioFactory, tmp_path: Path) -> Path:
    """Two Alembic projects side by side; ``a`` has drift, ``b`` is in sync."""
    a = scenario("base", "a")
    scenario("base", "b")
    edit(a / "models.py", *WIDER)
    os.chdir(tmp_path)
    return tmp_path


def test_two_configs_one_report_with_a_section_each(
    monorepo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-c", "a/alembic.ini", "-c", "b/alembic.ini"]) == EXIT_FINDINGS
    out, err = capsys.readouterr()
    sections = out.split("\n== ")
    assert sections[0].startswith("== a/alembic.ini ==\nnotes\n")
    # The model's file as seen from here, not from the project's directory.
    assert "  a/models.py:31: notes.body: type is VARCHAR(1000)" in sections[0]
    assert "check-migrations revision -c a/alembic.ini -m" in sections[0]
    assert sections[1].startswith("b/alembic.ini ==\ncheck-migrations: models and migrations agree")
    assert out.splitlines()[-1] == (
        "check-migrations: 2 configs: 1 with findings, 1 without findings."
    )
    # Progress of each config, prefixed with it, relayed whole lines at a time.
    assert "check-migrations: a/alembic.ini: comparing the database with the models" in err
    assert "check-migrations: b/alembic.ini: comparing the database with the models" in err


def test_github_format_annotates_each_config_at_its_models(
    monorepo: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    summary = monorepo / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    args = ["-c", "a/alembic.ini", "-c", "b/alembic.ini", "--format", "github"]
    assert main(args) == EXIT_FINDINGS
    out = capsys.readouterr().out
    assert "::error file=a/models.py,line=31,title=Missing migration%3A notes.body::" in out
    assert out.splitlines()[-1] == (
        "check-migrations: 2 configs: 1 with findings, 1 without findings."
    )
    text = summary.read_text()
    assert text.startswith("## 2 configs: 1 with findings, 1 without findings.\n")
    assert "\n## `a/alembic.ini`\n\n### check-migrations: 1 problem" in text
    assert "\n## `b/alembic.ini`\n\n### check-migrations: models and migrations agree" in text


def test_configs_from_pyproject_and_one_flag_replaces_them(
    monorepo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings(monorepo, 'configs = ["a/alembic.ini", "b/alembic.ini"]')
    assert main([]) == EXIT_FINDINGS
    assert "2 configs: 1 with findings" in capsys.readouterr().out
    assert main(["-c", "b/alembic.ini"]) == EXIT_OK
    assert capsys.readouterr().out == (
        "check-migrations: models and migrations agree (2 revision(s) applied, head 0002, "
        "b/alembic.ini).\n"
    )


def test_one_config_failing_is_exit_2_and_the_others_are_still_reported(
    monorepo: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import shutil

    shutil.copytree(SCENARIOS / "bad_sql", tmp_path / "c")
    args = ["-c", "a/alembic.ini", "-c", "c/alembic.ini", "-c", "b/alembic.ini"]
    assert main(args) == EXIT_ERROR
    out, err = capsys.readouterr()
    assert "notes.body: type is VARCHAR(1000)" in out
    assert "== c/alembic.ini ==\nerror: revision 0002 (versions/0002_broken.py)" in out
    assert out.splitlines()[-1] == (
        "check-migrations: 3 configs: 1 with findings, 1 without findings, 1 could not be checked."
    )
    errors = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(errors) == 1
    assert errors[0].startswith("check-migrations: error: c/alembic.ini: revision 0002 (versions/")

    assert main([*args, "--format", "json"]) == EXIT_ERROR
    doc = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    assert (doc["verdict"], doc["exit_code"], doc["config"]) == ("error", 2, None)
    assert [d["config"] for d in doc["configs"]] == ["a/alembic.ini", "c/alembic.ini",
                                                     "b/alembic.ini"]  # fmt: skip
    assert [d["verdict"] for d in doc["configs"]] == ["drift", "error", "in_sync"]
    assert [(f["config"], f["subject"]) for f in doc["findings"]] == [
        ("a/alembic.ini", "notes.body")
    ]
    assert [(e["config"], e["kind"]) for e in doc["errors"]] == [("c/alembic.ini", "migration")]


def test_baseline_per_config_and_a_partial_run_keeps_the_others(
    monorepo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(monorepo / "b" / "models.py", "mapped_column(String(200)", "mapped_column(String(300)")
    both = ["-c", "a/alembic.ini", "-c", "b/alembic.ini"]
    assert main(["baseline", *both]) == EXIT_OK
    capsys.readouterr()
    path = monorepo / "check-migrations.baseline.json"
    entries = json.loads(path.read_text())["findings"]
    assert [(e["config"], e["table"], e["column"]) for e in entries] == [
        ("a/alembic.ini", "notes", "body"),
        ("b/alembic.ini", "users", "email"),
    ]
    assert main(both) == EXIT_OK
    assert capsys.readouterr().out.splitlines()[-1] == (
        "check-migrations: 2 configs: 2 without findings."
    )
    # a's drift fixed; a baseline of a alone drops a's entry and keeps b's.
    edit(monorepo / "a" / "models.py", WIDER[1], WIDER[0])
    assert main(["baseline", "-c", "a/alembic.ini"]) == EXIT_OK
    entries = json.loads(path.read_text())["findings"]
    assert [e["config"] for e in entries] == ["b/alembic.ini"]


def test_the_same_change_in_another_config_is_not_baselined(
    monorepo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    both = ["-c", "a/alembic.ini", "-c", "b/alembic.ini"]
    assert main(["baseline", *both]) == EXIT_OK
    edit(monorepo / "b" / "models.py", *WIDER)  # b now drifts exactly as a does
    assert main(both) == EXIT_FINDINGS
    out = capsys.readouterr().out
    assert out.split("== b/alembic.ini ==")[1].count("notes.body: type is VARCHAR(1000)") == 1


def _hanging_monorepo(root: Path) -> list[str]:
    """a's third revision sleeps for ten minutes; b is fine. Returns the checker's args."""
    import shutil

    for name in ("a", "b"):
        shutil.copytree(SCENARIOS / "base", root / name)
    (root / "a" / "versions" / "0003_hang.py").write_text(
        '"""hang"""\nfrom alembic import op\n\nrevision = "0003"\ndown_revision = "0002"\n'
        "branch_labels = None\ndepends_on = None\n\n\ndef upgrade() -> None:\n"
        '    op.execute("SELECT pg_sleep(600)")\n\n\ndef downgrade() -> None:\n    pass\n'
    )
    return ["-c", "a/alembic.ini", "-c", "b/alembic.ini", "--no-cache"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_interrupted_run_stops_every_config_and_leaves_nothing(
    signum: int, run_root: Path, tmp_path: Path
) -> None:
    proc = start_checker(_hanging_monorepo(tmp_path), tmp_path, checker_env(run_root))
    seen: list[str] = []
    assert wait_for_line(proc, "a/alembic.ini: upgrading 3 revision(s)", seen), seen
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, "".join(seen) + err
    assert postgres_pids(run_root) == []
    assert leftovers(run_root) == []


def test_sigkilled_run_still_tears_every_config_down(run_root: Path, tmp_path: Path) -> None:
    """The children get SIGTERM from the kernel when their parent dies (parent-death signal)."""
    import select

    proc = start_checker(_hanging_monorepo(tmp_path), tmp_path, checker_env(run_root))
    seen: list[str] = []
    assert wait_for_line(proc, "a/alembic.ini: upgrading 3 revision(s)", seen), seen
    children = children_of(proc.pid)
    assert children
    pidfds = [os.pidfd_open(pid) for pid in children]
    proc.kill()
    proc.communicate()
    try:
        for fd in pidfds:  # each child ends once its teardown is done
            assert select.select([fd], [], [], 60)[0]
    finally:
        for fd in pidfds:
            os.close(fd)
    assert postgres_pids(run_root) == []
    assert leftovers(run_root) == []


def _findings(doc: dict[str, object]) -> list[dict[str, object]]:
    found = doc["findings"]
    assert isinstance(found, list)
    return [{k: v for k, v in f.items() if k != "config"} for f in found]


def test_child_processes_and_filters_that_match_nothing_change_no_verdict(
    monorepo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The slow path (one config, in process, no rules, no baseline) against the others."""
    name = "    name: Mapped[str | None] = mapped_column(String(100))\n"
    edit(monorepo / "a" / "models.py", name, "")
    assert main(["-c", "a/alembic.ini", "--format", "json"]) == EXIT_FINDINGS
    plain = json.loads(capsys.readouterr().out)
    assert len(plain["findings"]) == 2

    # Through child processes (the same config twice, so that two run).
    assert main(["-c", "a/alembic.ini", "-c", "a/alembic.ini", "--format", "json"]) == 1
    both = json.loads(capsys.readouterr().out)
    for doc in both["configs"]:
        assert doc["findings"] == plain["findings"]

    # Rules that match nothing and a baseline of another config set nothing aside.
    settings(monorepo, 'ignore = ["remove_table:legacy_*", "add_column:notes.*"]')
    (monorepo / "check-migrations.baseline.json").write_text(
        '{"version": 1, "findings": [{"config": "b/alembic.ini", "kind": "remove_column", '
        '"table": "users", "column": "name", "message": "column name in the database, gone '
        'from the models"}]}'
    )
    assert main(["-c", "a/alembic.ini", "--format", "json"]) == EXIT_FINDINGS
    filtered = json.loads(capsys.readouterr().out)
    assert _findings(filtered) == _findings(plain)
    assert (filtered["ignored"], filtered["baselined"]) == (0, [])

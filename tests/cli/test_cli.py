"""The checker end to end: scenario projects through ``main([...])`` against a real server."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from migration_check import __version__
from migration_check.cli.app import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK, main
from migration_check.postgres.server import run_base_dir
from tests.helpers.edits import edit
from tests.helpers.paths import REPO
from tests.helpers.prereq import require_root
from tests.helpers.procfs import processes
from tests.helpers.scenarios import ScenarioFactory


def test_in_sync_exits_0(scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]) -> None:
    scenario("base")
    assert main([]) == EXIT_OK
    out = capsys.readouterr()
    assert "models and migrations agree (2 revision(s) applied, head 0002" in out.out
    assert "starting a throwaway PostgreSQL" in out.err


# Each case: (edit to models.py, what the output must name)
DRIFT = {
    "gains_column": (
        (
            "    name: Mapped[str | None] = mapped_column(String(100))\n",
            "    name: Mapped[str | None] = mapped_column(String(100))\n"
            "    phone: Mapped[str | None] = mapped_column(String(30))\n",
        ),
        [
            r"models\.py:\d+: users\.phone: column phone VARCHAR\(30\) .*\[add_column\]",
            r"op\.add_column\('users', sa\.Column\('phone'",
        ],
    ),
    "gains_table": (
        (
            "class Note(Base):",
            'class Tag(Base):\n    __tablename__ = "tags"\n\n'
            "    id: Mapped[int] = mapped_column(primary_key=True)\n\n\nclass Note(Base):",
        ),
        [
            r"models\.py:\d+: tags: table in the models, no revision creates it \[add_table\]",
            r"op\.create_table\('tags'",
        ],
    ),
    "loses_column": (
        ("    name: Mapped[str | None] = mapped_column(String(100))\n", ""),
        [
            r"users\.name: column name in the database, gone from the models \[remove_column\]",
            r"op\.drop_column\('users', 'name'\)",
        ],
    ),
    "string_length": (
        ("mapped_column(String(500))", "mapped_column(String(1000))"),
        [
            r"notes\.body: type is VARCHAR\(1000\) in the models, VARCHAR\(500\) in the database"
            r" \[modify_type\]"
        ],
    ),
    "nullable": (
        ("    body: Mapped[str] = ", "    body: Mapped[str | None] = "),
        [r"notes\.body: NULL in the models, NOT NULL in the database \[modify_nullable\]"],
    ),
    "server_default": (
        ("server_default=text(\"'active'\")", "server_default=text(\"'pending'\")"),
        [
            r"users\.status: server default is \"'pending'\" in the models, "
            r"\"'active'::character varying\" in the database \[modify_default\]"
        ],
    ),
    "gains_index": (
        ("mapped_column(String(100))", "mapped_column(String(100), index=True)"),
        [r"models\.py:\d+: users \(ix_users_name\): index ix_users_name \(name\) .*\[add_index\]"],
    ),
    "gains_fk": (
        (
            "    body: Mapped[str] = mapped_column(String(500))\n",
            "    body: Mapped[str] = mapped_column(String(500))\n"
            '    editor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))\n',
        ),
        [
            r"notes\.editor_id: column editor_id INTEGER",
            r"notes\.editor_id: foreign key fk_notes_editor_id_users \(editor_id\) -> users .*"
            r"\[add_fk\]",
        ],
    ),
}


@pytest.mark.parametrize("case", sorted(DRIFT))
def test_model_change_without_revision_exits_1(
    case: str, scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("base")
    (old, new), expected = DRIFT[case]
    edit(project / "models.py", old, new)
    assert main([]) == EXIT_FINDINGS
    out = capsys.readouterr().out
    for pattern in expected:
        assert re.search(pattern, out), f"{pattern!r} not in:\n{out}"
    assert 'check-migrations revision -m "describe the change" --rev-id 0003' in out
    assert out.rstrip().splitlines()[-1].startswith("check-migrations: ")


def test_finding_points_at_the_model_line(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("base")
    edit(project / "models.py", "mapped_column(String(500))", "mapped_column(String(600))")
    assert main([]) == EXIT_FINDINGS
    lines = (project / "models.py").read_text().splitlines()
    line_no = next(i for i, ln in enumerate(lines, 1) if "String(600)" in ln)
    assert f"models.py:{line_no}: notes.body" in capsys.readouterr().out


def test_bad_sql_names_the_revision(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario("bad_sql")
    assert main([]) == EXIT_ERROR
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("check-migrations: error: revision 0002 (versions/0002_broken.py)")
    assert 'relation "missing_table" does not exist' in last
    assert "Traceback" not in err


def test_bad_sql_traceback_only_with_verbose(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario("bad_sql")
    assert main(["-v"]) == EXIT_ERROR
    assert "Traceback" in capsys.readouterr().err


def test_async_env_keeps_asyncpg(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("async_env")
    assert main([]) == EXIT_OK, capsys.readouterr()
    edit(project / "models.py", "mapped_column(String(500))", "mapped_column(String(501))")
    assert main([]) == EXIT_FINDINGS
    assert "notes.body: type is VARCHAR(501)" in capsys.readouterr().out


def test_sync_env_reading_sqlalchemy_url_keeps_psycopg2(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("ini_url")
    assert main([]) == EXIT_OK, capsys.readouterr()
    edit(project / "models.py", "    body: Mapped[str] = ", "    body: Mapped[str | None] = ")
    assert main([]) == EXIT_FINDINGS
    out = capsys.readouterr()
    assert "notes.body: NULL in the models" in out.out
    assert "secret" not in out.out + out.err


def test_config_option_from_another_directory(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = scenario("base")
    monkeypatch.chdir(project.parent)
    assert main(["--config", "project/alembic.ini"]) == EXIT_OK
    assert "project/alembic.ini" in capsys.readouterr().out


def test_this_repository_is_in_sync(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(REPO)
    assert main([]) == EXIT_OK, capsys.readouterr()


@pytest.fixture
def private_runs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A run directory of this test's own, reachable by the server user when we are root."""
    runs = Path(tempfile.mkdtemp(prefix="check-migrations-test-"))
    runs.chmod(0o755)
    monkeypatch.setenv("CHECK_MIGRATIONS_RUN_DIR", str(runs))
    yield runs
    shutil.rmtree(runs, ignore_errors=True)


def test_nothing_left_behind(scenario: ScenarioFactory, private_runs: Path) -> None:
    # A private run directory: other checks running on the machine must not blur the verdict.
    scenario("base")
    assert main([]) == EXIT_OK
    assert list(run_base_dir().iterdir()) == []
    assert str(private_runs) not in _postgres_cmdlines()


@pytest.mark.root
def test_run_dir_the_server_user_cannot_enter(
    scenario: ScenarioFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    require_root("only root hands the server to another user")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    monkeypatch.setenv("CHECK_MIGRATIONS_RUN_DIR", str(private))
    scenario("base")
    assert main([]) == EXIT_ERROR
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "cannot enter it" in err
    assert "CHECK_MIGRATIONS_RUN_DIR" in err


def _postgres_cmdlines() -> str:
    return "\n".join(c for c in (p.command() for p in processes()) if "postgres" in c)


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == EXIT_OK
    out = capsys.readouterr().out
    for flag in ("--config", "--name", "--database-url", "--postgres-bin", "--format", "-v"):
        assert flag in out
    assert main(["--version"]) == EXIT_OK
    assert __version__ in capsys.readouterr().out


def test_usage_error_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--format", "xml"]) == EXIT_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "xml" in err[0]


def test_errors_follow_the_format_and_verbosity_set_in_pyproject(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("bad_sql")
    (project / "pyproject.toml").write_text(
        '[tool.check-migrations]\nformat = "json"\nverbose = true\n'
    )
    assert main([]) == EXIT_ERROR
    out = capsys.readouterr()
    data = json.loads(out.out)
    assert data["verdict"] == "error"
    assert data["errors"][0]["message"].startswith("revision 0002 (versions/0002_broken.py)")
    assert "Traceback" in out.err

"""Options before a subcommand's name work as after it: ``check-migrations -c FILE revision``.

A user who types the main command's options first (as ``git -C dir commit`` teaches) got
"No such option '-m'": the subcommand was only recognised as the first argument.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from migration_check.cli.app import EXIT_ERROR, EXIT_OK, main, subcommand_at
from tests.helpers.edits import NICKNAME
from tests.helpers.scenarios import ScenarioFactory


def test_config_before_the_revision_subcommand(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    project = scenario("history")
    models = project / "models.py"
    models.write_text(models.read_text().replace(*NICKNAME))
    # Run from elsewhere, so the -c given before the subcommand is what finds the project.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    ini = str(project / "alembic.ini")
    args = ["-c", ini, "revision", "-m", "add nickname", "--rev-id", "0003"]
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(elsewhere)
        assert main(args) == EXIT_OK, capsys.readouterr().err
        assert (project / "versions" / "0003_add_nickname.py").is_file()
        assert main(["-c", ini, "--no-cache"]) == EXIT_OK


@pytest.mark.parametrize(
    ("args", "at"),
    [
        (["revision", "-m", "x"], 0),
        (["-c", "a.ini", "revision", "-m", "x"], 2),
        (["--config=a.ini", "-v", "baseline"], 2),
        # An option's value is never a subcommand's name.
        (["-c", "revision"], None),
        (["-x", "revision", "--format", "json"], None),
        (["--", "revision"], None),
        ([], None),
    ],
)
def test_where_the_subcommand_stands(args: list[str], at: int | None) -> None:
    assert subcommand_at(args) == at


def test_an_unknown_option_before_a_subcommand_is_one_line(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario("history")
    assert main(["--bogus", "revision", "-m", "x"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "--bogus" in err
    assert "Traceback" not in err

"""Bad input: every case ends in exit 2 and ONE stderr line naming the culprit and the fix.

The cases are in project_cases.py (the project's files) and environment_cases.py (URLs,
servers, binaries, options, run directories); each starts from a scenario project and breaks
one thing. Progress lines are silenced (CHECK_MIGRATIONS_QUIET=1), so stderr must be exactly
the error line: no traceback, no second line. Two cases are not errors at all and say so: an
empty history with models present is drift (exit 1), and two heads is a finding (exit 1) that
prints the ``alembic merge heads`` command.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from migration_check.cli.app import EXIT_ERROR, EXIT_FINDINGS, main
from tests.helpers.bad_input import MOUNTED, Case, Ctx
from tests.helpers.checker import shared_dir
from tests.helpers.scenarios import ScenarioFactory
from tests.helpers.second_server import PASSWORDS
from tests.promises.bad_input import environment_cases, project_cases
from tests.promises.bad_input.project_cases import env_raises

CASES: dict[str, Case] = {**project_cases.CASES, **environment_cases.CASES}


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Ctx]:
    with shared_dir("cm-bad-input-") as shared:
        context = Ctx(tmp=tmp_path / "ctx", shared=shared)
        context.tmp.mkdir()
        try:
            yield context
        finally:
            while MOUNTED:
                subprocess.run(["umount", "-l", str(MOUNTED.pop())], check=False)


@pytest.mark.parametrize(
    "case", [pytest.param(k, marks=[pytest.mark.root] if c.root else []) for k, c in CASES.items()]
)
def test_bad_input(
    case: str,
    scenario: ScenarioFactory,
    ctx: Ctx,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = CASES[case]
    if spec.needs_server:
        ctx.server = request.getfixturevalue("real_server")
    project = scenario(spec.scenario)
    args = spec.setup(project, ctx)
    monkeypatch.setenv("CHECK_MIGRATIONS_QUIET", "1")
    for key, value in ctx.env.items():
        monkeypatch.setenv(key, value)

    assert main(args) == spec.exit
    out, err = capsys.readouterr()
    for secret in PASSWORDS:
        assert secret not in out + err
    if spec.exit == EXIT_FINDINGS:
        assert err == ""
        for pattern in spec.expect:
            assert re.search(pattern, out), f"{pattern!r} not in:\n{out}"
        return
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("check-migrations: error: "), err
    for pattern in spec.expect:
        assert re.search(pattern, lines[0]), f"{pattern!r} not in:\n{lines[0]}"
    assert out == ""


def test_traceback_only_with_verbose(
    scenario: ScenarioFactory, capfd: pytest.CaptureFixture[str]
) -> None:
    # capfd: with -v the worker writes to the real stderr, which capsys cannot stand in for.
    project = scenario("base")
    env_raises(project, Ctx(tmp=project, shared=project))
    assert main([]) == EXIT_ERROR
    assert "Traceback" not in capfd.readouterr().err
    assert main(["-v"]) == EXIT_ERROR
    err = capfd.readouterr().err
    assert "Traceback" in err
    assert err.strip().splitlines()[-1].startswith("check-migrations: error: env.py:")


def test_list_is_long_enough() -> None:
    errors = [c for c in CASES.values() if c.exit == EXIT_ERROR]
    assert len(errors) >= 20

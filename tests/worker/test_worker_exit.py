"""The worker ends with os._exit once its answer is out (worker._exit_now): what an ordinary
exit still does for the project's code must happen all the same."""

from __future__ import annotations

import pytest

from migration_check.cli.app import EXIT_OK, main
from tests.helpers.scenarios import ScenarioFactory

HOOK = """
import atexit as _atexit
import logging as _logging
from pathlib import Path as _Path

_handler = _logging.FileHandler(_Path(__file__).with_name("env.log"), delay=True)
_logging.getLogger("envpy").addHandler(_handler)
_logging.getLogger("envpy").warning("env.py ran")
_atexit.register(lambda: _Path(__file__).with_name("atexit.txt").write_text("ran\\n"))
"""


def test_atexit_handlers_and_logging_run_at_the_worker_s_exit(
    scenario: ScenarioFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A forked worker (--keep-warm) runs the same worker.main(), so the same exit."""
    project = scenario("base")
    env_py = project / "env.py"
    env_py.write_text(env_py.read_text() + HOOK)
    monkeypatch.setenv("CHECK_MIGRATIONS_VERDICT_CACHE", "0")
    assert main([]) == EXIT_OK, capsys.readouterr().err
    assert (project / "atexit.txt").read_text() == "ran\n"
    assert "env.py ran" in (project / "env.log").read_text()

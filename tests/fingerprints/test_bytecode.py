"""A model edited within the second of its compiled bytecode, to text of the same length.

A .pyc keeps its source's mtime in whole seconds and its size; Python alone would import the
old bytecode and the check would compare the models as they were: a false "agree".
"""

from __future__ import annotations

import os

import pytest

from migration_check.cli.app import EXIT_FINDINGS, EXIT_OK, main
from tests.helpers.scenarios import ScenarioFactory


def test_same_size_same_second_edit_is_seen(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("base")
    models = project / "models.py"
    assert main([]) == EXIT_OK, capsys.readouterr()  # compiles models.py into the bytecode cache
    stat = models.stat()
    text = models.read_text()
    assert "String(100)" in text
    models.write_text(text.replace("String(100)", "String(300)", 1))
    # The same length and the same mtime as the compiled file: only the content differs.
    os.utime(models, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert models.stat().st_size == stat.st_size
    rc = main([])
    out = capsys.readouterr().out
    assert rc == EXIT_FINDINGS, out
    assert "VARCHAR(300)" in out

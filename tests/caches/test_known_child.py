"""``platform.architecture()`` in the models: the one child process whose inputs the key holds.

It runs ``file -b <the interpreter>`` (croniter does so at import, and Apache Airflow's models
import croniter), which made every such project's run unstorable: no verdict and no migrated
database were ever reused. fingerprints/children.py keys what that child reads instead: the
``file`` program found on PATH, the magic database, ``PATH`` and ``MAGIC``. Each perturbation
below changes what ``file`` answers, and so the ``--no-cache`` verdict; the cached check must
follow it. A fake ``file`` on PATH stands in for the system's so its answer can be changed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.soundness import Case, Check, differential, name_length_from, new_check

FILE_SCRIPT = '#!/bin/sh\necho "ELF {bits}-bit LSB pie executable, x86-64"\n'


def _fake_file(directory: Path, bits: int) -> None:
    directory.mkdir(exist_ok=True)
    program = directory / "file"
    program.write_text(FILE_SCRIPT.format(bits=bits))
    program.chmod(0o755)


def _setup(c: Check) -> None:
    _fake_file(c.tmp / "bin", 64)
    c.env["PATH"] = f"{c.tmp / 'bin'}{os.pathsep}{c.env['PATH']}"
    name_length_from(
        c.project,
        "import platform\n\nNAME_LENGTH = 100 if platform.architecture()[0] == '64bit' else 99\n",
    )


def _other_path(c: Check) -> None:
    _fake_file(c.tmp / "bin32", 32)
    c.env["PATH"] = f"{c.tmp / 'bin32'}{os.pathsep}{c.env['PATH']}"


CASES = [
    Case("the file program platform.architecture() runs is edited", _setup,
         lambda c: _fake_file(c.tmp / "bin", 32)),
    Case("PATH finds another file program", _setup, _other_path),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_cached_verdict_equals_no_cache(case: Case, tmp_path: Path, run_root: Path) -> None:
    # Not declinable: on the old code the first run stored nothing (it started a subprocess).
    differential(new_check(tmp_path, run_root), case)


def test_any_other_child_still_makes_the_run_unstorable(tmp_path: Path, run_root: Path) -> None:
    check = new_check(tmp_path, run_root)
    name_length_from(
        check.project,
        "import subprocess\n\n"
        "NAME_LENGTH = 100 if subprocess.run(['true'], check=False).returncode == 0 else 99\n",
    )
    first = check.run("-v")
    assert first.exit == 0, first.describe()
    assert "not storing the verdict: the project's code started a subprocess (true)" in first.stderr
    assert not check.run().hit

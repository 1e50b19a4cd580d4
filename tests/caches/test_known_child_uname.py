"""``platform.processor()`` in the models: ``uname -p``, a second child the key holds.

MLflow calls it at import, which made every MLflow project's run unstorable (``-v``: "not caching
the migrated database: the upgrade started a subprocess (uname)"). fingerprints/children.py keys
the ``uname`` program found on PATH and PATH itself; each perturbation below changes what
``uname -p`` answers, and so the ``--no-cache`` verdict, and the cached check must follow it. A
fake ``uname`` on PATH stands in for the system's so its answer can be changed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.soundness import Case, Check, differential, name_length_from, new_check

UNAME_SCRIPT = '#!/bin/sh\necho "{answer}"\n'


def _fake_uname(directory: Path, answer: str) -> None:
    directory.mkdir(exist_ok=True)
    program = directory / "uname"
    program.write_text(UNAME_SCRIPT.format(answer=answer))
    program.chmod(0o755)


def _setup(c: Check) -> None:
    _fake_uname(c.tmp / "bin", "x86_64")
    c.env["PATH"] = f"{c.tmp / 'bin'}{os.pathsep}{c.env['PATH']}"
    name_length_from(
        c.project,
        "import platform\n\nNAME_LENGTH = 100 if platform.processor() == 'x86_64' else 99\n",
    )


def _other_path(c: Check) -> None:
    _fake_uname(c.tmp / "bin-arm", "aarch64")
    c.env["PATH"] = f"{c.tmp / 'bin-arm'}{os.pathsep}{c.env['PATH']}"


CASES = [
    Case("the uname program platform.processor() runs is edited", _setup,
         lambda c: _fake_uname(c.tmp / "bin", "aarch64")),
    Case("PATH finds another uname program", _setup, _other_path),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_cached_verdict_equals_no_cache(case: Case, tmp_path: Path, run_root: Path) -> None:
    # Not declinable: on the old code the first run stored nothing (it started a subprocess).
    differential(new_check(tmp_path, run_root), case)

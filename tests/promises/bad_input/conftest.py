"""The ``ctx`` of a bad-input case: its scratch directories, and what it mounted undone."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.bad_input import MOUNTED, Ctx
from tests.helpers.checker import shared_dir


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

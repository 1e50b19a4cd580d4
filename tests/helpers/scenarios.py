"""A scenario project (``tests/scenarios/NAME``) copied where a test may change it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.helpers.paths import SCENARIOS


class ScenarioFactory:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path

    def __call__(self, name: str, dest: str = "project") -> Path:
        target = self.tmp_path / dest
        shutil.copytree(SCENARIOS / name, target, ignore=shutil.ignore_patterns("__pycache__"))
        os.chdir(target)
        return target

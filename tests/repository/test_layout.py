"""The layout's rules: each folder of the package belongs to one process (docs/architecture.md).

The contracts live in pyproject's ``[tool.importlinter]``; these tests run import-linter on the
real package, and on a copy with one forbidden import added, so a contract that could never fail
(a typo in a module name, a layer nobody imports) is caught too.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.paths import REPO

PACKAGE = REPO / "tools" / "migration_check"


def _lint(root: Path, package_dir: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports with the repository's contracts, the package imported from ``package_dir``."""
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=root,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(package_dir),
            "PYTHONDONTWRITEBYTECODE": "1",
        },
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_package_keeps_its_contracts(tmp_path: Path) -> None:
    result = _lint(tmp_path, PACKAGE.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract", "summary"),
    [
        ("cli/app.py", "import sqlalchemy", "never imports the project's libraries", "3 kept, 1"),
        ("caches/verdict.py", "import migration_check.worker.process", "the worker", "3 kept, 1"),
        ("postgres/server.py", "import migration_check.run.check", "runs one way", "3 kept, 1"),
        # The resident worker imports the worker, so it breaks its own contract too.
        ("worker/upgrade.py", "import migration_check.run.check", "never reaches", "2 kept, 2"),
        ("resident/fork.py", "import migration_check.caches.migrated", "forks, not", "3 kept, 1"),
    ],
)
def test_a_forbidden_import_breaks_a_contract(
    tmp_path: Path, module: str, line: str, contract: str, summary: str
) -> None:
    copy = tmp_path / "src" / "migration_check"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / module
    target.write_text(target.read_text() + f"\n{line}  # a deliberate violation\n")
    result = _lint(tmp_path, copy.parent)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"Contracts: {summary} broken." in result.stdout, result.stdout
    assert contract in result.stdout.replace("\n", " ")

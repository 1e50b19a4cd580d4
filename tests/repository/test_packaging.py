"""The distribution is the checker alone: adding it to a project installs ``migration_check``.

It was ``expense-manager-db`` and put a top-level ``expense_models`` package into every project
that added it (and into the published pre-commit hook's environment, which installs this
repository's root).
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

from tests.helpers.paths import REPO


def test_the_wheel_holds_only_the_checker(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    assert uv is not None, "uv is on PATH wherever the README's commands run"
    subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    assert wheel.name.startswith("check_migrations-")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        tops = {name.split("/", 1)[0] for name in names}
        dist_info = next(t for t in tops if t.endswith(".dist-info"))
        entry_points = zf.read(f"{dist_info}/entry_points.txt").decode()
    assert tops == {"migration_check", dist_info}
    assert "check-migrations = migration_check.cli.program:run" in entry_points
    assert "check-migrations = migration_check.cli.pytest_plugin" in entry_points  # pytest11
    # Every folder of the layout ships, and the worker's entry point with it.
    assert "migration_check/worker/__main__.py" in names
    for package in (
        "cli", "report", "run", "postgres", "caches", "fingerprints", "resident", "worker",
        "worker/autogenerate", "worker/catalog", "worker/layouts", "worker/safety",
    ):  # fmt: skip
        assert f"migration_check/{package}/__init__.py" in names, package

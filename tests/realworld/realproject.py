"""A real project from the package index, installed with pinned versions into its own venv.

The venv also gets this repository (the ``check-migrations`` distribution) from its local path,
so the checker runs exactly as it would for a user who added it to that project: its own
console script, the project's own interpreter and packages, as a real subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
TRUTH = Path(__file__).resolve().parent / "alembic_truth.py"

Key = tuple[str, str | None, str | None]


def uv() -> str:
    # Under CI a missing uv or index must fail loudly: nothing here may turn into a skip.
    path = shutil.which("uv")
    if path is None:
        pytest.fail("uv is not on PATH: the real-project suite installs its projects with uv")
    return path


def _env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "VIRTUAL_ENV")}
    env.update(extra or {})
    # A mutation edits a module in place; stale bytecode must never stand in for the edit.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["NO_COLOR"] = "1"
    return env


@dataclass(frozen=True)
class Venv:
    root: Path
    # What the project itself reads from the environment (airflow: AIRFLOW_HOME), for every run.
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def site_packages(self) -> Path:
        out = self.run(
            [str(self.python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]
        )
        return Path(out.stdout.strip())

    def run(
        self,
        argv: Sequence[str],
        cwd: Path | None = None,
        timeout: float = 600,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(argv),
            check=False,
            cwd=cwd,
            env=_env({**self.env, **(env or {})}),
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def make_venv(
    root: Path, requirements: Sequence[str], env: Mapping[str, str] | None = None
) -> Venv:
    """``uv venv`` + ``uv pip install`` of the pinned requirements and this repository."""
    # The suite's own interpreter: uv must neither pick another one nor download one.
    python = sys.executable
    for argv in (
        [uv(), "venv", "--quiet", "--python", python, str(root)],
        # uv's cache keys a local directory on its pyproject.toml alone: without
        # --reinstall-package an edit of the checker would be tested as its cached old build.
        [
            uv(),
            "pip",
            "install",
            "--quiet",
            "--python",
            str(root / "bin" / "python"),
            "--reinstall-package",
            "check-migrations",
            # uv hardlinks files from its cache by default: a mutation edited in place would
            # edit the cache and every venv installed from it (and theirs would edit ours).
            "--link-mode",
            "copy",
            *requirements,
            str(REPO),
        ],
    ):
        done = subprocess.run(
            argv, check=False, env=_env(), capture_output=True, text=True, timeout=900
        )
        if done.returncode != 0:
            pytest.fail(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    return Venv(root, dict(env or {}))


def finding_key(finding: dict[str, Any]) -> Key:
    name = finding["column"] if finding["column"] is not None else finding["object"]
    return (finding["kind"], finding["table"], name)


@dataclass
class Checked:
    exit_code: int
    document: dict[str, Any]
    stderr: str

    @property
    def keys(self) -> set[Key]:
        return {finding_key(f) for f in self.document["findings"]}

    def by_source(self, source: str) -> set[Key]:
        return {finding_key(f) for f in self.document["findings"] if f["source"] == source}

    @property
    def baselined(self) -> set[Key]:
        return {finding_key(f) for f in self.document["baselined"]}


def entry_key(entry: dict[str, str]) -> Key:
    """A baseline file entry, keyed as a finding is."""
    return (entry["kind"], entry.get("table"), entry.get("column", entry.get("object")))


def check(venv: Venv, project: Path, database_url: str) -> Checked:
    """The venv's own ``check-migrations`` console script, on the session's server."""
    done = venv.run(
        [
            str(venv.root / "bin" / "check-migrations"),
            "--format",
            "json",
            "--database-url",
            database_url,
        ],
        cwd=project,
    )
    assert done.returncode in (0, 1), f"checker exit {done.returncode}:\n{done.stderr}"
    return Checked(done.returncode, json.loads(done.stdout), done.stderr)


def record_baseline(venv: Venv, project: Path, database_url: str) -> list[dict[str, str]]:
    """``check-migrations baseline`` as a user adopting the checker runs it; the file's entries."""
    done = venv.run(
        [str(venv.root / "bin" / "check-migrations"), "baseline", "--database-url", database_url],
        cwd=project,
    )
    assert done.returncode == 0, f"check-migrations baseline exit {done.returncode}:\n{done.stderr}"
    entries: list[dict[str, str]] = json.loads(
        (project / "check-migrations.baseline.json").read_text()
    )["findings"]
    return entries


def alembic_truth(
    venv: Venv, ini: Path, url: str, env: Mapping[str, str] | None = None
) -> set[Key]:
    """Plain Alembic's diffs after ``upgrade heads`` on the empty database at url.

    env: what else the project's env.py reads the URL from (airflow's own setting).
    """
    done = venv.run([str(venv.python), str(TRUTH), str(ini), url], cwd=ini.parent, env=env)
    assert done.returncode == 0, f"plain alembic failed:\n{done.stderr}"
    # The last line: a project may log to stdout too (airflow's structlog does).
    return {(k, t, n) for k, t, n in json.loads(done.stdout.splitlines()[-1])}


@contextmanager
def mutated(path: Path, old: str, new: str) -> Iterator[None]:
    """A model-only edit of an installed module, undone afterwards (the venv is session-wide)."""
    original = path.read_text()
    assert original.count(old) == 1, f"{old!r} is not in {path} exactly once"
    path.write_text(original.replace(old, new))
    try:
        yield
    finally:
        path.write_text(original)

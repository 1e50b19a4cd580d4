"""The differential harness of the cache-soundness suites (test_cache_soundness*.py).

One case is one real way a user's inputs change between two checks. For each: fill both caches
(the verdict and the migrated database), prove the second check is served from them, perturb,
prove the perturbation changes the ``--no-cache`` verdict (or the case proves nothing), then the
default check must give what ``--no-cache`` gives: the same exit code and the same findings.

The checker runs as a real subprocess with an explicit environment, so a case can change what
only an interpreter start-up sees (``PYTHONPATH``, ``sitecustomize``, ``.pth`` files, another
venv). Interpreter-level cases run a throwaway venv (``make_venv``), never the repository's.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers.checker import checker_env
from tests.helpers.edits import edit
from tests.helpers.paths import REPO, SCENARIOS, SHIM

HIT = "(cached verdict"
DB_STORED = "cached the migrated database"
PY_DIR = f"python{sys.version_info.major}.{sys.version_info.minor}"


@dataclass(frozen=True)
class Verdict:
    """What a user sees of a check: its exit code and its findings (sorted, whole)."""

    exit: int
    findings: tuple[str, ...]
    stderr: str = field(compare=False, repr=False)

    @property
    def hit(self) -> bool:
        return HIT in self.stderr

    def describe(self) -> str:
        kinds = [json.loads(f)["kind"] for f in self.findings]
        tail = "\n    ".join(self.stderr.strip().splitlines()[-6:])
        return f"exit {self.exit}, findings {kinds}\n    {tail}"


@dataclass
class Check:
    """One project copy, its own caches, and the interpreter, environment and flags it runs with."""

    project: Path
    tmp: Path
    env: dict[str, str]
    python: str = sys.executable
    args: list[str] = field(default_factory=list)

    def run(self, *extra: str) -> Verdict:
        proc = subprocess.run(
            [self.python, str(SHIM), "--format", "json", *self.args, *extra],
            cwd=self.project,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        try:
            report = json.loads(proc.stdout)
        except ValueError:
            raise AssertionError(
                f"exit {proc.returncode}, no JSON report:\n{proc.stdout}\n{proc.stderr}"
            ) from None
        findings = tuple(sorted(json.dumps(f, sort_keys=True) for f in report["findings"]))
        return Verdict(proc.returncode, findings, proc.stderr)


def new_check(tmp_path: Path, run_dir: Path, scenario: str = "base") -> Check:
    import shutil

    project = tmp_path / "project"
    shutil.copytree(SCENARIOS / scenario, project, ignore=shutil.ignore_patterns("__pycache__"))
    # The caches beside the run directories, on tmpfs here: an entry is stored by a rename.
    return Check(project, tmp_path, checker_env(run_dir, run_dir / "cache", pristine=True))


@dataclass(frozen=True)
class Case:
    """``declinable``: the checker may rightly refuse to store such a run (DESIGN.md: a run
    that started a subprocess is not stored), so filling the caches is not required of it."""

    id: str
    setup: Callable[[Check], object]
    perturb: Callable[[Check], object]
    declinable: bool = False


def differential(check: Check, case: Case) -> Verdict:
    """Fill the caches, perturb, and hold the default check to ``--no-cache``'s answer (which
    is returned, with the default check's stderr)."""
    case.setup(check)
    before = check.run()
    assert before.exit in (0, 1), f"the project does not check before: {before.describe()}"
    again = check.run()
    if not case.declinable:
        assert DB_STORED in before.stderr, f"no migrated database stored: {before.describe()}"
        assert again.hit, f"the second check was not served from the cache: {again.describe()}"
    assert again == before, f"{again.describe()}\n  != first check {before.describe()}"
    case.perturb(check)
    fresh = check.run("--no-cache")
    assert fresh != before, (
        f"the perturbation does not change the --no-cache verdict ({fresh.describe()}): "
        "the case proves nothing"
    )
    cached = check.run()
    assert cached == fresh, f"default check {cached.describe()}\n  != --no-cache {fresh.describe()}"
    return cached


# Project edits shared by the cases.


def drift_in_notes(project: Path) -> None:
    """A model column no revision adds: exit 1 unless a filter hides the notes table."""
    body = "    body: Mapped[str] = mapped_column(String(500))\n"
    edit(project / "models.py", body, body + "    pinned: Mapped[bool | None]\n")


def name_length_from(project: Path, prelude: str, expr: str = "NAME_LENGTH") -> None:
    """users.name's length (100 in the revisions) taken from ``expr``, defined by ``prelude``."""
    models = project / "models.py"
    edit(models, "from sqlalchemy import", prelude + "\nfrom sqlalchemy import")
    edit(models, "String(100)", f"String({expr})")


def add_user_column(project: Path, line: str, imports: str = "") -> None:
    models = project / "models.py"
    email = "    email: Mapped[str] = mapped_column(String(200), unique=True)\n"
    edit(models, email, email + f"    {line}\n")
    if imports:
        edit(models, "from sqlalchemy import", imports + "\nfrom sqlalchemy import")


def add_model(project: Path, source: str) -> None:
    with (project / "models.py").open("a") as fh:
        fh.write("\n\n" + source)


def add_revision(project: Path, upgrade: str, downgrade: str, imports: str = "") -> None:
    """A third revision on top of 0002; ``upgrade``/``downgrade``: indented function bodies."""
    (project / "versions" / "0003_more.py").write_text(
        '"""more\n\nRevision ID: 0003\nRevises: 0002\n"""\n'
        f"import sqlalchemy as sa\nfrom alembic import op\n{imports}\n"
        'revision = "0003"\ndown_revision = "0002"\nbranch_labels = None\ndepends_on = None\n\n\n'
        f"def upgrade() -> None:\n{upgrade}\n\n"
        f"def downgrade() -> None:\n{downgrade}\n"
    )


# Throwaway interpreters.


def make_venv(path: Path, *, system_site: bool = False) -> Path:
    """A venv of the base interpreter that sees the repository's libraries and the checker.

    Its site-packages holds one .pth listing the repository venv's site-packages and what that
    venv's editable-install .pth lists (the repository root and tools/). Returns its python.
    """
    base = getattr(sys, "_base_executable", sys.executable)
    cmd = [base, "-m", "venv", "--without-pip", str(path)]
    if system_site:
        cmd.append("--system-site-packages")
    subprocess.run(cmd, check=True, capture_output=True)
    repo_site = sysconfig.get_paths()["purelib"]
    (site_packages(path) / "_check_migrations_repo.pth").write_text(
        f"{repo_site}\n{REPO}\n{REPO / 'tools'}\n"
    )
    return path / "bin" / "python"


def site_packages(venv: Path) -> Path:
    return venv / "lib" / PY_DIR / "site-packages"


def patch_source(length: int) -> str:
    """A start-up patch, as APM agents install them: amends ``models`` once it is imported."""
    return f'''"""Start-up patch: users.name is {length} wide, whatever models.py says."""
import importlib.machinery
import sys


class _AfterImport:
    def find_spec(self, name, path=None, target=None):
        if name != "models":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            module.User.__table__.c.name.type.length = {length}

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _AfterImport())
'''

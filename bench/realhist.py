"""Real long Alembic histories from the package index (issue 20): the projects and their venvs.

Each project is a pinned package whose wheel ships its Alembic history, installed into a venv
of its own under bench/.work/ (kept between runs: a second run reuses it), with the checker's
own dependencies beside it (the checker runs from this checkout with the venv's interpreter,
as `python tools/check_migrations.py`, so an edit of the checker is measured at once).

The one who edits a model is the upstream's developer, whose checkout holds the package's
source, installed editable. So the package's own directory is moved out of site-packages once
(into the venv's ``.bench-src``), and each run copies it into the project directory's ``src/``,
in git, reached through a ``.pth`` file, which is what an editable install amounts to: the
models, the revisions and env.py are the project's files, not an installed library's. The
project directory also holds what a user adopting the checker writes: a minimal alembic.ini
(and, for mlflow, whose env.py imports only the declarative base, a three-line env.py around
the upstream one).

- apache-airflow-core 3.3.2: 124 revisions, from empty (airflow's env.py takes the handed
  connection; the peer's goes through AIRFLOW__DATABASE__SQL_ALCHEMY_CONN). psycopg2, as
  airflow's own PostgreSQL provider: revision 686269002441 fails on psycopg 3's server-side
  parameters (``literal("0")`` bound as VARCHAR into an integer column).
- mlflow-skinny 3.17.2: 67 revisions, whose first assumes the tables mlflow creates with
  ``create_all`` (its initial models): the bench makes that base once (create_all, then the
  first revision) and both sides start from it (the checker with ``--start-from``), so 66
  revisions replay. Its models and its history disagree at head (indexes, foreign keys
  autogenerate reports), so bare ``alembic check`` exits 255 even in sync; the checker's
  baseline records the same drift.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from common import REPO, run

WORK = REPO / "bench" / ".work"
CHECKER_SHIM = REPO / "tools" / "check_migrations.py"


@dataclass(frozen=True)
class Mutation:
    """A model-only edit: ``line`` added after ``anchor`` in ``module`` (under the source)."""

    module: str
    anchor: str
    line: str
    table: str
    column: str


@dataclass(frozen=True)
class RealProject:
    name: str
    pins: tuple[str, ...]
    packages: tuple[str, ...]  # the top-level packages that are the project's source
    min_revisions: int
    mutation: Mutation
    ini: str  # {src} is the project's source directory
    env_py: str = ""  # the project's own env.py, when the upstream's needs one around it
    extra_env: dict[str, str] = field(default_factory=dict)  # {work} is this project's dir
    # The peer's database: each variable gets its URL on that dialect+driver.
    peer_urls: dict[str, str] = field(
        default_factory=lambda: {"DATABASE_URL": "postgresql+psycopg2"}
    )
    base_dump: bool = False  # build --start-from's dump from the initial models
    # Bare `alembic check` at head already finds the upstream's own drift (exits non-zero):
    # the peer's time is still that of the whole comparison.
    upstream_drift: bool = False


# What builds and compares the schema is pinned too; psycopg2, as the projects use it.
_SCHEMA_PINS = ("sqlalchemy==2.1.9", "alembic==1.20.1", "psycopg2-binary==2.9.13")

AIRFLOW = RealProject(
    name="airflow-core-3.3.2",
    pins=("apache-airflow-core==3.3.2", *_SCHEMA_PINS),
    packages=("airflow",),
    min_revisions=100,
    mutation=Mutation(
        "airflow/models/log.py",
        "    event: Mapped[str] = mapped_column(String(60), nullable=False)\n",
        "    bench_note: Mapped[str | None] = mapped_column(String(40), nullable=True)\n",
        "log",
        "bench_note",
    ),
    ini=(
        "[alembic]\nscript_location = {src}/airflow/migrations\n"
        "sqlalchemy.url = postgresql+psycopg2://\n"
    ),
    extra_env={"AIRFLOW_HOME": "{work}/airflow-home"},
    peer_urls={
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2",
        # airflow also opens an async engine (asyncpg by default, not installed)
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": "postgresql+psycopg",
    },
)

MLFLOW = RealProject(
    name="mlflow-skinny-3.17.2",
    pins=("mlflow-skinny==3.17.2", *_SCHEMA_PINS),
    packages=("mlflow",),
    min_revisions=60,
    mutation=Mutation(
        "mlflow/store/tracking/dbmodels/models.py",
        '    __tablename__ = "experiments"\n',
        "    bench_note = Column(String(40), nullable=True)\n",
        "experiments",
        "bench_note",
    ),
    ini=(
        "[alembic]\nscript_location = migrations\n"
        "version_locations = {src}/mlflow/store/db_migrations/versions\n"
        "sqlalchemy.url = postgresql+psycopg2://\n"
    ),
    env_py='''"""mlflow's env.py, the models its target metadata is made of imported first."""
import os
import runpy

from alembic import context

import mlflow.store.db_migrations
import mlflow.store.model_registry.dbmodels.models  # noqa: F401
import mlflow.store.tracking.dbmodels.models  # noqa: F401

if os.environ.get("DATABASE_URL") and "connection" not in context.config.attributes:
    context.config.set_main_option("sqlalchemy.url", os.environ["DATABASE_URL"])
runpy.run_path(os.path.join(mlflow.store.db_migrations.__path__[0], "env.py"))
''',
    base_dump=True,
    upstream_drift=True,
)

PROJECTS = (AIRFLOW, MLFLOW)


def checker_requirements() -> list[str]:
    with (REPO / "pyproject.toml").open("rb") as fh:
        deps: list[str] = tomllib.load(fh)["project"]["dependencies"]
    return deps


@dataclass(frozen=True)
class Installed:
    project: RealProject
    venv: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def alembic(self) -> Path:
        return self.venv / "bin" / "alembic"

    @property
    def site(self) -> Path:
        out = subprocess.run(
            [str(self.python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True,
            text=True,
            check=True,
        )
        return Path(out.stdout.strip())

    @property
    def sources(self) -> Path:
        """The package's source, moved out of site-packages (a run copies it into its project)."""
        return self.venv / ".bench-src"

    @property
    def checker(self) -> list[str]:
        return [str(self.python), str(CHECKER_SHIM)]

    def model(self, project: Path) -> Path:
        return src_dir(project) / self.project.mutation.module


def src_dir(project: Path) -> Path:
    return project / "src"


def install(project: RealProject, progress: object = None) -> Installed:
    """The project's venv under bench/.work/, made once per set of pins (and checker deps)."""
    reqs = [*project.pins, *checker_requirements()]
    digest = hashlib.sha256("\n".join(reqs).encode()).hexdigest()[:12]
    venv = WORK / "venvs" / f"{project.name}-{digest}"
    done = venv / ".bench-installed"
    if not done.is_file():
        shutil.rmtree(venv, ignore_errors=True)
        uv = shutil.which("uv")
        if uv is None:
            raise RuntimeError("uv is not on PATH: the bench installs the real projects with uv")
        # The machine's own index and certificate settings; not the bench's venv.
        env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
        for argv in (
            [uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
            # Copies, not uv's hardlinks into its cache: the package's files are moved out and
            # copied per run, and a stray edit must not reach every venv linked to that file.
            [
                uv,
                "pip",
                "install",
                "--quiet",
                "--link-mode",
                "copy",
                "--python",
                str(venv / "bin" / "python"),
                *reqs,
            ],
        ):
            proc = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
            if proc.returncode != 0:
                raise RuntimeError(f"{' '.join(argv)} failed:\n{proc.stderr[-3000:]}")
        done.write_text("\n".join(reqs) + "\n")
    installed = Installed(project, venv)
    _take_sources(installed)
    return installed


def _take_sources(installed: Installed) -> None:
    """Move the project's packages out of site-packages, once (a venv of an older bench too)."""
    site = installed.site
    for package in installed.project.packages:
        target = installed.sources / package
        if target.is_dir():
            continue
        # An edit a killed run of the older bench left in site-packages.
        restore(site / installed.project.mutation.module)
        installed.sources.mkdir(exist_ok=True)
        shutil.move(str(site / package), str(target))


def restore(path: Path) -> None:
    """Undo an edit a killed run left in the cached venv (the pristine copy sits beside it)."""
    pristine = path.with_name(path.name + ".bench-pristine")
    if pristine.is_file():
        shutil.copy2(pristine, path)
        pristine.unlink()


@contextmanager
def edited(path: Path, old: str, new: str) -> Iterator[None]:
    """``old`` replaced by ``new`` in ``path`` (a model module), undone afterwards."""
    text = path.read_text()
    if text.count(old) != 1:
        raise RuntimeError(f"{old!r} is not in {path} exactly once: the pin changed")
    pristine = path.with_name(path.name + ".bench-pristine")
    shutil.copy2(path, pristine)
    path.write_text(text.replace(old, new))
    try:
        yield
    finally:
        restore(path)


def project_env(installed: Installed, work: Path, base: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in base.items() if k != "VIRTUAL_ENV"}
    env["PATH"] = f"{installed.venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
    for key, value in installed.project.extra_env.items():
        env[key] = value.format(work=work)
    return env


def write_project(installed: Installed, work: Path, env: dict[str, str]) -> Path:
    """The upstream developer's checkout: the source in ``src/``, installed editable (a
    ``.pth``), and what adopting the checker adds: alembic.ini (and env.py); all in git."""
    project = work / "project"
    project.mkdir(parents=True)
    (work / "airflow-home").mkdir(exist_ok=True)
    src = src_dir(project)
    for package in installed.project.packages:
        shutil.copytree(
            installed.sources / package,
            src / package,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    # The venv is the bench's own: its one project is this run's.
    (installed.site / "_bench_project_src.pth").write_text(f"{src}\n")
    (project / ".gitignore").write_text("__pycache__/\n*.bench-pristine\n")
    (project / "alembic.ini").write_text(installed.project.ini.format(src=src))
    if installed.project.env_py:
        (project / "migrations").mkdir()
        (project / "migrations" / "env.py").write_text(installed.project.env_py)
        shutil.copy2(REPO / "alembic" / "script.py.mako", project / "migrations")
    git = {
        **env,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.com",
    }
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "adopt"]):
        run(["git", *cmd], cwd=project, env=git)
    return project


def revisions(installed: Installed, project: Path, env: dict[str, str]) -> tuple[int, str]:
    """How many revisions the history has, and its head, as Alembic reads them."""
    code = (
        "from alembic.config import Config; from alembic.script import ScriptDirectory; "
        "s = ScriptDirectory.from_config(Config('alembic.ini')); "
        "print(len(list(s.walk_revisions())), s.get_current_head())"
    )
    out = run([str(installed.python), "-c", code], cwd=project, env=env).out.split()
    count = int(out[0])
    if count < installed.project.min_revisions:
        raise RuntimeError(
            f"{installed.project.name}: {count} revisions, fewer than the row's "
            f"{installed.project.min_revisions}"
        )
    return count, out[1]


def revision_on_top(installed: Installed, head: str, n: int) -> str:
    """A revision after ``head`` adding the mutation's column (``n`` makes each one new)."""
    m = installed.project.mutation
    return (
        f'"""bench: {m.table}.{m.column} ({n})."""\n'
        # A different size each time: bytecode is checked by mtime (seconds) and size.
        f"# {'.' * n}\n"
        "import sqlalchemy as sa\nfrom alembic import op\n\n"
        f'revision = "bench0top{n:04d}"\ndown_revision = "{head}"\n'
        "branch_labels = None\ndepends_on = None\n\n\n"
        "def upgrade() -> None:\n"
        f'    op.add_column("{m.table}", sa.Column("{m.column}", sa.String(40), nullable=True))\n'
        "\n\ndef downgrade() -> None:\n"
        f'    op.drop_column("{m.table}", "{m.column}")\n'
    )


def versions_dir(installed: Installed, project: Path) -> Path:
    """Where the upstream's revisions are (a revision on top goes there, removed after)."""
    ini = installed.project.ini.format(src=src_dir(project))
    for line in ini.splitlines():
        if line.startswith("version_locations = "):
            return Path(line.split(" = ", 1)[1])
    return Path(ini.split("script_location = ", 1)[1].splitlines()[0]) / "versions"

"""What every row of the bench needs: environments, timing, the peers, the project copy."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO / "bench"))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

from migration_check.postgres import reach as postgres_reach  # noqa: E402
from migration_check.postgres.server import (  # noqa: E402
    SUPERUSER,
    ThrowawayServer,
    find_binaries,
    resolve_server_user,
)

PYTHON = sys.executable
CHECK = [PYTHON, str(REPO / "tools" / "check_migrations.py")]
ALEMBIC = str(Path(PYTHON).parent / "alembic")
HIT = "(cached verdict"
PROJECT_FILES = ("alembic.ini", "alembic", "expense_models", "pyproject.toml")


@dataclass
class Row:
    name: str
    ours: float
    peer_name: str
    peer: float
    target: float | None
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.ours / self.peer


def bench_env(tmp: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CHECK_MIGRATIONS_") and k not in ("DATABASE_URL", "PGHOST")
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    env["CHECK_MIGRATIONS_QUIET"] = "0"
    return env


def caches(tmp: Path, name: str) -> dict[str, str]:
    """Private cache locations, in the default layout: disk for ~/.cache, tmpfs for runs."""
    shm = Path("/dev/shm")
    fast = shm if shm.is_dir() and os.access(shm, os.W_OK) else tmp
    # Short: the server's socket path (run directory + "/.s.PGSQL.5432") must fit 107 bytes.
    run_root = fast / f"{tmp.name[-8:]}-{zlib.crc32(name.encode()):08x}"
    run_root.mkdir(exist_ok=True)
    return {"XDG_CACHE_HOME": str(tmp / f"xdg-{name}"), "CHECK_MIGRATIONS_RUN_DIR": str(run_root)}


def drop_caches(tmp: Path, name: str) -> None:
    for path in caches(tmp, name).values():
        shutil.rmtree(path, ignore_errors=True)


@dataclass
class Outcome:
    seconds: float
    rc: int
    out: str
    err: str


def run(cmd: Sequence[str], *, cwd: Path, env: dict[str, str], ok: Sequence[int] = (0,)) -> Outcome:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok:
        raise RuntimeError(
            f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        )
    return Outcome(elapsed, proc.returncode, proc.stdout, proc.stderr)


def alternate(reps: int, a: Callable[[], float], b: Callable[[], float]) -> tuple[float, float]:
    """Medians of ``a`` and ``b`` timed alternately."""
    xs, ys = [], []
    for _ in range(reps):
        xs.append(a())
        ys.append(b())
    return statistics.median(xs), statistics.median(ys)


def copy_project(dest: Path) -> Path:
    """This repository's Alembic project, in a git repository of its own (the bench edits it)."""
    dest.mkdir()
    for name in PROJECT_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.is_file():
            shutil.copy2(src, dest / name)
    git = {
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.com",
    }
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "copy"]):
        subprocess.run(["git", *cmd], cwd=dest, env={**os.environ, **git}, check=True)
    return dest


class Peer:
    """A PostgreSQL kept running by the bench, one database per project, upgraded once."""

    def __init__(self, server: ThrowawayServer) -> None:
        self.server = server

    def database_url(self, project: Path, env: dict[str, str]) -> str:
        name = f"peer_{zlib.crc32(str(project).encode()):08x}"
        with psycopg.connect(**self.server.admin_conninfo(), autocommit=True) as conn:  # type: ignore[arg-type]
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        url = f"postgresql+psycopg://{SUPERUSER}@/{name}?host={self.server.socket_dir}"
        run([ALEMBIC, "upgrade", "head"], cwd=project, env={**env, "DATABASE_URL": url})
        return url

    @staticmethod
    def check(project: Path, env: dict[str, str], url: str) -> float:
        return run([ALEMBIC, "check"], cwd=project, env={**env, "DATABASE_URL": url}).seconds


def as_server_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def scripted_pipeline(project: Path, env: dict[str, str], tmp: Path, bindir: Path) -> float:
    """The commands a user would script, timed end to end as separate processes."""
    workdir = Path(tempfile.mkdtemp(prefix="pipeline-", dir=tmp))
    if os.geteuid() == 0:
        os.chown(workdir, 65534, 65534)
    data = workdir / "data"
    as_user = as_server_user()
    url = f"postgresql+psycopg://postgres@/postgres?host={workdir}"
    start = time.perf_counter()
    run(
        [*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"],
        cwd=workdir,
        env=env,
    )
    options = f"-k {workdir} -c listen_addresses=''"
    run(
        [
            *as_user,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(workdir / "log"),
            "-w",
            "-o",
            options,
            "start",
        ],
        cwd=workdir,
        env=env,
    )
    try:
        run([ALEMBIC, "upgrade", "head"], cwd=project, env={**env, "DATABASE_URL": url})
        run([ALEMBIC, "check"], cwd=project, env={**env, "DATABASE_URL": url})
    finally:
        run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-w", "stop"], cwd=workdir, env=env)
        shutil.rmtree(workdir, ignore_errors=True)
    return time.perf_counter() - start


def touch_model(path: Path, n: list[int]) -> None:
    """Change a model file's content (a comment): the verdict cache must miss, nothing else."""
    n[0] += 1
    with path.open("a") as fh:
        fh.write(f"# bench edit {n[0]}\n")


def edited_then_reused(
    *,
    command: Sequence[str],
    reps: int,
    env: dict[str, str],
    project: Path,
    model: Path,
    edits: list[int],
    peer: Callable[[], float],
    names: tuple[str, str, str],
    target: float,
    reused_target: float | None = None,
) -> list[Row]:
    """Two rows against ``peer``: a model edited before each check, then the history reused.

    The migrated-database cache keys on every module env.py loaded, the models included, so an
    edit replays the history; the second row (verdict cache off, no edit) shows the check when
    it does not.
    """
    title, reused, peer_name = names

    def changed() -> float:
        touch_model(model, edits)
        outcome = run(command, cwd=project, env=env)
        assert HIT not in outcome.err, "inputs changed, yet the verdict was served"
        return outcome.seconds

    ours, theirs = alternate(reps, changed, peer)
    rows = [Row(title, ours, peer_name, theirs, target)]
    no_verdict = {**env, "CHECK_MIGRATIONS_VERDICT_CACHE": "0"}
    run(command, cwd=project, env=no_verdict)
    ours, theirs = alternate(reps, lambda: run(command, cwd=project, env=no_verdict).seconds, peer)
    second = target if reused_target is None else reused_target
    rows.append(Row(reused, ours, peer_name, theirs, second))
    return rows


def has_flag(flag: str, env: dict[str, str]) -> bool:
    out = run([*CHECK, "--help"], cwd=REPO, env=env).out
    return flag in out


def agree(project: Path, env: dict[str, str], args: Sequence[str] = ()) -> tuple[bool, str]:
    """The same scenario with the caches (twice: stores, then is served) and with --no-cache."""
    ok = (0, 1)
    run([*CHECK, *args], cwd=project, env=env, ok=ok)
    cached = run([*CHECK, *args], cwd=project, env=env, ok=ok)
    fresh = run([*CHECK, *args, "--no-cache"], cwd=project, env=env, ok=ok)
    same = (cached.rc, cached.out) == (fresh.rc, fresh.out)
    how = "served" if HIT in cached.err else "rerun"
    return same, f"exit {cached.rc} ({how}) / exit {fresh.rc} (--no-cache)"


@contextmanager
def workspace() -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix="check-migrations-bench-"))
    os.chmod(tmp, 0o755)  # the server user reaches the pipeline's directories below
    try:
        yield tmp
    finally:
        for leftover in Path("/dev/shm").glob(f"{tmp.name[-8:]}-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


def reachable_bindir() -> Path:
    """The bundled binaries, where the server user can run them (as the checker does)."""
    return postgres_reach.reachable_bindir(find_binaries(None), resolve_server_user(None))


Agreement = list[tuple[str, bool, str]]

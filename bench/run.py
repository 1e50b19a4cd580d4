"""Benchmark check-migrations against its peers (issue 12): every row a ratio from one run.

    uv run python bench/run.py              # medians of 7, about 10 minutes on 2 busy cores
    uv run python bench/run.py --quick      # medians of 3
    uv run python bench/run.py --initdb     # also: what initdb's options and copying cost

Each row times the checker and a peer alternately (A B A B ..., so a change in the machine's load
hits both) and prints the ratio of the medians:

- warm, inputs changed: this repository with every cache filled, a model file edited before
  each run (so the verdict cache misses), against a bare ``alembic check`` on a PostgreSQL this
  bench keeps running with a database already at head; and the same with the verdict cache
  off and nothing edited, so the migrated database is reused (a model edit replays the history
  today: the migrated database's key holds every module env.py loaded);
- unchanged inputs: the same check again with nothing changed (the verdict cache answers),
  against the same bare ``alembic check``;
- cold: empty caches, against the scripted pipeline a user would write (``initdb``, ``pg_ctl
  start``, ``alembic upgrade head``, ``alembic check``, ``pg_ctl stop``);
- 800 tables: a project from ``bench/generate.py``, warm with a model edited (and with the
  history reused), against a bare ``alembic check`` on the same project at head;
- the catalog comparison's cost: warm against warm with ``--autogenerate-only`` (skipped with a
  note while the checker has no such flag).

Then every scenario runs both ways, with the caches and with ``--no-cache``: a different exit
code or output fails the bench (exit 1).

Bytecode is written, as on a user's machine (``PYTHONDONTWRITEBYTECODE`` unset, a private
``PYTHONPYCACHEPREFIX`` filled before timing), for the checker and the peers alike. The checker
runs as ``python tools/check_migrations.py`` with the project's interpreter, the peers as the
project's ``alembic`` script; all caches are private to the run and removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import platform
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
from generate import generate  # type: ignore[import-not-found]  # noqa: E402
from psycopg import sql  # noqa: E402

from migration_check.server import (  # noqa: E402
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


def _env(tmp: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CHECK_MIGRATIONS_") and k not in ("DATABASE_URL", "PGHOST")
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    env["CHECK_MIGRATIONS_QUIET"] = "0"
    return env


def _caches(tmp: Path, name: str) -> dict[str, str]:
    """Private cache locations, in the default layout: disk for ~/.cache, tmpfs for runs."""
    shm = Path("/dev/shm")
    fast = shm if shm.is_dir() and os.access(shm, os.W_OK) else tmp
    # Short: the server's socket path (run directory + "/.s.PGSQL.5432") must fit 107 bytes.
    run_root = fast / f"{tmp.name[-8:]}-{zlib.crc32(name.encode()):08x}"
    run_root.mkdir(exist_ok=True)
    return {"XDG_CACHE_HOME": str(tmp / f"xdg-{name}"), "CHECK_MIGRATIONS_RUN_DIR": str(run_root)}


def _drop_caches(tmp: Path, name: str) -> None:
    for path in _caches(tmp, name).values():
        shutil.rmtree(path, ignore_errors=True)


@dataclass
class Outcome:
    seconds: float
    rc: int
    out: str
    err: str


def _run(
    cmd: Sequence[str], *, cwd: Path, env: dict[str, str], ok: Sequence[int] = (0,)
) -> Outcome:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok:
        raise RuntimeError(
            f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        )
    return Outcome(elapsed, proc.returncode, proc.stdout, proc.stderr)


def _alternate(reps: int, a: Callable[[], float], b: Callable[[], float]) -> tuple[float, float]:
    """Medians of ``a`` and ``b`` timed alternately."""
    xs, ys = [], []
    for _ in range(reps):
        xs.append(a())
        ys.append(b())
    return statistics.median(xs), statistics.median(ys)


def _copy_project(dest: Path) -> Path:
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
        _run([ALEMBIC, "upgrade", "head"], cwd=project, env={**env, "DATABASE_URL": url})
        return url

    @staticmethod
    def check(project: Path, env: dict[str, str], url: str) -> float:
        return _run([ALEMBIC, "check"], cwd=project, env={**env, "DATABASE_URL": url}).seconds


def _as_server_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def _scripted_pipeline(project: Path, env: dict[str, str], tmp: Path, bindir: Path) -> float:
    """The commands a user would script, timed end to end as separate processes."""
    workdir = Path(tempfile.mkdtemp(prefix="pipeline-", dir=tmp))
    if os.geteuid() == 0:
        os.chown(workdir, 65534, 65534)
    data = workdir / "data"
    as_user = _as_server_user()
    url = f"postgresql+psycopg://postgres@/postgres?host={workdir}"
    start = time.perf_counter()
    _run(
        [*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"],
        cwd=workdir,
        env=env,
    )
    options = f"-k {workdir} -c listen_addresses=''"
    _run(
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
        _run([ALEMBIC, "upgrade", "head"], cwd=project, env={**env, "DATABASE_URL": url})
        _run([ALEMBIC, "check"], cwd=project, env={**env, "DATABASE_URL": url})
    finally:
        _run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-w", "stop"], cwd=workdir, env=env
        )
        shutil.rmtree(workdir, ignore_errors=True)
    return time.perf_counter() - start


def _touch_model(path: Path, n: list[int]) -> None:
    """Change a model file's content (a comment): the verdict cache must miss, nothing else."""
    n[0] += 1
    with path.open("a") as fh:
        fh.write(f"# bench edit {n[0]}\n")


def _has_flag(flag: str, env: dict[str, str]) -> bool:
    out = _run([*CHECK, "--help"], cwd=REPO, env=env).out
    return flag in out


def _agree(project: Path, env: dict[str, str], args: Sequence[str] = ()) -> tuple[bool, str]:
    """The same scenario with the caches (twice: stores, then is served) and with --no-cache."""
    ok = (0, 1)
    _run([*CHECK, *args], cwd=project, env=env, ok=ok)
    cached = _run([*CHECK, *args], cwd=project, env=env, ok=ok)
    fresh = _run([*CHECK, *args, "--no-cache"], cwd=project, env=env, ok=ok)
    same = (cached.rc, cached.out) == (fresh.rc, fresh.out)
    how = "served" if HIT in cached.err else "rerun"
    return same, f"exit {cached.rc} ({how}) / exit {fresh.rc} (--no-cache)"


@contextmanager
def _workspace() -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix="check-migrations-bench-"))
    os.chmod(tmp, 0o755)  # the server user reaches the pipeline's directories below
    try:
        yield tmp
    finally:
        for leftover in Path("/dev/shm").glob(f"{tmp.name[-8:]}-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


def _reachable_bindir() -> Path:
    """The bundled binaries, where the server user can run them (as the checker does)."""
    server = ThrowawayServer(find_binaries(None), resolve_server_user(None))
    return server._reachable_bindir()


Agreement = list[tuple[str, bool, str]]


def _rows(
    args: argparse.Namespace, tmp: Path, progress: Callable[[str], None]
) -> tuple[list[Row], Agreement]:
    reps = args.reps
    base_env = _env(tmp)
    bindir = _reachable_bindir()
    project = _copy_project(tmp / "repo")
    model = project / "expense_models" / "tags.py"
    edits = [0]
    warm_env = {**base_env, **_caches(tmp, "warm")}
    rows: list[Row] = []
    agreement: Agreement = []
    # Fills the bytecode prefix for both sides and the checker's caches.
    _run(CHECK, cwd=project, env=warm_env)
    with ThrowawayServer(find_binaries(None), resolve_server_user(None)) as server:
        peer = Peer(server)
        url = peer.database_url(project, base_env)
        Peer.check(project, base_env, url)

        def warm_changed() -> float:
            _touch_model(model, edits)
            outcome = _run(CHECK, cwd=project, env=warm_env)
            assert HIT not in outcome.err, "inputs changed, yet the verdict was served"
            return outcome.seconds

        progress("warm, a model edited vs bare alembic check")
        ours, theirs = _alternate(reps, warm_changed, lambda: Peer.check(project, base_env, url))
        rows.append(
            Row(
                "warm check, a model edited (caches filled)",
                ours,
                "bare `alembic check`, server up, database at head",
                theirs,
                0.5,
            )
        )
        # The migrated-database cache keys on every module env.py loaded, the models included,
        # so a model edit replays the history; this row shows the check when it does not.
        no_verdict = {**warm_env, "CHECK_MIGRATIONS_VERDICT_CACHE": "0"}
        _run(CHECK, cwd=project, env=no_verdict)
        ours, theirs = _alternate(
            reps,
            lambda: _run(CHECK, cwd=project, env=no_verdict).seconds,
            lambda: Peer.check(project, base_env, url),
        )
        rows.append(
            Row(
                "  same, history reused (verdict cache off, no edit)",
                ours,
                "bare `alembic check`, server up, database at head",
                theirs,
                0.5,
            )
        )

        progress("unchanged inputs vs bare alembic check")
        _run(CHECK, cwd=project, env=warm_env)  # stores the verdict

        def unchanged() -> float:
            outcome = _run(CHECK, cwd=project, env=warm_env)
            assert HIT in outcome.err, f"unchanged inputs, yet no cached verdict: {outcome.err}"
            return outcome.seconds

        ours, theirs = _alternate(reps, unchanged, lambda: Peer.check(project, base_env, url))
        rows.append(
            Row(
                "unchanged inputs (verdict cache)",
                ours,
                "bare `alembic check`, server up, database at head",
                theirs,
                0.1,
            )
        )

        progress("catalog comparison's cost")
        if _has_flag("--autogenerate-only", warm_env):

            def only() -> float:
                _touch_model(model, edits)
                return _run([*CHECK, "--autogenerate-only"], cwd=project, env=warm_env).seconds

            _run([*CHECK, "--autogenerate-only"], cwd=project, env=warm_env)
            ours, theirs = _alternate(reps, warm_changed, only)
            rows.append(
                Row(
                    "warm check, inputs changed",
                    ours,
                    "the same with --autogenerate-only",
                    theirs,
                    1.15,
                )
            )
        else:
            rows.append(
                Row(
                    "warm check, inputs changed",
                    1.0,
                    "the same with --autogenerate-only",
                    1.0,
                    None,
                    "skipped: this checker has no --autogenerate-only",
                )
            )

        if not args.no_scale:
            progress("800 tables vs bare alembic check on the same project")
            big = generate(tmp / "big", tables=800, revisions=10).parent
            big_env = {**base_env, **_caches(tmp, "big")}
            _run(CHECK, cwd=big, env=big_env)  # fills the caches and the project's bytecode
            big_url = peer.database_url(big, base_env)
            Peer.check(big, base_env, big_url)
            big_edits = [0]

            def big_changed() -> float:
                _touch_model(big / "models.py", big_edits)
                outcome = _run(CHECK, cwd=big, env=big_env)
                assert HIT not in outcome.err
                return outcome.seconds

            ours, theirs = _alternate(
                max(3, reps // 2), big_changed, lambda: Peer.check(big, base_env, big_url)
            )
            rows.append(
                Row(
                    "800 tables, warm, a model edited",
                    ours,
                    "bare `alembic check` on it, at head",
                    theirs,
                    1.0,
                )
            )
            big_no_verdict = {**big_env, "CHECK_MIGRATIONS_VERDICT_CACHE": "0"}
            _run(CHECK, cwd=big, env=big_no_verdict)
            ours, theirs = _alternate(
                max(3, reps // 2),
                lambda: _run(CHECK, cwd=big, env=big_no_verdict).seconds,
                lambda: Peer.check(big, base_env, big_url),
            )
            rows.append(
                Row(
                    "  same, history reused (verdict cache off, no edit)",
                    ours,
                    "bare `alembic check` on it, at head",
                    theirs,
                    1.0,
                )
            )
            agreement.append(("800 tables", *_agree(big, big_env)))

    progress("what a resident worker would save: the worker's library imports")
    imports = "import sqlalchemy, psycopg, alembic.script, alembic.runtime.environment, " + (
        "alembic.autogenerate"
    )
    heavy, bare = _alternate(
        reps,
        lambda: _run([PYTHON, "-c", imports], cwd=project, env=base_env).seconds,
        lambda: _run([PYTHON, "-c", "pass"], cwd=project, env=base_env).seconds,
    )
    rows.append(
        Row(
            "worker start-up: python + SQLAlchemy, psycopg, Alembic imports",
            heavy,
            "python -c pass",
            bare,
            None,
            "",
        )
    )

    progress("cold vs the scripted pipeline")

    def cold() -> float:
        env = {**base_env, **_caches(tmp, "cold")}
        try:
            return _run(CHECK, cwd=project, env=env).seconds
        finally:
            _drop_caches(tmp, "cold")

    ours, theirs = _alternate(
        reps, cold, lambda: _scripted_pipeline(project, base_env, tmp, bindir)
    )
    rows.append(
        Row(
            "cold check (empty caches)",
            ours,
            "scripted: initdb, start, upgrade, check, stop",
            theirs,
            0.35,
        )
    )

    progress("CI with the initialised cluster restored vs the scripted pipeline")
    ci_env = {**base_env, **_caches(tmp, "ci")}
    _run(CHECK, cwd=project, env=ci_env)  # initialises the cluster, as a restored cache holds it

    def ci() -> float:
        # What migrations.yml restores is the cluster alone: no migrated database, no verdict.
        run_root = Path(ci_env["CHECK_MIGRATIONS_RUN_DIR"])
        for path in [*run_root.glob("check-migrations-cache-*"),
                     Path(ci_env["XDG_CACHE_HOME"]) / "check-migrations" / "verdicts"]:  # fmt: skip
            shutil.rmtree(path, ignore_errors=True)
        return _run(CHECK, cwd=project, env=ci_env).seconds

    ours, theirs = _alternate(reps, ci, lambda: _scripted_pipeline(project, base_env, tmp, bindir))
    rows.append(
        Row(
            "CI: initialised cluster restored, nothing else",
            ours,
            "scripted: initdb, start, upgrade, check, stop",
            theirs,
            0.35,
        )
    )

    progress("verdicts with and without the caches")
    agreement.append(("this repository", *_agree(project, warm_env)))
    text = model.read_text()
    drifted = text.replace(
        "name: Mapped[str] = mapped_column(String(50))",
        "name: Mapped[str] = mapped_column(String(60))",
    )
    assert drifted != text
    model.write_text(drifted)
    agreement.append(("a model change without revision", *_agree(project, warm_env)))
    model.write_text(text)
    agreement.append(("back in sync", *_agree(project, warm_env)))
    return rows, agreement


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if n == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _pg_version(bindir: Path) -> str:
    proc = subprocess.run(
        [str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=False
    )
    return proc.stdout.strip() or "PostgreSQL ?"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="medians of 3")
    parser.add_argument("--reps", type=int, help="repetitions of each measurement [7]")
    parser.add_argument("--no-scale", action="store_true", help="skip the 800-table project")
    parser.add_argument("--initdb", action="store_true", help="also time initdb's options")
    args = parser.parse_args(argv)
    args.reps = args.reps or (3 if args.quick else 7)
    began = time.perf_counter()
    load_before = os.getloadavg()

    def progress(message: str) -> None:
        print(f"[{time.perf_counter() - began:5.0f}s] {message}", file=sys.stderr, flush=True)

    with _workspace() as tmp:
        rows, agreement = _rows(args, tmp, progress)
        study = []
        if args.initdb:
            from initdb_costs import measure  # type: ignore[import-not-found]

            progress("initdb options and copying")
            study = measure(tmp, _reachable_bindir(), args.reps, progress)
    load_after = os.getloadavg()

    print(
        f"check-migrations benchmark: {platform.node()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {_pg_version(_reachable_bindir())}"
    )
    print(
        f"medians of {args.reps} (800 tables: {max(3, args.reps // 2)}), checker and peer "
        f"alternating; bytecode written; bench took {time.perf_counter() - began:.0f} s; "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after\n"
    )
    table = [["row", "checker", "peer", "peer time", "ratio", "target", "met?"]]
    for r in rows:
        if r.note:
            table.append([r.name, "", r.peer_name, "", "", "", r.note])
            continue
        target = f"<= {r.target:.2f}" if r.target is not None else ""
        met = "" if r.target is None else ("met" if r.ratio <= r.target else "NOT met")
        table.append(
            [
                r.name,
                f"{r.ours:.2f} s",
                r.peer_name,
                f"{r.peer:.2f} s",
                f"{r.ratio:.2f}",
                target,
                met,
            ]
        )
    print(_table(table))
    print("\nverdicts, with the caches vs --no-cache (exit code and output must be identical):\n")
    print(
        _table(
            [
                ["scenario", "same?", "exit codes"],
                *([name, "yes" if same else "NO", how] for name, same, how in agreement),
            ]
        )
    )
    if study:
        print("\ninitdb options and copying (medians):\n")
        print(_table([["what", "seconds", "vs the checker's initdb"], *study]))
    if not all(same for _, same, _ in agreement):
        print("\nFAILED: a cached verdict differs from the uncached one", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

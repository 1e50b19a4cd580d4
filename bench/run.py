"""Benchmark check-migrations against its targets (issue 5) and print the targets table.

    uv run python bench/run.py            # about 4 minutes on 2 cores (7 when they are busy)
    uv run python bench/run.py --quick    # about 2 minutes: fewer repetitions

What it measures, in one run, as medians over N repetitions (wall clock of whole commands):

- the check of this repository, cold (an empty cache directory: what the first run on a
  machine costs) and warm (caches filled by a previous run);
- the baseline a user would otherwise script, as separate commands against the same bundled
  PostgreSQL binaries: ``initdb``, ``pg_ctl start``, ``alembic upgrade head``, ``alembic
  check``, ``pg_ctl stop`` (and removing the directory); as root the server commands run as
  ``nobody`` through ``setpriv``;
- both of these twice: with the environment as configured here (``PYTHONDONTWRITEBYTECODE=1``
  on this machine: every process recompiles what it imports) and with bytecode caching allowed
  (``PYTHONDONTWRITEBYTECODE`` unset, bytecode warm under a private ``PYTHONPYCACHEPREFIX``);
- scale: synthetic projects from ``bench/generate.py`` (50, 200, 800 tables; 10, 100, 300
  revisions), with the history not cached and cached;
- peak memory (max RSS) of the checker's two processes on this repository.

The checker is run as ``python tools/check_migrations.py`` with the project's interpreter (not
through ``uv run``, whose own start-up is not the checker's cost); the baseline likewise runs the
project's ``alembic`` script directly. Every run uses private cache directories, laid out as
the defaults are (``XDG_CACHE_HOME`` on disk for the initialised cluster and the worker's
bytecode, ``CHECK_MIGRATIONS_RUN_DIR`` on tmpfs for run directories and migrated databases), so
the benchmark neither uses nor disturbs the user's caches.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO / "bench"))

from generate import generate  # type: ignore[import-not-found]  # noqa: E402

from migration_check.server import (  # noqa: E402
    ThrowawayServer,
    find_binaries,
    resolve_server_user,
)

PYTHON = sys.executable
CHECK = [PYTHON, str(REPO / "tools" / "check_migrations.py")]
ALEMBIC = str(Path(PYTHON).parent / "alembic")
SCALE_TABLES = (50, 200, 800)
SCALE_REVISIONS = (10, 100, 300)


@dataclass
class Mode:
    """An environment to measure in: as configured here, or with bytecode caching allowed."""

    name: str
    env: dict[str, str]


def _clean_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CHECK_MIGRATIONS_") and k not in ("DATABASE_URL", "PGHOST")
    }
    env["CHECK_MIGRATIONS_QUIET"] = "1"
    return env


def _modes(tmp: Path) -> list[Mode]:
    configured = _clean_env()
    bytecode = dict(configured)
    bytecode.pop("PYTHONDONTWRITEBYTECODE", None)
    bytecode["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache-prefix")
    flag = os.environ.get("PYTHONDONTWRITEBYTECODE")
    label = f"as configured here (PYTHONDONTWRITEBYTECODE={flag})" if flag else "as configured"
    return [Mode(label, configured), Mode("bytecode cached", bytecode)]


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


def _run(cmd: Sequence[str], *, cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        )
    return elapsed


def _median(samples: list[float]) -> float:
    return statistics.median(samples)


def _check_cold(mode: Mode, tmp: Path, reps: int) -> float:
    samples = []
    for i in range(reps):
        name = f"cold-{mode.name[:3]}-{i}"
        samples.append(_run(CHECK, cwd=REPO, env={**mode.env, **_caches(tmp, name)}))
        _drop_caches(tmp, name)
    return _median(samples)


def _check_warm(mode: Mode, tmp: Path, reps: int) -> float:
    env = {**mode.env, **_caches(tmp, f"warm-{mode.name[:3]}")}
    _run(CHECK, cwd=REPO, env=env)  # fills the caches
    return _median([_run(CHECK, cwd=REPO, env=env) for _ in range(reps)])


def _as_server_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def _baseline_once(mode: Mode, tmp: Path, bindir: Path) -> float:
    """The commands a user would script, timed end to end as separate processes."""
    workdir = Path(tempfile.mkdtemp(prefix="baseline-", dir=tmp))
    if os.geteuid() == 0:
        os.chown(workdir, 65534, 65534)
    data = workdir / "data"
    as_user = _as_server_user()
    url = f"postgresql+psycopg://postgres@/postgres?host={workdir}"
    env = {**mode.env, "DATABASE_URL": url}
    start = time.perf_counter()
    _run([*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"],
         cwd=workdir, env=mode.env)  # fmt: skip
    options = f"-k {workdir} -c listen_addresses=''"
    _run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(workdir / "log"), "-w",
          "-o", options, "start"], cwd=workdir, env=mode.env)  # fmt: skip
    try:
        _run([ALEMBIC, "upgrade", "head"], cwd=REPO, env=env)
        _run([ALEMBIC, "check"], cwd=REPO, env=env)
    finally:
        _run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-w", "stop"],
             cwd=workdir, env=mode.env)  # fmt: skip
        shutil.rmtree(workdir, ignore_errors=True)
    return time.perf_counter() - start


def _baseline(mode: Mode, tmp: Path, bindir: Path, reps: int) -> float:
    if "PYTHONPYCACHEPREFIX" in mode.env:
        _baseline_once(mode, tmp, bindir)  # writes the bytecode it then reads
    return _median([_baseline_once(mode, tmp, bindir) for _ in range(reps)])


def _reachable_bindir() -> Path:
    """The bundled binaries, where the server user can run them (as the checker does)."""
    binaries = find_binaries(None)
    server = ThrowawayServer(binaries, resolve_server_user(None))
    return server._reachable_bindir()


def _scale(
    env: dict[str, str], tmp: Path, reps: int, progress: Callable[[str], None]
) -> dict[tuple[int, int], tuple[float, float]]:
    """(tables, revisions) -> (history not cached, history cached), medians."""
    caches = _caches(tmp, "scale")
    env = {**env, **caches}
    entries = Path(caches["CHECK_MIGRATIONS_RUN_DIR"]) / f"check-migrations-cache-{os.geteuid()}"
    shapes = sorted({(t, 10) for t in SCALE_TABLES} | {(50, r) for r in SCALE_REVISIONS})
    out: dict[tuple[int, int], tuple[float, float]] = {}
    for tables, revisions in shapes:
        progress(f"scale: {tables} tables, {revisions} revisions")
        project = tmp / f"project-{tables}-{revisions}"
        generate(project, tables=tables, revisions=revisions)
        # Not measured: fills the initialised cluster and the bytecode of the project's files.
        _run(CHECK, cwd=project, env=env)
        cold, cached = [], []
        for _ in range(reps):
            for entry in entries.glob("migrated-*"):
                shutil.rmtree(entry)
            cold.append(_run(CHECK, cwd=project, env=env))
            cached.append(_run(CHECK, cwd=project, env=env))
        out[(tables, revisions)] = (_median(cold), _median(cached))
    return out


_MEMORY_PROBE = """
import json, resource, sys
sys.path.insert(0, sys.argv[1])
from migration_check.cli import main
rc = main(sys.argv[2:])
print(json.dumps({
    "rc": rc,
    "self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    "children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
}))
"""


def _memory(env: dict[str, str], tmp: Path) -> tuple[float, float]:
    """Peak RSS in MB of the CLI process and of the worker, on this repository (warm)."""
    env = {**env, **_caches(tmp, "memory")}
    tools = str(REPO / "tools")

    def probe(*args: str) -> dict[str, int]:
        proc = subprocess.run([PYTHON, "-c", _MEMORY_PROBE, tools, *args], cwd=REPO, env=env,
                              capture_output=True, text=True, check=True)  # fmt: skip
        result: dict[str, int] = json.loads(proc.stdout.strip().splitlines()[-1])
        return result

    probe()  # fills the caches
    cli = probe()["self"] / 1024
    # Against a server this process owns, the worker is the probe's only child: its peak is
    # RUSAGE_CHILDREN alone, without the postgres processes'.
    with ThrowawayServer(find_binaries(None), resolve_server_user(None)) as server:
        url = f"postgresql+psycopg://check_migrations@/postgres?host={server.socket_dir}"
        worker = probe("--database-url", url)["children"] / 1024
    return cli, worker


def _verdict(value: float, limit: float) -> str:
    return "met" if value <= limit else "NOT met"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if n == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (about 2 minutes)")
    parser.add_argument("--reps", type=int, help="repetitions of each measurement")
    parser.add_argument("--no-scale", action="store_true", help="skip the synthetic projects")
    args = parser.parse_args(argv)
    reps = args.reps or (2 if args.quick else 5)
    scale_reps = args.reps or (1 if args.quick else 3)
    began = time.perf_counter()

    def progress(message: str) -> None:
        print(f"[{time.perf_counter() - began:5.0f}s] {message}", file=sys.stderr, flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="check-migrations-bench-"))
    os.chmod(tmp, 0o755)  # the server user reaches the baseline's directories below
    try:
        bindir = _reachable_bindir()
        modes = _modes(tmp)
        results: dict[str, dict[str, float]] = {}
        for mode in modes:
            if "PYTHONPYCACHEPREFIX" in mode.env:
                # Let a first run write the bytecode the measured runs read.
                _run(CHECK, cwd=REPO, env={**mode.env, **_caches(tmp, "bytecode-warmup")})
            progress(f"{mode.name}: this repository, cold")
            cold = _check_cold(mode, tmp, reps)
            progress(f"{mode.name}: this repository, warm")
            warm = _check_warm(mode, tmp, reps)
            progress(f"{mode.name}: baseline")
            base = _baseline(mode, tmp, bindir, reps)
            results[mode.name] = {"cold": cold, "warm": warm, "baseline": base}
        scale = {} if args.no_scale else _scale(modes[0].env, tmp, scale_reps, progress)
        progress("memory")
        cli_mb, worker_mb = _memory(modes[0].env, tmp)
    finally:
        for leftover in Path("/dev/shm").glob(f"{tmp.name[-8:]}-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)

    names = [m.name for m in modes]
    print(f"check-migrations benchmark: {platform.node()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, {_pg_version(bindir)}")  # fmt: skip
    print(f"medians of {reps} runs ({scale_reps} for scale); wall clock of whole commands; "
          f"bench took {time.perf_counter() - began:.0f} s\n")  # fmt: skip
    rows = [["this repository", *names, "target"]]
    rows.append(["check, warm (caches filled)",
                 *(f"{results[n]['warm']:.2f} s" for n in names), "<= 0.7 s"])  # fmt: skip
    rows.append(["check, cold (empty cache dir)",
                 *(f"{results[n]['cold']:.2f} s" for n in names), "<= 1.5 s"])  # fmt: skip
    rows.append(["baseline: initdb, pg_ctl start, alembic upgrade head, alembic check, pg_ctl stop",
                 *(f"{results[n]['baseline']:.2f} s" for n in names), ""])  # fmt: skip
    rows.append(["ratio warm / baseline",
                 *(f"{results[n]['warm'] / results[n]['baseline']:.2f}" for n in names),
                 "<= 0.35"])  # fmt: skip
    rows.append(
        [
            "ratio cold / baseline",
            *(f"{results[n]['cold'] / results[n]['baseline']:.2f}" for n in names),
            "",
        ]
    )
    print(_table(rows))
    print()
    for n in names:
        r = results[n]
        print(f"{n}: warm {_verdict(r['warm'], 0.7)}, cold {_verdict(r['cold'], 1.5)}, "
              f"ratio {_verdict(r['warm'] / r['baseline'], 0.35)}")  # fmt: skip
    if scale:
        print(f"\nscale ({names[0]}; 'not cached': the cluster is cached, the history is not)\n")
        targets = {(800, 10): "<= 4 s", (50, 300): "<= 6 s not cached, <= 1 s cached"}
        srows = [["project", "history not cached", "history cached", "target"]]
        for (tables, revisions), (cold, cached) in sorted(scale.items()):
            srows.append([f"{tables} tables, {revisions} revisions", f"{cold:.2f} s",
                          f"{cached:.2f} s", targets.get((tables, revisions), "")])  # fmt: skip
        print(_table(srows))
        print()
        for label, key, values in (("table", 0, SCALE_TABLES), ("revision", 1, SCALE_REVISIONS)):
            shape = [(v, 10) if key == 0 else (50, v) for v in values]
            lo, mid, hi = (scale[s] for s in shape)
            for which, idx in (("not cached", 0), ("cached", 1)):
                slope = (hi[idx] - lo[idx]) / (values[2] - values[0])
                predicted = lo[idx] + slope * (values[1] - values[0])
                print(f"per {label} ({which}): {slope * 1000:.1f} ms; linear prediction for "
                      f"{values[1]} from {values[0]} and {values[2]}: {predicted:.2f} s, "
                      f"measured {mid[idx]:.2f} s")  # fmt: skip
        big = scale[(800, 10)]
        deep = scale[(50, 300)]
        print(f"800 tables: {_verdict(min(big), 4.0)} when cached ({big[1]:.2f} s), "
              f"{_verdict(big[0], 4.0)} when not ({big[0]:.2f} s); 300 revisions: "
              f"{_verdict(deep[0], 6.0)} not cached, {_verdict(deep[1], 1.0)} cached")  # fmt: skip
    print(f"\npeak memory on this repository ({names[0]}): CLI process {cli_mb:.0f} MB, "
          f"worker {worker_mb:.0f} MB (target <= 150 MB each: "
          f"{_verdict(max(cli_mb, worker_mb), 150)})")  # fmt: skip
    return 0


def _pg_version(bindir: Path) -> str:
    proc = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True,
                          text=True, check=False)  # fmt: skip
    return proc.stdout.strip() or "PostgreSQL ?"


if __name__ == "__main__":
    raise SystemExit(main())

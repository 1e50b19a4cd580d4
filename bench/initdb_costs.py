"""What initdb's options and copying the initialised cluster cost (issue 12, the cold path).

Run by ``bench/run.py --initdb``. Each variant is timed ``reps`` times, alternating with the
options the checker uses today, as the server user when run as root.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["measure"]

CHECKER = [
    "-E",
    "UTF8",
    "--locale=C",
    "-U",
    "postgres",
    "-A",
    "trust",
    "-N",
    "--wal-segsize=1",
    "-c",
    "dynamic_shared_memory_type=mmap",
]
VARIANTS: dict[str, list[str]] = {
    "initdb as the checker runs it (-N -A trust --locale=C --wal-segsize=1)": CHECKER,
    "  + --no-instructions": [*CHECKER, "--no-instructions"],
    "  + --no-data-checksums": [*CHECKER, "--no-data-checksums"],
    "  + -c shared_buffers=1MB -c max_connections=10": [
        *CHECKER,
        "-c",
        "shared_buffers=1MB",
        "-c",
        "max_connections=10",
    ],
    "  without -N (fsync every file)": [a for a in CHECKER if a != "-N"],
    "initdb with its defaults (as the scripted pipeline)": ["-U", "postgres", "-A", "trust"],
}


def _as_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def _workdir(tmp: Path) -> Path:
    path = Path(tempfile.mkdtemp(dir=tmp))
    if os.geteuid() == 0:
        os.chown(path, 65534, 65534)
    return path


def _initdb(bindir: Path, tmp: Path, options: list[str]) -> float:
    work = _workdir(tmp)
    start = time.perf_counter()
    subprocess.run(
        [*_as_user(), str(bindir / "initdb"), "-D", str(work / "data"), *options],
        cwd=work,
        check=True,
        capture_output=True,
    )
    elapsed = time.perf_counter() - start
    shutil.rmtree(work)
    return elapsed


def _copy(src: Path, dst_root: Path, flags: list[str]) -> float:
    dst = dst_root / f"copy-{time.monotonic_ns()}"
    start = time.perf_counter()
    subprocess.run(["cp", *flags, str(src), str(dst)], check=True, capture_output=True)
    elapsed = time.perf_counter() - start
    shutil.rmtree(dst)
    return elapsed


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def measure(tmp: Path, bindir: Path, reps: int, progress: Callable[[str], None]) -> list[list[str]]:
    """Rows: what, median seconds, ratio to the checker's own initdb."""
    samples: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(reps):
        for name, options in VARIANTS.items():
            samples[name].append(_initdb(bindir, tmp, options))
    medians = {name: statistics.median(s) for name, s in samples.items()}
    base = medians[next(iter(VARIANTS))]
    rows = [[name, f"{m:.2f}", f"{m / base:.2f}"] for name, m in medians.items()]

    progress("copying the initialised cluster")
    disk = _workdir(tmp)
    subprocess.run(
        [*_as_user(), str(bindir / "initdb"), "-D", str(disk / "data"), *CHECKER],
        cwd=disk,
        check=True,
        capture_output=True,
    )
    shm = Path("/dev/shm")
    fast = Path(tempfile.mkdtemp(dir=shm if shm.is_dir() else tmp))
    try:
        shutil.copytree(disk / "data", fast / "data", symlinks=True)
        size = _size(disk / "data") / 1e6
        copies = {
            f"copy the cluster ({size:.0f} MB), disk to tmpfs, cp -a": (disk / "data", ["-a"]),
            "  tmpfs to tmpfs, cp -a": (fast / "data", ["-a"]),
            "  disk to tmpfs, cp -a --reflink=auto": (disk / "data", ["-a", "--reflink=auto"]),
            "  tmpfs to tmpfs, cp -al (hard links: unsafe, the server writes in place)": (
                fast / "data",
                ["-al"],
            ),
        }
        for name, (src, flags) in copies.items():
            m = statistics.median(_copy(src, fast, flags) for _ in range(reps))
            rows.append([name, f"{m:.3f}", f"{m / base:.2f}"])
    finally:
        shutil.rmtree(fast, ignore_errors=True)
        shutil.rmtree(disk, ignore_errors=True)
    return rows

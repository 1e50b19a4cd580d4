"""Where the checker keeps things: run directories (tmpfs when there is one) and the cache.

The cache directory (``$XDG_CACHE_HOME/check-migrations``, ``~/.cache/check-migrations``, or
``CHECK_MIGRATIONS_CACHE_DIR``) holds the initialised clusters and the worker's bytecode; both
are bounded here (least recently used first) and ``--clear-cache`` empties it all. Removal is
always rename-then-delete, so a concurrent run sees a whole entry or none.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

from migration_check.errors import ServerError
from migration_check.settings import env_number

__all__ = [
    "bound_pycache",
    "cache_base_dir",
    "cache_dir_path",
    "cache_problem",
    "clear_cache",
    "copy_tree",
    "private_dir",
    "prune_clusters",
    "run_base_dir",
    "sweep_dead_staging",
]

_DEFAULT_CLUSTERS = 2
_DEFAULT_PYCACHE_MB = 256
_PYCACHE_STAMP = ".bounded"
_STALE_STAGING = 3600.0


def default_base() -> Path:
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK):
        return shm
    return Path(tempfile.gettempdir())


def run_base_dir() -> Path:
    """The per-user directory that holds each run's private directory."""
    root = Path(os.environ.get("CHECK_MIGRATIONS_RUN_DIR") or default_base())
    base = root / f"check-migrations-{os.geteuid()}"
    # 0711 for root: the server user must pass through to its own 0700 run directory.
    mode = 0o711 if os.geteuid() == 0 else 0o700
    private_dir(base, mode)
    return base


def cache_dir_path() -> Path:
    """The cache directory, whether or not it exists yet."""
    env = os.environ.get("CHECK_MIGRATIONS_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "check-migrations"


def cache_base_dir() -> Path:
    base = cache_dir_path()
    base.mkdir(parents=True, exist_ok=True)
    return base


def cache_problem() -> str | None:
    """Why the cache directory cannot be written (a read-only HOME, say), or None."""
    path = cache_dir_path()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"{exc.filename or path}: {exc.strerror or exc}"
    try:
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return f"{path}: {exc.strerror or exc}"
    return None


def _discard(path: Path, base: Path) -> bool:
    """Rename ``path`` out of sight, then delete it: a concurrent run sees it whole or not."""
    trash = base / f".trash-{path.name}-{secrets.token_hex(4)}"
    try:
        path.rename(trash)
    except OSError:
        return False
    shutil.rmtree(trash, ignore_errors=True)
    return True


def sweep_dead_staging(base: Path) -> list[Path]:
    """Remove what SIGKILLed runs left in ``base``: staging of a dead writer, any trash.

    Every run that uses the cache calls this, so the next run sweeps (stores and prunes alone
    would leave a killed store's copy, a whole data directory, until a later store).
    """
    from migration_check.processes import writer_dead

    removed = []
    for path in base.glob(".tmp-*"):
        if writer_dead(path.name) and _discard(path, base):
            removed.append(path)
    for trash in base.glob(".trash-*"):
        shutil.rmtree(trash, ignore_errors=True)
    return removed


def prune_clusters(base: Path, *, keep: int | None = None) -> list[Path]:
    """Keep the ``keep`` most recently used initialised clusters (one per PostgreSQL build).

    A run marks the cluster it copies (``os.utime``) first, so the one in use is the newest;
    a run whose copy still loses the race falls back to ``initdb``.
    """
    keep = (
        env_number("CHECK_MIGRATIONS_CACHE_CLUSTERS", _DEFAULT_CLUSTERS, minimum=1)
        if keep is None
        else keep
    )
    clusters = []
    for path in base.glob("cluster-*"):
        with contextlib.suppress(OSError):
            clusters.append((path.stat().st_mtime, path))
    clusters.sort(reverse=True)
    doomed = [path for _mtime, path in clusters[keep:]]
    now = time.time()
    for path in base.glob(".tmp-cluster-*"):
        with contextlib.suppress(OSError):
            if now - path.lstat().st_mtime > _STALE_STAGING:  # a run killed mid-store
                doomed.append(path)
    return [path for path in doomed if _discard(path, base)]


def _tree_files(root: Path) -> list[tuple[float, int, Path]]:
    found = []
    for top, _dirs, files in os.walk(root):
        for name in files:
            path = Path(top, name)
            with contextlib.suppress(OSError):
                st = path.lstat()
                found.append((max(st.st_atime, st.st_mtime), st.st_size, path))
    return found


def bound_pycache(root: Path, *, cap_bytes: int | None = None, every: float = 3600.0) -> int:
    """Keep the worker's bytecode cache under its cap, least recently used files first.

    Walks the tree at most once per ``every`` seconds (a stamp file says when). Python writes
    each ``.pyc`` atomically and ignores a failed write, so removing files under a running
    worker costs it a recompilation at worst. Returns the bytes removed.
    """
    if cap_bytes is None:
        cap_bytes = (
            env_number("CHECK_MIGRATIONS_PYCACHE_MB", _DEFAULT_PYCACHE_MB, minimum=1) * 1024 * 1024
        )
    stamp = root / _PYCACHE_STAMP
    with contextlib.suppress(OSError):
        if time.time() - stamp.stat().st_mtime < every:
            return 0
    if not root.is_dir():
        return 0
    files = _tree_files(root)
    total = sum(size for _used, size, _path in files)
    removed = 0
    if total > cap_bytes:
        # Down to three quarters: bounding again on the very next run would be wasted work.
        for _used, size, path in sorted(files):
            if total - removed <= cap_bytes * 3 // 4:
                break
            if path.name == _PYCACHE_STAMP:
                continue
            with contextlib.suppress(OSError):
                path.unlink()
                removed += size
        for top, _dirs, _files in sorted(os.walk(root), reverse=True):
            if Path(top) != root:
                with contextlib.suppress(OSError):
                    os.rmdir(top)  # only the empty ones
    with contextlib.suppress(OSError):
        stamp.touch()
    return removed


def _size(path: Path) -> int:
    if path.is_symlink() or not path.is_dir():
        with contextlib.suppress(OSError):
            return path.lstat().st_size
        return 0
    return sum(size for _used, size, _p in _tree_files(path))


def clear_cache() -> list[tuple[Path, int]]:
    """Remove everything the checker caches; return (path, bytes) for each thing removed.

    The cache directory's contents (initialised clusters, bytecode, migrated databases when
    CHECK_MIGRATIONS_CACHE_DIR holds them), the migrated databases beside the run directories,
    and this user's copies of the server binaries. Run directories of live runs stay.
    """
    removed: list[tuple[Path, int]] = []
    targets: list[tuple[Path, Path]] = []
    cache = cache_dir_path()
    if cache.is_dir():
        targets += [(p, cache) for p in sorted(cache.iterdir())]
    run_root = Path(os.environ.get("CHECK_MIGRATIONS_RUN_DIR") or default_base())
    migrated = run_root / f"check-migrations-cache-{os.geteuid()}"
    if migrated.is_dir() and not migrated.is_symlink() and migrated.stat().st_uid == os.geteuid():
        targets += [(p, migrated) for p in sorted(migrated.iterdir())]
    shared = Path(tempfile.gettempdir()) / "check-migrations-pg"
    if shared.is_dir() and not shared.is_symlink():
        for path in sorted(shared.iterdir()):
            with contextlib.suppress(OSError):
                if path.lstat().st_uid == os.geteuid():
                    targets.append((path, shared))
    for path, base in targets:
        size = _size(path)
        if path.is_dir() and not path.is_symlink():
            if _discard(path, base):
                removed.append((path, size))
        else:
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append((path, size))
    return removed


def private_dir(path: Path, mode: int) -> None:
    """Create ``path`` or accept it only if it is ours and not a link (shared /tmp)."""
    try:
        path.mkdir(mode=mode)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ServerError(
            f"cannot create {path}: {exc.strerror}; set CHECK_MIGRATIONS_RUN_DIR to a writable "
            "directory"
        ) from exc
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        raise ServerError(
            f"{path} exists but is not a directory owned by this user; remove it or set "
            "CHECK_MIGRATIONS_RUN_DIR"
        )
    if stat.S_IMODE(st.st_mode) != mode:
        path.chmod(mode)


def copy_tree(src: Path, dst: Path) -> None:
    # cp -a keeps ownership and modes and is several times faster than shutil for ~1000 files.
    cp = shutil.which("cp")
    if cp:
        proc = subprocess.run([cp, "-a", str(src), str(dst)], capture_output=True, check=False)
        if proc.returncode == 0:
            return
        shutil.rmtree(dst, ignore_errors=True)
        raise ServerError(
            f"cannot copy {src} to {dst}: {proc.stderr.decode(errors='replace').strip()}; "
            "check free space there"
        )
    shutil.copytree(src, dst, symlinks=True)

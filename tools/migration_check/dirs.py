"""Where the checker keeps things: run directories (tmpfs when there is one) and the cache.

The cache directory (``$XDG_CACHE_HOME/check-migrations``, ``~/.cache/check-migrations``, or
``CHECK_MIGRATIONS_CACHE_DIR``) holds the initialised clusters and the worker's bytecode; both
are bounded here (least recently used first) and ``--clear-cache`` empties it all. Removal is
always rename-then-delete, so a concurrent run sees a whole entry or none.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

from migration_check.errors import ServerError

__all__ = ["cache_base_dir", "copy_tree", "private_dir", "run_base_dir"]


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


def cache_base_dir() -> Path:
    env = os.environ.get("CHECK_MIGRATIONS_CACHE_DIR")
    if env:
        base = Path(env)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        base = Path(xdg) / "check-migrations"
    base.mkdir(parents=True, exist_ok=True)
    return base


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

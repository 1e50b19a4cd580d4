"""A second, password-protected PostgreSQL that plays "the developer's real database".

It listens on 127.0.0.1 with scram-sha-256, holds a database with rows, and logs every
connection, so the safety suites can prove the checker wrote nothing to it and never logged in
where it must not.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from migration_check.server import ThrowawayServer, find_binaries, resolve_server_user

from .fault_helpers import free_port, shared_tmp

OWNER = "app_owner"
OWNER_PASSWORD = "Pw-owner-7f3c9e1a"  # distinctive, so a leak is found by a plain search
NOCREATE = "app_reader"
NOCREATE_PASSWORD = "Pw-reader-b64d2e08"
REAL_DB = "production"
PASSWORDS = (OWNER_PASSWORD, NOCREATE_PASSWORD)


@dataclass
class SecondServer:
    """A real server on 127.0.0.1 with password auth, holding a database with data."""

    bindir: Path
    base: Path
    port: int

    @property
    def log(self) -> Path:
        return self.base / "server.log"

    def url(
        self,
        database: str = REAL_DB,
        *,
        user: str = OWNER,
        password: str = OWNER_PASSWORD,
        driver: str = "postgresql+psycopg",
    ) -> str:
        return f"{driver}://{user}:{password}@127.0.0.1:{self.port}/{database}"

    def conninfo(self, database: str = REAL_DB) -> dict[str, object]:
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "user": OWNER,
            "password": OWNER_PASSWORD,
            "dbname": database,
            # Marks this suite's own logins in the server's connection log.
            "application_name": "fixture",
        }

    def databases(self) -> set[str]:
        with psycopg.connect(**self.conninfo("postgres"), autocommit=True) as conn:  # type: ignore[arg-type]
            rows = conn.execute("SELECT datname FROM pg_database").fetchall()
        return {r[0] for r in rows}

    def dump(self, database: str = REAL_DB) -> bytes:
        """A schema-and-data dump: equal dumps mean nothing in the database changed."""
        env = {**os.environ, "PGPASSWORD": OWNER_PASSWORD}
        proc = subprocess.run(
            [
                str(self.bindir / "pg_dump"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                OWNER,
                "--no-password",
                database,
            ],
            capture_output=True,
            env=env,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        # pg_dump 17.6+ brackets the dump with \restrict <random key>: not the database's content.
        return b"\n".join(
            ln
            for ln in proc.stdout.splitlines()
            if not ln.startswith((b"\\restrict", b"\\unrestrict"))
        )

    def authorized_connections(self, database: str = REAL_DB) -> list[str]:
        """log_connections lines for ``database``: who got in, and as which application."""
        text = self.log.read_text(errors="replace")
        return [
            ln
            for ln in text.splitlines()
            if "connection authorized" in ln and f"database={database}" in ln
        ]


@contextlib.contextmanager
def second_server() -> Iterator[SecondServer]:
    """initdb with scram-sha-256 and TCP on a free local port; stopped and removed after."""
    probe = ThrowawayServer(find_binaries(None), resolve_server_user(None))
    # The same copy the checker makes when the server user cannot reach the venv.
    bindir = probe._reachable_bindir()
    user = probe.user
    base = Path(tempfile.mkdtemp(prefix="second-pg-", dir=shared_tmp()))
    os.chmod(base, 0o700)
    as_user: dict[str, object] = {}
    if not user.is_self:
        os.chown(base, user.uid, user.gid)
        as_user = {"user": user.uid, "group": user.gid, "extra_groups": []}
    pwfile = base / "pw"
    pwfile.write_text(OWNER_PASSWORD + "\n")
    if not user.is_self:
        os.chown(pwfile, user.uid, user.gid)
    data = base / "data"
    subprocess.run(
        [
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            OWNER,
            "-A",
            "scram-sha-256",
            f"--pwfile={pwfile}",
            "-E",
            "UTF8",
            "--locale=C",
            "-N",
        ],
        capture_output=True,
        check=True,
        cwd=base,
        **as_user,  # type: ignore[call-overload]
    )
    pwfile.unlink()
    port = free_port()
    log = open(base / "server.log", "wb")  # noqa: SIM115 - handed to the child
    if not user.is_self:
        os.chown(base / "server.log", user.uid, user.gid)
    proc = subprocess.Popen(
        [
            str(bindir / "postgres"),
            "-D",
            str(data),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"port={port}",
            "-c",
            f"unix_socket_directories={base}",
            "-c",
            "fsync=off",
            "-c",
            "log_connections=on",
            "-c",
            "max_connections=60",
            "-c",
            "log_line_prefix=%m [%p] ",
            "-c",
            "dynamic_shared_memory_type=mmap",
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        **as_user,  # type: ignore[call-overload]
    )
    log.close()
    server = SecondServer(bindir, base, port)
    try:
        _wait_ready(proc, data)
        with psycopg.connect(**server.conninfo("postgres"), autocommit=True) as conn:  # type: ignore[arg-type]
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(REAL_DB)))
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN NOCREATEDB PASSWORD {}").format(
                    sql.Identifier(NOCREATE), sql.Literal(NOCREATE_PASSWORD)
                )
            )
        with psycopg.connect(**server.conninfo(), autocommit=True) as conn:  # type: ignore[arg-type]
            conn.execute(
                "CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, "
                "balance numeric(12, 2) NOT NULL)"
            )
            conn.execute(
                "INSERT INTO customers (name, balance) "
                "SELECT 'customer ' || g, g * 1.5 FROM generate_series(1, 500) g"
            )
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGQUIT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(base, ignore_errors=True)


def _wait_ready(proc: subprocess.Popen[bytes], data: Path) -> None:
    # Polls postmaster.pid as the checker does: the server offers no event to wait on.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"second server exited {proc.returncode}")
        with contextlib.suppress(OSError):
            lines = (data / "postmaster.pid").read_text().splitlines()
            if len(lines) >= 8 and lines[7].strip() == "ready":
                return
        time.sleep(0.02)
    raise RuntimeError("second server did not start")

"""A second, password-protected PostgreSQL that plays "the developer's real database".

It listens on 127.0.0.1 with scram-sha-256, holds a database with rows, and logs every
connection, so the safety suites can prove the checker wrote nothing to it and never logged in
where it must not.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from migration_check.postgres.reach import reachable_bindir
from migration_check.postgres.server import find_binaries, resolve_server_user
from tests.helpers.checker import free_port, shared_tmp

OWNER = "app_owner"
OWNER_PASSWORD = "Pw-owner-7f3c9e1a"  # distinctive, so a leak is found by a plain search
NOCREATE = "app_reader"
NOCREATE_PASSWORD = "Pw-reader-b64d2e08"
REAL_DB = "production"
PASSWORDS = (OWNER_PASSWORD, NOCREATE_PASSWORD)
# The name the checker gives a scratch database it creates on a server the user names.
SCRATCH = re.compile(r"^check_migrations_[0-9a-f]{12}$")


def scratch_databases(server: SecondServer) -> set[str]:
    """The checker's databases (and their ``_models`` companions) on ``server``."""
    return {d for d in server.databases() if d.startswith("check_migrations_")}


@dataclass
class SecondServer:
    """A real server on 127.0.0.1 with password auth, holding a database with data."""

    bindir: Path
    base: Path
    port: int
    copy: _LogCopy | None = None

    @property
    def log(self) -> Path:
        return self.base / "server.log"

    def expect(self, token: bytes) -> Mark:
        """The first line with ``token`` the server writes after this call.

        Caught up first: a line written before (an earlier test's) must not set it.
        """
        self.log_text()
        assert self.copy is not None
        return self.copy.expect(token)

    def log_text(self) -> str:
        """The server's log up to now: every line written before this call, none missing.

        A login of our own marks the moment; its line is in the copy once all before it are.
        """
        assert self.copy is not None
        token = secrets.token_hex(6)
        seen = self.copy.expect(token.encode()).event
        conninfo = {**self.conninfo("postgres"), "application_name": f"sync-{token}"}
        with psycopg.connect(**conninfo):  # type: ignore[arg-type]
            pass
        assert seen.wait(timeout=60), "the server's log stopped"
        return "\n".join(
            ln for ln in self.log.read_text(errors="replace").splitlines() if "sync-" not in ln
        )

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
        text = self.log_text()
        return [
            ln
            for ln in text.splitlines()
            if "connection authorized" in ln and f"database={database}" in ln
        ]


@contextlib.contextmanager
def second_server() -> Iterator[SecondServer]:
    """initdb with scram-sha-256 and TCP on a free local port; stopped and removed after."""
    user = resolve_server_user(None)
    # The same copy the checker makes when the server user cannot reach the venv.
    bindir = reachable_bindir(find_binaries(None), user)
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
            # A statement blocked past deadlock_timeout says so in the log: the tests' signal.
            "log_lock_waits=on",
            "-c",
            "max_connections=60",
            "-c",
            "log_line_prefix=%m [%p] ",
            "-c",
            "dynamic_shared_memory_type=mmap",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        **as_user,  # type: ignore[call-overload]
    )
    server = SecondServer(bindir, base, port, _LogCopy(proc, base / "server.log"))
    assert server.copy is not None
    try:
        if not server.copy.ready.wait(timeout=60) or proc.poll() is not None:
            raise RuntimeError(f"second server did not start: {server.log.read_text()}")
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
        server.copy.close()
        shutil.rmtree(base, ignore_errors=True)


class _LogCopy:
    """The server's output copied to its log file; events at its ready line and at marks.

    The server's own word that it accepts connections, read from its output as it is written
    (no file to poll); the copy goes on for the connection log the tests read.
    """

    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.ready = threading.Event()
        self._marks: list[tuple[bytes, Mark]] = []
        self._lock = threading.Lock()
        assert proc.stdout is not None
        self._stream = proc.stdout
        self._log = log
        log.touch()
        self._thread = threading.Thread(target=self._copy, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """After the server exited: the copy has read the end of its output."""
        self._thread.join(timeout=30)
        self._stream.close()

    def expect(self, token: bytes) -> Mark:
        """The first line with ``token`` written from now on (``.event`` is set at it)."""
        mark = Mark()
        with self._lock:
            self._marks.append((token, mark))
        return mark

    def _copy(self) -> None:
        with self._log.open("ab", buffering=0) as out:
            for line in self._stream:
                out.write(line)
                if b"database system is ready to accept connections" in line:
                    self.ready.set()
                with self._lock:
                    for token, mark in self._marks:
                        if token in line and not mark.event.is_set():
                            mark.line = line
                            mark.event.set()
                    self._marks = [(t, m) for t, m in self._marks if not m.event.is_set()]
        self.ready.set()  # it exited: the waiter looks at why
        with self._lock:
            for _token, mark in self._marks:
                mark.event.set()


@dataclass
class Mark:
    event: threading.Event = field(default_factory=threading.Event)
    line: bytes = b""

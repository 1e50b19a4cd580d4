"""Scratch databases on a server the user named (``--database-url``): owned, dropped, swept.

A run on someone's shared server must never leave ``check_migrations_<hex>`` behind, whatever
kills it, and must never drop a database another live run is using. So each run owns its
scratch database through a session-level advisory lock, keyed by the database's random hex and
taken before ``CREATE DATABASE`` on a connection (the "owner") kept open for the run's whole
life. The lock is the run's heartbeat: PostgreSQL releases it when that session ends, however the
process died (SIGKILL included), and ``pg_locks`` shows it to every role on every database.

Every run sweeps first: a ``check_migrations_<hex>*`` database (siblings such as ``..._models``
included) whose lock nobody holds is left over from a dead run. Created under the lock, it
carries a comment saying so and is dropped at once; one without that comment (an older checker,
or a run killed between ``CREATE`` and ``COMMENT``) is marked and dropped by a run that finds it
still unowned ``sweep_age`` seconds later (60 by default): an older checker holds no lock, and
only its age says it is dead. Only databases the role may drop are considered.
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass, field
from typing import Any

from migration_check.errors import ServerError
from migration_check.settings import env_number

__all__ = ["ScratchOwner", "create_scratch", "lock_key", "sweep_age"]

_NAME = re.compile(r"^check_migrations_([0-9a-f]{12})(?:_[a-z0-9_]+)?$")
_CREATED = "check-migrations scratch database, created under lock at "
_UNOWNED = "check-migrations scratch database, found unowned at "
_DEFAULT_AGE = 60.0


def sweep_age() -> float:
    """Seconds an unmarked, unowned scratch database must stay so before a sweep drops it."""
    return env_number("CHECK_MIGRATIONS_SWEEP_AGE", _DEFAULT_AGE, minimum=0.0)


def lock_key(database: str) -> tuple[int, int] | None:
    """The advisory lock (two int4 keys) owning ``database`` and its siblings; None: not ours."""
    match = _NAME.match(database)
    if match is None:
        return None
    hexpart = match.group(1)
    return int(hexpart[:6], 16), int(hexpart[6:], 16)


def _ident(name: str) -> Any:
    from psycopg import sql

    return sql.Identifier(name)


@dataclass
class ScratchOwner:
    """One run's scratch database on the user's server, from lock to drop."""

    admin: dict[str, Any]
    database: str
    connect_timeout: float
    conn: Any = None
    created: bool = False
    existed: bool = True
    swept: list[str] = field(default_factory=list)

    def _connect(self) -> Any:
        import psycopg

        # The URL's own application_name wins: the lock, not the name, marks ownership.
        params = {"application_name": "check-migrations", **self.admin}
        return psycopg.connect(
            **params, autocommit=True, connect_timeout=max(1, int(self.connect_timeout))
        )

    def connect(self) -> None:
        """Open the owner session; raises psycopg's error when the server cannot be reached."""
        import psycopg

        self.conn = self._connect()
        # The owner session idles for the whole run: a server-wide idle_session_timeout would
        # end it and free the lock under a live run (PostgreSQL 14+; older servers lack it).
        with contextlib.suppress(psycopg.Error):
            self.conn.execute("SET idle_session_timeout = 0")

    def create(self) -> None:
        """Lock, sweep the dead runs' leftovers, create, mark; psycopg errors propagate."""
        from psycopg import sql

        key = lock_key(self.database)
        assert key is not None, self.database
        # try: whoever holds this key (another application's lock on the same pair) keeps the
        # database as safe from sweeps as our own hold would; never wait on it.
        self.conn.execute("SELECT pg_try_advisory_lock(%s, %s)", key)
        self.swept = sweep(self.conn, own=self.database)
        # From here an interrupt may leave the database created: drop() looks whatever happens.
        self.created = True
        self.conn.execute(sql.SQL("CREATE DATABASE {}").format(_ident(self.database)))
        self.conn.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                _ident(self.database), sql.Literal(f"{_CREATED}{int(time.time())}")
            )
        )

    def drop(self) -> str | None:
        """Drop the scratch database and its siblings; None when done, else why not.

        ``existed`` tells afterwards whether there was anything to drop. When the owner session
        was cut mid-statement (an interrupt during ``CREATE DATABASE``) or died, its backend may
        still be creating the database: a fresh session waits for the lock, which the old
        backend holds until it has finished, and only then drops.
        """
        import psycopg

        if not self.created:
            self._close()
            return None
        conn = self.conn
        if conn is not None and not conn.closed and conn.info.transaction_status == 0:  # IDLE
            try:
                self._drop_family(conn)
                return None
            except psycopg.Error:
                pass  # the owner session is gone (server restart, idle timeout): a fresh one
            finally:
                self._close()
        self._close()
        try:
            conn = self._connect()
        except psycopg.Error as exc:
            return _first_line(exc)
        try:
            conn.execute(f"SET lock_timeout = '{max(1, int(self.connect_timeout)) * 6}s'")
            conn.execute("SELECT pg_advisory_lock(%s, %s)", lock_key(self.database))
            self._drop_family(conn)
        except psycopg.Error as exc:
            return _first_line(exc)
        finally:
            with contextlib.suppress(Exception):
                conn.close()
        return None

    def _drop_family(self, conn: Any) -> None:
        family = _family(conn, self.database)
        self.existed = self.database in family
        for name in family:
            _drop(conn, name)

    def _close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):
            if conn.info.transaction_status != 0:
                conn.cancel_safe(timeout=2)
        with contextlib.suppress(Exception):
            conn.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _family(conn: Any, database: str) -> list[str]:
    """The database and its siblings (``<name>_<suffix>``), siblings first."""
    rows = conn.execute(
        "SELECT datname FROM pg_database WHERE datname = %s OR starts_with(datname, %s)",
        (database, database + "_"),
    ).fetchall()
    return sorted((str(r[0]) for r in rows), key=lambda n: (n == database, n))


def _drop(conn: Any, name: str) -> None:
    from psycopg import sql

    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(_ident(name)))


def sweep(conn: Any, *, own: str = "", age: float | None = None) -> list[str]:
    """Drop scratch databases whose owner is gone; return their names. Never raises.

    ``conn`` is an autocommit session on the server. A database is dropped only when the lock
    of its hex is free, and it was created under that lock (its comment) or was found unowned
    at least ``age`` seconds ago (marked on first sight).
    """
    import psycopg
    from psycopg import sql

    age = sweep_age() if age is None else age
    dropped: list[str] = []
    try:
        rows = conn.execute(
            "SELECT d.datname, shobj_description(d.oid, 'pg_database') FROM pg_database d "
            "WHERE d.datname LIKE 'check\\_migrations\\_%' AND pg_has_role(d.datdba, 'MEMBER')"
        ).fetchall()
        held = {
            (int(r[0]), int(r[1]))
            for r in conn.execute(
                "SELECT classid::int8, objid::int8 FROM pg_locks "
                "WHERE locktype = 'advisory' AND objsubid = 2 AND granted"
            ).fetchall()
        }
        # The server's clock: runs on several machines share the marks, not their clocks.
        clock = conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()
    except psycopg.Error:
        return dropped
    comments = {str(name): str(comment or "") for name, comment in rows}
    now = float(clock[0]) if clock else time.time()
    for name, comment in sorted(comments.items(), key=lambda nc: (len(nc[0]), nc[0]), reverse=True):
        key = lock_key(name)
        if key is None or key in held or name == own:
            continue
        base = _NAME.match(name)
        assert base is not None
        family_comment = comments.get(f"check_migrations_{base.group(1)}", "") or comment
        stamp = _stamp(family_comment, _UNOWNED) if not family_comment.startswith(_CREATED) else 0
        try:
            if stamp is None:
                conn.execute(
                    sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                        _ident(name), sql.Literal(f"{_UNOWNED}{int(now)}")
                    )
                )
                if age > 0:
                    continue
            elif now - stamp < age:
                continue
            _drop(conn, name)
            dropped.append(name)
        except psycopg.Error:
            continue
    return dropped


def _stamp(comment: str, prefix: str) -> float | None:
    if not comment.startswith(prefix):
        return None
    try:
        return float(comment[len(prefix) :])
    except ValueError:
        return None


def create_scratch(owner: ScratchOwner, *, label: str, connect_timeout: float) -> None:
    """Connect, lock and create the scratch database, naming what went wrong."""
    import psycopg

    try:
        owner.connect()
    except psycopg.Error as exc:
        raise ServerError(
            f"cannot connect to {label}: {_first_line(exc)}"
            + (f" (gave up after {connect_timeout:.0f} s)" if "timeout" in str(exc) else "")
            + "; check the host, port, user and password of --database-url"
        ) from exc
    try:
        owner.create()
    except psycopg.errors.InsufficientPrivilege as exc:
        raise ServerError(
            f"{label}: the role may not create databases ({_first_line(exc)}); grant it "
            "CREATEDB (ALTER ROLE ... CREATEDB) or pass a role that has it"
        ) from exc
    except psycopg.Error as exc:
        raise ServerError(
            f"{label}: cannot create the scratch database {owner.database}: {_first_line(exc)}"
        ) from exc

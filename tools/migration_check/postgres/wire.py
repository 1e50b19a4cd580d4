"""A minimal PostgreSQL client for the checker's own server: simple queries over its Unix socket.

The warm server (postgres/warm.py, run/warm_client.py) is asked a few statements per check from
the CLI process, which may not import psycopg (the import contract), and a ``psql`` per statement
costs a process start each. The throwaway server trusts its one local user, so the protocol needed
is small: a startup message, ``AuthenticationOk``, then simple queries whose rows come back as text.
Anything else (a password request, a protocol this does not speak) is a ``ServerError``.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from pathlib import Path

from migration_check.errors import ServerError

__all__ = ["WireConnection", "quote_ident", "quote_literal"]

_PROTOCOL = 196608  # 3.0


class WireConnection:
    """One session on ``<socket_dir>/.s.PGSQL.<port>``; ``query`` returns rows of text (or None)."""

    def __init__(
        self, socket_dir: str, port: int, user: str, dbname: str, *, timeout: float = 10.0
    ) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        self._buf = b""
        self.parameters: dict[str, str] = {}
        path = str(Path(socket_dir) / f".s.PGSQL.{port}")
        try:
            self._sock.connect(path)
            body = struct.pack("!I", _PROTOCOL)
            for key, value in (("user", user), ("database", dbname)):
                body += key.encode() + b"\0" + value.encode() + b"\0"
            body += b"\0"
            self._sock.sendall(struct.pack("!I", len(body) + 4) + body)
            self._until_ready(startup=True)
        except OSError as exc:
            self.close()
            raise ServerError(f"cannot connect to the warm server at {path}: {exc}") from exc
        except ServerError:
            self.close()
            raise

    @property
    def server_version_num(self) -> int:
        major, _, minor = self.parameters.get("server_version", "0").partition(".")
        digits = "".join(c for c in minor if c.isdigit()) or "0"
        return int(major) * 10000 + int(digits) if major.isdigit() else 0

    def _message(self) -> tuple[bytes, bytes]:
        while len(self._buf) < 5 or len(self._buf) < 1 + struct.unpack("!I", self._buf[1:5])[0]:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ServerError("the warm server closed the connection")
            self._buf += chunk
        length = struct.unpack("!I", self._buf[1:5])[0]
        kind, body = self._buf[:1], self._buf[5 : 1 + length]
        self._buf = self._buf[1 + length :]
        return kind, body

    def _until_ready(self, *, startup: bool = False) -> list[tuple[str | None, ...]]:
        rows: list[tuple[str | None, ...]] = []
        error: str | None = None
        while True:
            kind, body = self._message()
            if kind == b"R" and struct.unpack("!I", body[:4])[0] != 0:
                raise ServerError("the warm server asked for a password (it trusts its user)")
            if kind == b"S":
                key, value, _ = body.split(b"\0", 2)
                self.parameters[key.decode()] = value.decode()
            elif kind == b"D":
                rows.append(_data_row(body))
            elif kind == b"E":
                fields = {
                    part[:1]: part[1:].decode(errors="replace")
                    for part in body.split(b"\0")
                    if part
                }
                error = fields.get(b"M", "unknown error")
                if startup:
                    raise ServerError(f"the warm server refused the connection: {error}")
            elif kind == b"Z":
                if error is not None:
                    raise ServerError(error)
                return rows

    def query(self, sql: str) -> list[tuple[str | None, ...]]:
        """Run ``sql`` (one or more statements) and return the rows of text it produced."""
        body = sql.encode() + b"\0"
        try:
            self._sock.sendall(b"Q" + struct.pack("!I", len(body) + 4) + body)
            return self._until_ready()
        except OSError as exc:
            raise ServerError(f"the warm server did not answer: {exc}") from exc

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.sendall(b"X" + struct.pack("!I", 4))
        with contextlib.suppress(OSError):
            self._sock.close()

    def __enter__(self) -> WireConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _data_row(body: bytes) -> tuple[str | None, ...]:
    count = struct.unpack("!H", body[:2])[0]
    pos = 2
    values: list[str | None] = []
    for _ in range(count):
        length = struct.unpack("!i", body[pos : pos + 4])[0]
        pos += 4
        if length < 0:
            values.append(None)
            continue
        values.append(body[pos : pos + length].decode())
        pos += length
    return tuple(values)


def quote_ident(name: str) -> str:
    """``name`` as an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """``value`` as an SQL string literal (standard_conforming_strings is on since 9.1)."""
    return "'" + value.replace("'", "''") + "'"

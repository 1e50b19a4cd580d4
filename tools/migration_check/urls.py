"""Database URLs without SQLAlchemy: the CLI process must stay light, and passwords hidden."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

__all__ = ["DbUrl", "describe_target", "mask_passwords", "parse_url"]

_PASSWORD_IN_URL = re.compile(r"(?P<pre>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^@\s]*)@")
_PASSWORD_KV = re.compile(r"(?P<pre>\bpassword\s*=\s*)(?P<pw>'[^']*'|\S+)", re.IGNORECASE)


def mask_passwords(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Hide passwords in URLs, ``password=`` conninfo pairs, and any known secret."""
    text = _PASSWORD_IN_URL.sub(r"\g<pre>***@", text)
    text = _PASSWORD_KV.sub(r"\g<pre>***", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


@dataclass(frozen=True)
class DbUrl:
    """The parts of a ``dialect+driver://user:password@host:port/database?query`` URL."""

    drivername: str
    username: str | None
    password: str | None
    host: str | None
    port: int | None
    database: str | None
    query: tuple[tuple[str, str], ...] = ()

    @property
    def driver(self) -> str | None:
        return self.drivername.split("+", 1)[1] if "+" in self.drivername else None

    @property
    def socket_dir(self) -> str | None:
        """The Unix socket directory (``?host=/dir`` or a host that is a path)."""
        for key, value in self.query:
            if key == "host" and value.startswith("/"):
                return value
        if self.host and self.host.startswith("/"):
            return self.host
        return None

    def with_database(self, database: str, *, drivername: str | None = None) -> DbUrl:
        return DbUrl(
            drivername or self.drivername,
            self.username,
            self.password,
            self.host,
            self.port,
            database,
            self.query,
        )

    def render(self, *, hide_password: bool = True) -> str:
        auth = ""
        if self.username is not None:
            auth = quote(self.username, safe="")
            if self.password is not None:
                auth += ":" + ("***" if hide_password else quote(self.password, safe=""))
            auth += "@"
        host = self.host or ""
        if host and ":" in host and not host.startswith("["):
            host = f"[{host}]"
        port = f":{self.port}" if self.port else ""
        query = "&".join(f"{quote(k, safe='')}={quote(v, safe='/')}" for k, v in self.query)
        db = quote(self.database or "", safe="")
        return f"{self.drivername}://{auth}{host}{port}/{db}" + (f"?{query}" if query else "")

    def label(self) -> str:
        """``host:port/database`` for messages; never the password."""
        where = self.socket_dir or self.host or "localhost"
        port = self.port or 5432
        return f"{where}:{port}/{self.database or ''}"

    def conninfo(self) -> dict[str, Any]:
        """Keyword arguments for ``psycopg.connect``."""
        params: dict[str, Any] = {}
        for key, value in self.query:
            params[key] = value
        if self.host:
            params["host"] = self.host
        if self.port:
            params["port"] = self.port
        if self.username:
            params["user"] = self.username
        if self.password:
            params["password"] = self.password
        if self.database:
            params["dbname"] = self.database
        return params


def parse_url(url: str) -> DbUrl:
    """Parse a SQLAlchemy-style URL; ``ValueError`` names what is wrong, never the password."""
    if "://" not in url:
        raise ValueError("not a URL (expected postgresql://user:password@host:port/database)")
    scheme, rest = url.split("://", 1)
    parts = urlsplit("//" + rest)
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"bad port in URL {mask_passwords(url)}") from exc
    database = unquote(parts.path[1:]) if parts.path.startswith("/") else None
    return DbUrl(
        drivername=scheme,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        host=unquote(parts.hostname) if parts.hostname else None,
        port=port,
        database=database or None,
        query=tuple(parse_qsl(parts.query)),
    )


def describe_target(dialect: str, host: str, port: int, database: str, cargs: Any) -> str:
    """Name a refused connection's target for an error line."""
    if dialect != "postgresql":
        target = database or (str(cargs[0]) if cargs else "")
        return f"a {dialect} database {target!r}".strip()
    return f"{dialect} server {host or 'localhost'}:{port} database {database!r}"

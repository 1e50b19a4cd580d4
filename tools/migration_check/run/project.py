"""The project as the CLI process sees it: its alembic.ini, its driver, its revision command."""

from __future__ import annotations

import configparser
import contextlib
import io
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from migration_check.errors import ConfigError
from migration_check.protocol import StartFrom
from migration_check.settings import Settings

if TYPE_CHECKING:  # run/resources.py imports the server module: only when a check runs
    from migration_check.run.resources import RunResources

__all__ = [
    "DEFAULT_DRIVER",
    "display_path",
    "first_line",
    "next_rev_id",
    "preflight",
    "project_drivername",
    "revision_command",
    "start_from_request",
    "sync_driver",
]

Progress = Callable[[str], None]
DEFAULT_DRIVER = "postgresql+psycopg"
_SYNC_FALLBACK = {"asyncpg": "psycopg", "psycopg_async": "psycopg", "pg8000": "pg8000"}


def display_path(path: Path) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel


def revision_command(settings: Settings, ini: Path, revision_ids: Sequence[str] = ()) -> str:
    """The command that writes the missing revision, as the user would type it.

    It is the checker's own writer (``check-migrations revision``): it needs no database of the
    user's. When the project names revisions by hand (every id a zero-padded number, as
    ``0001``, ``0002``), the next id is part of the command, so the convention holds.
    """
    parts = []
    if any((d / "uv.lock").is_file() for d in [ini.parent, *ini.parent.parents][:3]):
        parts.append("uv run")
    parts.append("check-migrations revision")
    if settings.flask_app:
        parts.append(f"--flask-app {settings.flask_app}")
    # --flask-app looks in migrations/ itself, where `flask db init` puts the ini.
    default = "migrations/alembic.ini" if settings.flask_app else "alembic.ini"
    if display_path(ini) != default:
        parts.append(f"-c {display_path(ini)}")
    if settings.name != "alembic":
        parts.append(f"-n {settings.name}")
    parts.append('-m "describe the change"')
    rev_id = next_rev_id(revision_ids)
    if rev_id:
        parts.append(f"--rev-id {rev_id}")
    return " ".join(parts)


def next_rev_id(revision_ids: Sequence[str]) -> str | None:
    """The next id when every existing one is a number: ``0003`` -> ``0004``, ``9`` -> ``10``.

    Zero-padded ids keep their width; ids of mixed widths with padding are no convention.
    """
    ids = list(revision_ids)
    if not ids or not all(i.isdigit() and i.isascii() for i in ids):
        return None
    following = str(max(int(i) for i in ids) + 1)
    if not any(len(i) > 1 and i[0] == "0" for i in ids):
        return following
    width = len(ids[0])
    if any(len(i) != width for i in ids) or len(following) > width:
        return None
    return following.zfill(width)


def preflight(settings: Settings) -> Path:
    """Fail on bad configuration before paying for a server.

    Only what the standard library can tell: the file is there, is a file, is UTF-8 text and
    ini syntax. What it configures (sections, script_location, pyproject.toml's
    ``[tool.alembic]``) is read by Alembic's own ``Config`` in the worker.
    """
    ini = Path(settings.config)
    flask_ini = Path("migrations") / "alembic.ini"
    if settings.flask_app and "config" not in settings.source and not ini.exists():
        # Where `flask db init` puts it (Flask-Migrate's default directory).
        ini = flask_ini
    if ini.name == "pyproject.toml":
        # `alembic -c pyproject.toml` works; here the ini is named and its sibling read.
        raise ConfigError(
            f"{ini}: pass the alembic.ini beside it with --config; the [tool.alembic] of the "
            "pyproject.toml in the same directory is read with it"
        )
    if ini.is_dir():
        inside = ini / "alembic.ini"
        hint = (
            f"pass --config {display_path(inside)}"
            if inside.is_file()
            else "pass --config path/to/alembic.ini"
        )
        raise ConfigError(f"{ini}: is a directory, not an Alembic config file; {hint}")
    if not ini.is_file():
        raise ConfigError(
            f"{ini}: no such file; run from the project root or pass --config path/to/alembic.ini"
        )
    try:
        raw = ini.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{ini}: cannot read it ({exc.strerror})") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{ini}:{line}: not UTF-8 (byte 0x{raw[exc.start]:02x}); Alembic reads "
            "its config as UTF-8: re-save the file as UTF-8"
        ) from exc
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text, source=str(ini))
    except configparser.Error as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"{ini}: not a valid ini file ({first})") from exc
    return ini.resolve()


def project_drivername(settings: Settings, ini: Path) -> str:
    """The dialect+driver the project uses, so env.py gets a URL its engine accepts."""
    candidates: list[str] = []
    if os.environ.get("DATABASE_URL"):
        candidates.append(os.environ["DATABASE_URL"])
    env_file = ini.parent / ".env"
    if env_file.is_file():
        value = _dotenv_database_url(env_file)
        if value:
            candidates.append(value)
    parser = configparser.RawConfigParser()
    with contextlib.suppress(configparser.Error, OSError):
        parser.read(ini, encoding="utf-8")
        if parser.has_option(settings.name, "sqlalchemy.url"):
            candidates.append(parser.get(settings.name, "sqlalchemy.url"))
    for raw in candidates:
        scheme = raw.split("://", 1)[0].strip() if "://" in raw else ""
        if scheme in ("postgresql", "postgres"):
            return "postgresql"
        if scheme.startswith("postgresql+"):
            return scheme
    return DEFAULT_DRIVER


def _dotenv_database_url(env_file: Path) -> str | None:
    """DATABASE_URL from .env; a line python-dotenv cannot parse is an error, not a guess.

    python-dotenv only logs a warning and skips the line, so env.py would run with a setting
    silently missing. The line's text is not shown: it may hold a password.
    """
    from dotenv.parser import parse_stream

    try:
        text = env_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{display_path(env_file)}: cannot read it ({exc})") from exc
    value = None
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            raise ConfigError(
                f"{display_path(env_file)}:{binding.original.line}: python-dotenv cannot parse "
                "this line; write it as KEY=VALUE (quote values with spaces) or comment it out "
                "with #"
            )
        if binding.key == "DATABASE_URL":
            value = binding.value
    return value


def sync_driver(drivername: str) -> str:
    driver = drivername.split("+", 1)[1] if "+" in drivername else "psycopg2"
    if driver in _SYNC_FALLBACK:
        return f"postgresql+{_SYNC_FALLBACK[driver]}"
    return drivername


def first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


def start_from_request(settings: Settings, resources: RunResources) -> StartFrom | None:
    """What the worker needs to load ``--start-from``: the dump and the psql to load it with.

    psql, not a driver: pg_dump writes psql meta-commands (``\\restrict`` since PostgreSQL
    17.6 and 18) and ``COPY ... FROM stdin`` blocks for the alembic_version rows. The psql
    comes from the same binaries as the server (the bundled ones on --database-url).
    """
    if not settings.start_from:
        return None
    dump = Path(settings.start_from)
    if dump.is_dir():
        raise ConfigError(f"--start-from {settings.start_from}: is a directory, not a SQL file")
    if not dump.is_file():
        raise ConfigError(
            f"--start-from {settings.start_from}: no such file; make it with "
            "pg_dump --schema-only --no-owner (see README)"
        )
    psql = resources.binaries.bindir / "psql"
    if not psql.is_file():
        raise ConfigError(
            f"--start-from needs psql, and {psql} does not exist; pass --postgres-bin with "
            "the bin directory of a full PostgreSQL installation"
        )
    return StartFrom(file=str(dump.resolve()), shown=display_path(dump), psql=str(psql))

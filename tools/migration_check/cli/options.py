"""The options every door shares (the check, ``revision``, ``baseline``), and their settings.

One list, so a flag means the same wherever it is given; ``settings_flags`` turns the parsed
values into what ``config.load_settings`` takes (None: not given, so a lower source wins).
"""

from __future__ import annotations

from typing import Any

import click

from migration_check.errors import ConfigError
from migration_check.settings import FormatType, parse_duration

__all__ = ["check_options", "settings_flags"]


def check_options(f: Any) -> Any:
    """The options every door shares (the check and its subcommands): one set, one meaning."""
    for option in reversed(_CHECK_OPTIONS):
        f = option(f)
    return f


_CHECK_OPTIONS = [
    click.option(
        "-c",
        "--config",
        metavar="FILE",
        multiple=True,
        help="Alembic config file; repeat to check several in one run.  [default: alembic.ini]",
    ),
    click.option(
        "-n",
        "--name",
        metavar="SECTION",
        help="Section of the config file to use.  [default: alembic]",
    ),
    click.option(
        "-x",
        "x_args",
        multiple=True,
        metavar="KEY=VALUE",
        help="Passed to env.py as context.get_x_argument(); repeatable.",
    ),
    click.option(
        "--database-url",
        metavar="URL",
        help="Use this existing server: a scratch database is created there and dropped after; "
        "the database named in the URL is never migrated.",
    ),
    click.option(
        "--postgres-bin",
        metavar="DIR",
        help="bin directory of a local PostgreSQL (to match production's major version) "
        "instead of the bundled one.",
    ),
    click.option(
        "--server-user",
        metavar="USER",
        help="When run as root: the existing unprivileged user the server runs as.  "
        "[default: nobody]",
    ),
    click.option(
        "--format",
        "fmt",
        type=click.Choice([f.value for f in FormatType]),
        help="Output format.  [default: text]",
    ),
    click.option(
        "--no-cache",
        is_flag=True,
        default=None,
        help="Neither use nor write the caches (initialised cluster, migrated databases, "
        "worker bytecode).",
    ),
    click.option(
        "--connect-timeout",
        type=click.FloatRange(min=0, min_open=True),
        metavar="SECONDS",
        help="Give up connecting to --database-url after this long.  [default: 5]",
    ),
    click.option(
        "--timeout",
        type=click.FloatRange(min=0, min_open=True),
        metavar="SECONDS",
        help="Give up on the migrations after this long.  [default: 600]",
    ),
    click.option(
        "--lock-timeout",
        type=click.FloatRange(min=0, min_open=True),
        metavar="SECONDS",
        help="A statement waiting longer than this for a lock fails.  [default: 60]",
    ),
    click.option(
        "--start-from",
        metavar="FILE.sql",
        help="Load this pg_dump --schema-only file (with its alembic_version rows) into the "
        "scratch database first, for a history that does not build from empty.",
    ),
    click.option(
        "--flask-app",
        metavar="MODULE:FACTORY",
        help="Run env.py inside this Flask app's context, its database pointed at the scratch "
        "database (Flask-Migrate).",
    ),
    click.option(
        "-v", "--verbose", is_flag=True, default=None, help="Show env.py output and tracebacks."
    ),
    click.option(
        "--autogenerate-only",
        is_flag=True,
        default=None,
        help="Skip the catalog comparison (CHECK constraints, ENUM values, ... that autogenerate "
        "cannot see): the verdict is exactly `alembic check`'s.",
    ),
    click.option(
        "--safety",
        type=click.Choice(["error", "warn", "off"]),
        help="Observe what new revisions do on the server (locks, rewrites, scans): error fails "
        "the check on a hazard to an existing table, warn only reports.  [default: error]",
    ),
    click.option(
        "--keep-warm",
        metavar="DURATION",
        help="Keep a resident worker (SQLAlchemy, Alembic, psycopg imported) for this long after "
        'each check, e.g. "10m"; later checks fork it instead of starting Python.  [default: off]',
    ),
]


def settings_flags(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The options of ``check_options`` as ``load_settings`` takes them (None: not given)."""
    configs = tuple(kwargs["config"] or ())
    return {
        "config": configs[0] if configs else None,
        # One -c replaces a `configs` list from pyproject (settings.py); several form the list.
        "configs": configs if len(configs) > 1 else None,
        "name": kwargs["name"],
        "x_args": tuple(kwargs["x_args"]) or None,
        "database_url": kwargs["database_url"],
        "postgres_bin": kwargs["postgres_bin"],
        "server_user": kwargs["server_user"],
        "format": FormatType(kwargs["fmt"]) if kwargs["fmt"] else None,
        "use_cache": False if kwargs["no_cache"] else None,
        "timeout": kwargs["timeout"],
        "lock_timeout": kwargs["lock_timeout"],
        "connect_timeout": kwargs.get("connect_timeout"),
        "verbose": kwargs["verbose"],
        "autogenerate_only": kwargs["autogenerate_only"],
        "start_from": kwargs["start_from"],
        "flask_app": kwargs["flask_app"],
        "keep_warm": _keep_warm(kwargs.get("keep_warm")),
        "safety": kwargs.get("safety"),
    }


def _keep_warm(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError:
        raise ConfigError(
            f'command line: invalid value {value!r} for --keep-warm (a duration such as "10m", '
            '"90s", "1h", or "off")'
        ) from None

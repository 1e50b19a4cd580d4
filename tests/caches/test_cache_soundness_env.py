"""A cached verdict is never different from ``--no-cache``: environment and arguments (issue 16).

The cases of test_cache_soundness.py (helpers/soundness.py runs the differential) for what reaches
the project's code other than through its files: ``PG*`` variables libpq reads in C, variables
env.py or a revision read through each of ``os.environ``'s doors, ``-x`` arguments, and the
``.env`` files python-dotenv finds beside alembic.ini and above it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.edits import skip_tables
from tests.helpers.soundness import (
    Case,
    Check,
    add_revision,
    add_user_column,
    differential,
    drift_in_notes,
    new_check,
)


def _timezone_setup(c: Check) -> None:
    # The revision stamps the session's TimeZone (libpq sends PGTZ) as the column's default.
    add_revision(
        c.project,
        '    tz = op.get_bind().execute(sa.text("SHOW TimeZone")).scalar()\n'
        '    op.add_column("users", sa.Column("tz", sa.String(64), server_default=tz))\n',
        '    op.drop_column("users", "tz")\n',
    )
    add_user_column(
        c.project, 'tz: Mapped[str | None] = mapped_column(String(64), server_default="UTC")'
    )
    c.env["PGTZ"] = "UTC"


def _skip_from(door: str, expr: str, prelude: str = "", start: str | None = None) -> Case:
    """env.py reads SKIP_TABLES through ``expr``; the notes table drifts, users does not."""

    def setup(c: Check) -> None:
        drift_in_notes(c.project)
        skip_tables(c.project, expr, prelude)
        if start is not None:
            c.env["SKIP_TABLES"] = start

    return Case(
        f"env.py reads a variable through {door}" + (" (set)" if start is None else " (changed)"),
        setup,
        lambda c: c.env.update(SKIP_TABLES="notes"),
    )


def _app_variables_setup(c: Check) -> None:
    drift_in_notes(c.project)
    skip_tables(
        c.project,
        'APP.get("APP_SKIP_TABLES", "")',
        'APP = {k: v for k, v in os.environ.items() if k.startswith("APP_")}\n',
    )


def _upgrade_reads_variable_setup(c: Check) -> None:
    add_revision(
        c.project,
        '    length = int(os.environ.get("NICKNAME_LENGTH", "30"))\n'
        '    op.add_column("users", sa.Column("nickname", sa.String(length), nullable=True))\n',
        '    op.drop_column("users", "nickname")\n',
        "import os\n",
    )
    add_user_column(c.project, "nickname: Mapped[str | None] = mapped_column(String(30))")


def _x_setup(c: Check) -> None:
    drift_in_notes(c.project)
    skip_tables(c.project, "context.get_x_argument(as_dictionary=True).get('skip', '')")
    c.args[:] = ["-x", "skip=notes"]


def _dotenv_setup(c: Check) -> None:
    drift_in_notes(c.project)
    env_py = c.project / "env.py"
    env_py.write_text("from dotenv import load_dotenv\n\nload_dotenv()\n" + env_py.read_text())
    skip_tables(c.project, 'os.environ.get("SKIP_TABLES", "")')


CASES = [
    Case(
        "PGOPTIONS sets search_path",
        lambda c: None,
        lambda c: c.env.update(PGOPTIONS="-c search_path=nowhere"),
    ),
    Case("PGTZ changed", _timezone_setup, lambda c: c.env.update(PGTZ="Europe/Paris")),
    _skip_from("os.getenv", 'os.getenv("SKIP_TABLES", "")'),
    _skip_from("os.environ.get", 'os.environ.get("SKIP_TABLES", "")', start="users"),
    _skip_from("os.environ[...]", 'os.environ["SKIP_TABLES"]', start="users"),
    _skip_from(
        "environ.copy()", 'environ.copy().get("SKIP_TABLES", "")', "from os import environ\n"
    ),
    Case(
        "env.py iterates os.environ and an APP_ variable appears",
        _app_variables_setup,
        lambda c: c.env.update(APP_SKIP_TABLES="notes"),
    ),
    Case(
        "variable upgrade() reads changed",
        _upgrade_reads_variable_setup,
        lambda c: c.env.update(NICKNAME_LENGTH="40"),
    ),
    Case("-x arguments changed", _x_setup, lambda c: c.args.__setitem__(1, "skip=users")),
    Case(
        ".env appears beside alembic.ini",
        _dotenv_setup,
        lambda c: (c.project / ".env").write_text("SKIP_TABLES=notes\n"),
    ),
    Case(
        ".env appears above the project",
        _dotenv_setup,
        # python-dotenv walks up from env.py's directory to the first .env it finds.
        lambda c: (c.project.parent / ".env").write_text("SKIP_TABLES=notes\n"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cached_verdict_equals_no_cache(case: Case, tmp_path: Path, run_root: Path) -> None:
    differential(new_check(tmp_path, run_root), case)

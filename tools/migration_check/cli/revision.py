"""``check-migrations revision -m MSG``: write the missing revision without a database of one's own.

The check already upgrades a throwaway database to head; this door runs the same check and
has the worker write the revision ``alembic revision --autogenerate`` would write against
that database (see worker/revision.py). Nothing to write is not an error: it says so, exit 0.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

import click

from migration_check.cli.common import EXIT_ERROR, EXIT_OK, progress_printer
from migration_check.cli.options import check_options, settings_flags
from migration_check.settings import load_settings

__all__ = ["command"]

# The worker's safe_forms.DEFAULT_LOCK_TIMEOUT; the CLI side never imports the worker.
DEFAULT_LOCK_TIMEOUT = "5s"
_TIME = re.compile(r"^[0-9]+(us|ms|s|min|h|d)?$")


def _lock_timeout(ctx: click.Context, param: click.Parameter, value: str) -> str | None:
    if value in ("off", "0"):
        return None
    if not _TIME.match(value):
        raise click.BadParameter(
            f"{value!r} is not a PostgreSQL time: give e.g. 5s, 500ms or 1min (off: none)"
        )
    return value


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-m", "--message", required=True, help="The revision's message (its slug).")
@click.option("--rev-id", metavar="ID", help="The revision id, instead of a generated one.")
@click.option(
    "--head",
    metavar="REV",
    help="The revision to build on (e.g. expand@head with labelled branches).  [default: head]",
)
@click.option("--splice", is_flag=True, help="Allow --head to name a revision that is not a head.")
@click.option("--branch-label", metavar="LABEL", help="A branch label for the new revision.")
@click.option("--version-path", metavar="DIR", help="The version directory to write into.")
@click.option("--depends-on", metavar="REV", multiple=True, help="A revision this one depends on.")
@click.option(
    "--plain",
    is_flag=True,
    help="Write autogenerate's ops unchanged: no CONCURRENTLY, NOT VALID or lock_timeout.",
)
@click.option(
    "--write-lock-timeout",
    metavar="TIME",
    default=DEFAULT_LOCK_TIMEOUT,
    show_default=True,
    callback=_lock_timeout,
    help="The lock_timeout the revision sets before ops that lock an existing table (off: none).",
)
@check_options
def command(**kwargs: Any) -> int:
    """Write the revision the check says is missing, as `alembic revision --autogenerate` would.

    Upgrades an empty throwaway PostgreSQL database to head (no database of yours is used),
    compares it with the models through env.py, and writes the revision with the project's
    script.py.mako, file_template and post_write_hooks. Changes autogenerate cannot render
    (e.g. a new enum value) are added to upgrade() as code to review. Prints the path written.

    On tables that exist before the revision, it writes the safe form (each said on stderr):
    indexes CONCURRENTLY in autocommit_block(), a UNIQUE constraint through a concurrent
    index, CHECK and FOREIGN KEY constraints NOT VALID with a second revision that validates
    them, and SET lock_timeout before ops that lock the table. --plain writes autogenerate's.

    Exit codes: 0 written or nothing to write, 2 the revision could not be made.
    """
    from migration_check.run.check import run_check

    settings = load_settings(settings_flags(kwargs))
    click.get_current_context().obj["settings"] = settings
    options = {
        "message": kwargs["message"],
        "rev_id": kwargs["rev_id"],
        "head": kwargs["head"],
        "splice": kwargs["splice"],
        "branch_label": kwargs["branch_label"],
        "version_path": kwargs["version_path"],
        "depends_on": list(kwargs["depends_on"]) or None,
        "plain": kwargs["plain"],
        "lock_timeout": kwargs["write_lock_timeout"],
    }
    result = run_check(settings, progress_printer(settings), write_revision=options)
    if result.catalog_skipped:  # then nothing autogenerate misses can be added for review
        print(f"check-migrations: warning: {result.catalog_skipped}", file=sys.stderr)
    heads = [f for f in result.findings if f.kind == "multiple_heads"]
    if heads and not result.written:
        print(
            f"check-migrations: error: {result.config_file}: {heads[0].message}; merge them "
            f"first ({heads[0].hint}) or pass --head",
            file=sys.stderr,
        )
        return EXIT_ERROR
    for note in result.notices:
        print(f"check-migrations: {note}", file=sys.stderr)
    if not result.written:
        print("check-migrations: nothing to write: models and migrations agree.")
        return EXIT_OK
    for path in result.written:
        rel = os.path.relpath(path)
        print(rel if not rel.startswith("..") else path)
    print("check-migrations: review the revision, then commit it with the models.", file=sys.stderr)
    return EXIT_OK

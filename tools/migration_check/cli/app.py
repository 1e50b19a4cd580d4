"""The command line: flags, output streams, exit codes. Nothing else lives here."""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from migration_check import __version__
from migration_check.cli.common import (
    EXIT_ERROR,
    EXIT_FINDINGS,
    EXIT_OK,
    progress_printer,
    warn_unused_rules,
)
from migration_check.cli.options import check_options, settings_flags
from migration_check.errors import CheckError, Interrupted
from migration_check.findings import CheckResult
from migration_check.interrupts import (
    EXIT_SIGINT,
    EXIT_SIGTERM,
    cleanup_notes,
    hold,
    hosted,
    install,
    interrupt_line,
    pending,
)
from migration_check.settings import FormatType, Settings, load_settings
from migration_check.urls import mask_passwords

__all__ = [
    "EXIT_ERROR",
    "EXIT_FINDINGS",
    "EXIT_OK",
    "EXIT_SIGINT",
    "EXIT_SIGTERM",
    "check_options",
    "main",
    "settings_flags",
]

_CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


# Subcommands, imported only when named: "check-migrations NAME ..." runs SUBCOMMANDS[NAME]
# ("module:attribute" of a click command); anything else is the check itself.
SUBCOMMANDS: dict[str, str] = {
    "revision": "migration_check.cli.revision:command",
    "baseline": "migration_check.cli.baseline:command",
}


def _clear_cache(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from migration_check.caches.dirs import clear_cache

    removed = clear_cache()
    for path, size in removed:
        click.echo(f"removed {path} ({size / 1e6:.1f} MB)")
    total = sum(size for _path, size in removed)
    click.echo(
        f"cleared {len(removed)} cache item(s), {total / 1e6:.1f} MB"
        if removed
        else "the cache was empty"
    )
    # Resident workers hold libraries loaded from the bytecode just removed: they go too.
    from migration_check.run.resident_client import stop_all

    if stopped := stop_all():
        click.echo(f"stopped {stopped} resident worker(s)")
    # Warm servers hold templates of the migrated databases just removed: they go too.
    from migration_check.run.warm_keeper import stop_keepers

    if stopped := stop_keepers():
        click.echo(f"stopped {stopped} warm server(s)")
    ctx.exit(EXIT_OK)


def _stop_resident(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from migration_check.run.resident_client import stop_all
    from migration_check.run.warm_keeper import stop_keepers

    click.echo(f"stopped {stop_all()} resident worker(s)")
    click.echo(f"stopped {stop_keepers()} warm server(s)")
    ctx.exit(EXIT_OK)


@click.command(context_settings=_CONTEXT)
@check_options
@click.option(
    "--base-ref",
    metavar="REF",
    help="History checks measure new and edited revisions from the merge base with REF.  "
    "[default: the default branch; the last commit in a commit hook]",
)
@click.option(
    "--clear-cache",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    callback=_clear_cache,
    help="Remove everything the checker caches (clusters, migrated databases, bytecode), "
    "say what, and exit.",
)
@click.option(
    "--stop",
    "--stop-warm",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    callback=_stop_resident,
    help="Stop this user's resident workers and warm servers (--keep-warm), say how many, "
    "and exit.",
)
@click.version_option(__version__, "-V", "--version", prog_name="check-migrations")
def _command(**kwargs: Any) -> int:
    """Fail when SQLAlchemy models changed without a matching Alembic revision.

    Upgrades an empty throwaway PostgreSQL database to head and compares it with the models
    through the project's env.py, as `alembic revision --autogenerate` would.

    Exit codes: 0 models and migrations agree, 1 a revision is missing (findings), 2 the check
    could not be made.

    \b
    Subcommands:
      check-migrations revision -m MSG   write the missing revision (see revision --help)
      check-migrations baseline          record today's findings (see baseline --help)
    """
    settings = load_settings({**settings_flags(kwargs), "base_ref": kwargs["base_ref"]})
    # main() reports errors in the format the merged settings chose (pyproject, env or flag).
    click.get_current_context().obj["settings"] = settings
    return _run(settings)


def _use_color(stream: Any) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _run(settings: Settings) -> int:
    from migration_check.caches.dirs import cache_problem
    from migration_check.run.configs import check_configs
    from migration_check.run.project import display_path

    if settings.use_cache and (why := cache_problem()) is not None:
        print(
            f"check-migrations: warning: cannot write the cache ({why}); running without it "
            "(set CHECK_MIGRATIONS_CACHE_DIR to a writable directory)",
            file=sys.stderr,
        )
        settings = dataclasses.replace(settings, use_cache=False)
    run = check_configs(settings, progress_printer(settings))
    warn_unused_rules(run.unused_rules, settings)
    if len(run.outcomes) > 1:
        from migration_check.cli.sections import write_sections

        write_sections(run, settings, sys.stdout, color=_use_color(sys.stdout))
        for outcome in run.errors:
            assert outcome.error is not None
            if settings.verbose and outcome.error.detail:
                print(mask_passwords(outcome.error.detail.rstrip()), file=sys.stderr)
            message = mask_passwords(outcome.error.message)
            where = display_path(Path(outcome.config))
            print(f"check-migrations: error: {where}: {message}", file=sys.stderr)
        if run.errors:
            return EXIT_ERROR
        return EXIT_FINDINGS if run.has_findings else EXIT_OK
    result = run.outcomes[0].result
    assert result is not None  # one config: its error was raised
    return _write_report(settings, result)


def _write_report(settings: Settings, result: CheckResult) -> int:
    from migration_check.report import formats, github

    if os.environ.get("CHECK_MIGRATIONS_QUIET") != "1":  # quiet as the progress lines are
        for notice in result.notices:
            print(f"check-migrations: {notice}", file=sys.stderr)
    if result.catalog_skipped:
        print(f"check-migrations: warning: {result.catalog_skipped}", file=sys.stderr)
    if settings.format is FormatType.json:
        sys.stdout.write(formats.render_json(result))
    elif settings.format is FormatType.github:
        sys.stdout.write(github.render_github(result))
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with open(summary, "a", encoding="utf-8") as fh:
                fh.write(github.step_summary(result))
    else:
        sys.stdout.write(formats.render_text(result, color=_use_color(sys.stdout)))
    sys.stdout.flush()
    return EXIT_OK if result.in_sync else EXIT_FINDINGS


def _wants(argv: Sequence[str], *flags: str) -> bool:
    return any(a in flags for a in argv)


def _format_from_argv(argv: Sequence[str]) -> str:
    for i, arg in enumerate(argv):
        if arg == "--format" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--format="):
            return arg.split("=", 1)[1]
    return os.environ.get("CHECK_MIGRATIONS_FORMAT", "text")


def _report_error(
    argv: Sequence[str],
    settings: Settings | None,
    kind: str,
    message: str,
    detail: str = "",
) -> None:
    """One line on stderr; with json or github also the envelope or annotation on stdout.

    ``settings`` is None when they could not be loaded (a bad flag or setting): the command
    line and the environment are then the best guide to the format asked for.
    """
    message = mask_passwords(message)
    verbose = settings.verbose if settings else _wants(argv, "-v", "--verbose")
    fmt = settings.format.value if settings else _format_from_argv(argv)
    if verbose and detail:
        print(mask_passwords(detail.rstrip()), file=sys.stderr)
    print(f"check-migrations: error: {message}", file=sys.stderr)
    if fmt == "json":
        from migration_check.report.formats import render_json_error

        sys.stdout.write(render_json_error(kind, message, exit_code=EXIT_ERROR))
    elif fmt == "github":
        from migration_check.report.github import render_github_error, step_summary_error

        sys.stdout.write(render_github_error(message))
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with open(summary, "a", encoding="utf-8") as fh:
                fh.write(step_summary_error(message))


def main(argv: Sequence[str] | None = None, *, program: bool = False) -> int:
    """Run the checker; return its exit code (0 in sync, 1 findings, 2 error, 130/143 signal).

    ``program`` says who owns the process's signals; only ``migration_check.cli.program.run`` (the
    console script's and the shim's entry) passes True. The program ends a run interrupted by
    SIGINT or SIGTERM with its line and 130 / 143, and keeps both signals blocked once the exit
    code is decided: one that arrived before is reported, one after cannot turn a finished run
    into a silent death by signal.

    Any other caller (``main([...])`` from Python, a test) is a host lending its process: the
    interrupted run still tears down and prints its line, then the caller's handlers,
    excepthook and signal mask are back and the signal is delivered again, to them
    (``interrupts.hosted``). The default SIGTERM action ends the process by it, Python's SIGINT
    handler raises ``KeyboardInterrupt`` out of main(); if a handler of the caller's own
    returns, main() returns 130 / 143.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if program:
        return _decided(args, program=True)
    try:
        with hosted():
            rc = _decided(args, program=False)
    except Interrupted as exc:  # the caller's own handler took the signal and returned
        return 128 + exc.signum
    return rc


def _decided(args: list[str], *, program: bool) -> int:
    """``_main``'s exit code, with the signals held: no later one can change or cut it short."""
    held: list[int] | None = None
    try:
        try:
            if program:  # a host's run has the handlers of hosted() already
                install()
            rc = _main(args)
        finally:
            held = hold()
    except KeyboardInterrupt as exc:  # landed outside _main's own handlers
        print(interrupt_line(signal.SIGINT, cleanup_notes(exc)), file=sys.stderr)
        rc = EXIT_SIGINT
    except Interrupted as exc:
        print(interrupt_line(exc.signum, cleanup_notes(exc)), file=sys.stderr)
        rc = 128 + exc.signum
    if held is None:
        held = hold()
    if held and rc not in (EXIT_SIGINT, EXIT_SIGTERM):
        print(interrupt_line(held[0], []), file=sys.stderr)
        rc = 128 + held[0]
    return rc


def subcommand_at(args: list[str]) -> int | None:
    """Where a subcommand's name stands among the arguments, skipping options and their values.

    ``check-migrations -c alembic.ini revision -m x`` names ``revision`` after an option: the
    main command's options are read from click itself, so an option's value (``-c revision``)
    is never taken for the name.
    """
    takes_value = {
        opt
        for param in _command.params
        if isinstance(param, click.Option) and not param.is_flag and not param.count
        for opt in param.opts
    }
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return None
        if not arg.startswith("-") or arg == "-":
            return i if arg in SUBCOMMANDS else None
        if "=" not in arg and arg in takes_value:
            i += 1  # its value
        i += 1
    return None


def _main(args: list[str]) -> int:
    loaded: dict[str, Settings] = {}
    try:
        command, prog, rest = _command, "check-migrations", args
        if (at := subcommand_at(args)) is not None:
            import importlib

            module, _, attr = SUBCOMMANDS[args[at]].partition(":")
            command = getattr(importlib.import_module(module), attr)
            # Options may come before the subcommand's name as after it (git's habit).
            prog, rest = f"check-migrations {args[at]}", args[:at] + args[at + 1 :]
        rc = command.main(args=rest, prog_name=prog, standalone_mode=False, obj=loaded)
        if (signum := pending()) is not None:  # a handler's exception swallowed on its way up
            print(interrupt_line(signum, []), file=sys.stderr)
            return 128 + signum
        return rc if isinstance(rc, int) else EXIT_OK
    except click.exceptions.Exit as exc:  # --help, --version
        return int(exc.exit_code)
    except click.ClickException as exc:
        _report_error(args, loaded.get("settings"), "usage", exc.format_message())
        return EXIT_ERROR
    except click.exceptions.Abort as exc:  # click's name for a KeyboardInterrupt it caught
        print(interrupt_line(signal.SIGINT, cleanup_notes(exc)), file=sys.stderr)
        return EXIT_SIGINT
    except KeyboardInterrupt as exc:
        print(interrupt_line(signal.SIGINT, cleanup_notes(exc)), file=sys.stderr)
        return EXIT_SIGINT
    except Interrupted as exc:
        print(interrupt_line(exc.signum, cleanup_notes(exc)), file=sys.stderr)
        return EXIT_SIGTERM if exc.signum == signal.SIGTERM else 128 + exc.signum
    except Exception as exc:
        if (signum := pending()) is not None:
            # The signal's exception became another error on its way up (an interrupted
            # import's fallback, a library's except clause): the run was still interrupted.
            print(interrupt_line(signum, cleanup_notes(exc)), file=sys.stderr)
            return 128 + signum
        if isinstance(exc, CheckError):
            kind = type(exc).__name__.removesuffix("Error").lower()
            _report_error(args, loaded.get("settings"), kind, exc.message, exc.detail)
            return EXIT_ERROR
        import traceback  # a bug in the checker: still one line and exit 2

        detail = "".join(traceback.format_exception(exc))
        _report_error(
            args,
            loaded.get("settings"),
            "internal",
            f"internal error: {type(exc).__name__}: {exc}",
            detail,
        )
        return EXIT_ERROR


if __name__ == "__main__":
    raise SystemExit(main(program=True))

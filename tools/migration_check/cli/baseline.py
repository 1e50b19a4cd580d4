"""``check-migrations baseline``: write today's findings to the baseline file.

The same check as ``check-migrations`` (same options, ignore rules applied), but instead of
failing on findings it records them, so the check fails on new ones only.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from migration_check.cli.common import EXIT_ERROR, EXIT_OK, progress_printer, warn_unused_rules
from migration_check.cli.options import check_options, settings_flags
from migration_check.run.baseline import (
    baseline_path,
    config_key,
    entry_for,
    load_baseline,
    render_baseline,
)
from migration_check.run.project import display_path
from migration_check.settings import load_settings

__all__ = ["command"]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@check_options
def command(**kwargs: Any) -> int:
    """Record today's findings in the baseline file (check-migrations.baseline.json, or the
    `baseline` setting); later checks report only findings not in it.

    Commit the file. Run it again after fixing findings to drop their entries.
    """
    from migration_check.run.configs import check_configs

    settings = load_settings(settings_flags(kwargs))
    click.get_current_context().obj["settings"] = settings
    path, _required = baseline_path(settings.baseline)
    previous = load_baseline(path, required=False)
    run = check_configs(settings, progress_printer(settings), use_baseline=False)
    warn_unused_rules(run.unused_rules, settings)
    for outcome in run.errors:
        assert outcome.error is not None
        where = display_path(Path(outcome.config))
        print(f"check-migrations: error: {where}: {outcome.error.message}", file=sys.stderr)
    if run.errors:
        print(f"check-migrations: {path} left unchanged: not every config was checked",
              file=sys.stderr)  # fmt: skip
        return EXIT_ERROR
    keys: list[dict[str, str]] = []
    entries: list[dict[str, str]] = []
    for outcome in run.outcomes:
        assert outcome.result is not None
        key = config_key(outcome.config, settings.name, path)
        keys.append(key)
        entries.extend(entry_for(f, key) for f in outcome.result.findings)
    text = render_baseline(previous, keys, entries)
    old = path.read_text(encoding="utf-8") if path.is_file() else None
    if text != old:
        Path(path).write_text(text, encoding="utf-8")
    ignored = sum(len(o.result.ignored) for o in run.outcomes if o.result is not None)
    print(
        f"check-migrations: {path}: {len(entries)} finding(s) recorded"
        + (f", {ignored} ignored by rules" if ignored else "")
        + ("" if text != old else " (unchanged)")
        + "; commit it."
    )
    return EXIT_OK

"""The report of a several-config run: one section per config, in every format.

Each section is what report/formats.py renders for one config; this module only frames them and
adds the run's own summary. With one config the report is report/formats.py's alone, unchanged.
"""

from __future__ import annotations

import json
import os
from typing import Any, TextIO

from migration_check.report import formats, github
from migration_check.run.configs import ConfigOutcome, RunOutcome
from migration_check.run.project import display_path
from migration_check.settings import FormatType, Settings
from migration_check.urls import mask_passwords

__all__ = ["render_json_many", "render_text_many", "write_sections"]


def _label(outcome: ConfigOutcome) -> str:
    from pathlib import Path

    return display_path(Path(outcome.config))


def _error_kind(outcome: ConfigOutcome) -> str:
    return type(outcome.error).__name__.removesuffix("Error").lower()


def _summary(run: RunOutcome) -> str:
    n = len(run.outcomes)
    drift = sum(1 for o in run.outcomes if o.result is not None and o.result.findings)
    clean = sum(1 for o in run.outcomes if o.result is not None and not o.result.findings)
    parts = [f"{drift} with findings"] if drift else []
    if clean:
        parts.append(f"{clean} without findings")
    if run.errors:
        parts.append(f"{len(run.errors)} could not be checked")
    return f"check-migrations: {n} configs: {', '.join(parts)}."


def render_text_many(run: RunOutcome, *, color: bool = False) -> str:
    out: list[str] = []
    for outcome in run.outcomes:
        out.append(f"== {_label(outcome)} ==")
        if outcome.result is not None:
            out.append(formats.render_text(outcome.result, color=color))
        elif outcome.error is not None:
            out.append(f"error: {mask_passwords(outcome.error.message)}\n")
    out.append(_summary(run) + "\n")
    return "\n".join(out)


def render_json_many(run: RunOutcome) -> str:
    """The single-config document's fields, merged, plus ``configs``: one document each."""
    docs: list[dict[str, Any]] = []
    for outcome in run.outcomes:
        if outcome.result is not None:
            doc = json.loads(formats.render_json(outcome.result))
        else:
            assert outcome.error is not None
            doc = json.loads(
                formats.render_json_error(
                    _error_kind(outcome), mask_passwords(outcome.error.message), exit_code=2
                )
            )
            doc["config"] = _label(outcome)
        docs.append(doc)
    verdict, code = (
        ("error", 2) if run.errors else ("drift", 1) if run.has_findings else ("in_sync", 0)
    )
    data = json.loads(formats.render_json_error("none", "none", exit_code=code))
    data.update(
        {
            "verdict": verdict,
            "exit_code": code,
            "config": None,
            "heads": [],
            "revisions_applied": sum(d["revisions_applied"] for d in docs),
            "revision_command": None,
            "findings": _tagged(docs, "findings"),
            "errors": _tagged(docs, "errors"),
            "ignored": sum(d.get("ignored", 0) for d in docs),
            "baselined": _tagged(docs, "baselined"),
            "fixed": [e for d in docs for e in d.get("fixed", [])],
            "configs": docs,
        }
    )
    return json.dumps(data, indent=2) + "\n"


def _tagged(docs: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Every config's items of ``key``, each naming its config."""
    return [{**item, "config": d["config"]} for d in docs for item in d.get(key, [])]


def render_github_many(run: RunOutcome) -> str:
    out: list[str] = []
    for outcome in run.outcomes:
        if outcome.result is not None:
            out.append(github.render_github(outcome.result))
        elif outcome.error is not None:
            out.append(github.render_github_error(mask_passwords(outcome.error.message)))
    out.append(_summary(run) + "\n")
    return "".join(out)


def step_summary_many(run: RunOutcome) -> str:
    out = [f"## {_summary(run).removeprefix('check-migrations: ')}\n"]
    for outcome in run.outcomes:
        out.append(f"\n## `{_label(outcome)}`\n\n")
        if outcome.result is not None:
            out.append(github.step_summary(outcome.result))
        elif outcome.error is not None:
            out.append(github.step_summary_error(mask_passwords(outcome.error.message)))
    return "".join(out)


def write_sections(run: RunOutcome, settings: Settings, stream: TextIO, *, color: bool) -> None:
    """Write the report in the format the settings chose (and the Actions step summary)."""
    if settings.format is FormatType.json:
        stream.write(render_json_many(run))
    elif settings.format is FormatType.github:
        stream.write(render_github_many(run))
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with open(summary, "a", encoding="utf-8") as fh:
                fh.write(step_summary_many(run))
    else:
        stream.write(render_text_many(run, color=color))
    stream.flush()

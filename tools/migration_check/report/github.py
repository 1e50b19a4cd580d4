"""GitHub renderers: workflow-command annotations and the step summary's Markdown.

Split from report/formats.py, which keeps the text and JSON renderers and the wording both share.
"""

from __future__ import annotations

from itertools import groupby

from migration_check.findings import CheckResult, Finding
from migration_check.report.formats import (
    finding_location,
    headline,
    kind_tag,
    located_rows,
    problems,
    render_text,
    revision_instructions,
    set_aside,
    unchecked_line,
    with_set_aside,
)

__all__ = ["render_github", "render_github_error", "step_summary", "step_summary_error"]

_TITLES = {
    "multiple_heads": "Multiple heads",
    "untracked_revision": "Untracked revision",
    "downgrade_failed": "Downgrade fails",
    "downgrade_incomplete": "Downgrade does not undo",
    "reupgrade_failed": "Upgrade after downgrade fails",
    "revision_modified": "Merged revision edited",
    "stale_revision": "Stale revision",
}


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _title(f: Finding) -> str:
    default = "Unsafe migration" if f.source == "safety" else "Missing migration"
    title = _TITLES.get(f.kind, default)
    if f.source == "catalog":
        title += " (write it by hand)"
    return f"{title}: {f.subject}"


def render_github(result: CheckResult) -> str:
    """``::error`` workflow commands at each model line, one collapsible group per file.

    The annotations land on the pull request's diff at the model's line; the groups keep the
    log readable when one file holds many findings.
    """
    if result.in_sync:
        warnings = "".join(line + "\n" for line in _safety_warnings(result))
        return _github_set_aside(result) + warnings + render_text(result)
    rows = located_rows(result)
    out: list[str] = []
    for file, group in groupby(rows, key=lambda r: r[0]):
        out.append(f"::group::{_escape_data(file)}")
        for _, line, f in group:
            message = f"{f.message} {kind_tag(f)}"
            if f.op:
                message += (
                    "\nSafe form:\n" if f.source == "safety" else "\nA revision needs:\n"
                ) + f.op
            if f.hint:
                message += f"\nFix: {f.hint}"
            elif f.op and f.source == "catalog":
                message += (
                    "\nAutogenerate cannot see this change (found in the PostgreSQL catalog); "
                    f"this writes it under a review comment: {result.revision_command}"
                )
            elif f.op:
                message += f"\nGenerate it: {result.revision_command}"
            out.append(
                f"::error file={_escape_property(file)},line={line},"
                f"title={_escape_property(_title(f))}::{_escape_data(message)}"
            )
        out.append("::endgroup::")
    out.extend(_safety_warnings(result))
    if result.unchecked:
        out.append(f"::error title=Models not compared::{_escape_data(unchecked_line(result))}")
    out.append(
        with_set_aside(
            f"check-migrations: {problems(len(result.findings))}: {headline(result.findings)}.",
            result,
        )
    )
    return _github_set_aside(result) + "\n".join(out) + "\n"


def _safety_warnings(result: CheckResult) -> list[str]:
    from migration_check.report.safety import safety_github

    return safety_github(result, _escape_data, _escape_property)


def _github_set_aside(result: CheckResult) -> str:
    """Baselined findings in a collapsed group (no annotations: they are accepted), and a
    notice per fixed baseline entry, so the pull request shows the baseline can shrink."""
    from migration_check.run.baseline import describe

    out: list[str] = []
    if result.baselined:
        out.append(f"::group::Baselined ({len(result.baselined)}, not failing the check)")
        for f in result.baselined:
            file, line = finding_location(f, result.config_file)
            out.append(f"{file}:{line}: {f.subject}: {f.message} [{f.kind}]")
        out.append("::endgroup::")
    for entry in result.fixed:
        out.append(
            "::notice title=Fixed since the baseline::"
            + _escape_data(f"{describe(entry)}: remove it with `check-migrations baseline`")
        )
    return "".join(line + "\n" for line in out)


def render_github_error(message: str) -> str:
    """The one-line error as a workflow command, so the run's page shows why nothing was checked."""
    return f"::error title=check-migrations could not check::{_escape_data(message)}\n"


def step_summary_error(message: str) -> str:
    return f"### check-migrations could not check\n\n{_md(message)}\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def step_summary(result: CheckResult) -> str:
    """Markdown for ``$GITHUB_STEP_SUMMARY``: a table of findings and what to run to fix them."""
    if result.in_sync:
        return (
            "### check-migrations: models and migrations agree\n\n"
            f"{result.revisions_applied} revision(s) applied from `{result.config_file}`.\n"
            + _step_summary_set_aside(result)
        )
    lines = [
        f"### check-migrations: {problems(len(result.findings))}: {headline(result.findings)}",
        "",
        "| Where | What | Kind | Message |",
        "| --- | --- | --- | --- |",
    ]
    rows = located_rows(result)
    for file, line, f in rows:
        kind = f"{f.kind} (catalog)" if f.source == "catalog" else f.kind
        lines.append(f"| `{file}:{line}` | `{_md(f.subject)}` | {kind} | {_md(f.message)} |")
    lines.append("")
    instructions = revision_instructions(result)
    if instructions:
        lines += [instructions[0], ""]
        lines += ["```sh", instructions[1].strip(), "```", ""]
    hints = sorted({f.hint for f in result.findings if f.hint})
    if hints:
        lines += ["Then:" if lines[-2] == "```" else "Fix:", "", "```sh", *hints, "```", ""]
    return "\n".join(lines) + _step_summary_set_aside(result)


def _step_summary_set_aside(result: CheckResult) -> str:
    from migration_check.run.baseline import describe

    lines: list[str] = []
    if result.ignored or result.baselined:
        lines += ["", f"Not failing the check: {set_aside(result)}.", ""]
    if result.baselined:
        lines += ["<details><summary>Baselined findings</summary>", ""]
        lines += [f"- `{_md(f.subject)}`: {_md(f.message)} [{f.kind}]" for f in result.baselined]
        lines += ["", "</details>", ""]
    if result.fixed:
        lines += ["Fixed since the baseline (remove them with `check-migrations baseline`):", ""]
        lines += [f"- `{_md(describe(entry))}`" for entry in result.fixed]
        lines += [""]
    return "\n".join(lines)

"""Renderers: a check's result (or error) as text, JSON or GitHub annotations. No printing here."""

from __future__ import annotations

import json
from collections import defaultdict
from itertools import groupby
from typing import Any

from migration_check import __version__
from migration_check.findings import CheckResult, Finding

__all__ = [
    "JSON_SCHEMA_MINOR",
    "JSON_SCHEMA_VERSION",
    "render_github",
    "render_github_error",
    "render_json",
    "render_json_error",
    "render_text",
    "step_summary",
    "step_summary_error",
]

JSON_SCHEMA_VERSION = 1
# Additive changes within a schema version (docs/json-schema.md): 1 added each finding's
# source, in_database and in_models, and the document's catalog_skipped.
JSON_SCHEMA_MINOR = 1
_DRIFT = "models changed without a matching revision"
# Kinds that are not model drift: the headline must not blame the models for them.
_NOT_DRIFT = {
    "multiple_heads": "the revision history has more than one head",
    "untracked_revision": "revision files are not tracked by git",
    "downgrade_failed": "a new revision's downgrade fails",
    "downgrade_incomplete": "a new revision's downgrade does not undo its upgrade",
    "reupgrade_failed": "a new revision does not upgrade again after its downgrade",
    "revision_modified": "a revision the base already had was edited",
    "stale_revision": "a new revision builds on an old head",
}
_TITLES = {
    "multiple_heads": "Multiple heads",
    "untracked_revision": "Untracked revision",
    "downgrade_failed": "Downgrade fails",
    "downgrade_incomplete": "Downgrade does not undo",
    "reupgrade_failed": "Upgrade after downgrade fails",
    "revision_modified": "Merged revision edited",
    "stale_revision": "Stale revision",
}


def _headline(findings: list[Finding]) -> str:
    """What is wrong, in words that fit every finding present."""
    kinds = {f.kind for f in findings}
    parts = [_DRIFT] if kinds - _NOT_DRIFT.keys() else []
    parts += [text for kind, text in _NOT_DRIFT.items() if kind in kinds]
    return "; ".join(parts)


def _tag(f: Finding) -> str:
    """``[kind]``, or ``[kind, catalog]`` for what only the catalog comparison saw."""
    return f"[{f.kind}, catalog]" if f.source == "catalog" else f"[{f.kind}]"


def _instructions(result: CheckResult) -> list[str]:
    """What to run: the writer writes autogenerate's ops, and the catalog's for review."""
    with_ops = [f for f in result.findings if f.op]
    if not with_ops:
        return []
    if all(f.source == "catalog" for f in with_ops):
        return [
            "Autogenerate cannot write these changes; this writes the ops above into upgrade() "
            "and their reverse into downgrade(), under review comments; review it and commit it "
            "with the models:",
            f"  {result.revision_command}",
        ]
    if any(f.source == "catalog" for f in with_ops):
        return [
            "Generate the missing revision (the ops of the [..., catalog] findings go under a "
            "review comment), review it, and commit it with the models:",
            f"  {result.revision_command}",
        ]
    return [
        "Generate the missing revision, review it, and commit it with the models:",
        f"  {result.revision_command}",
    ]


def _set_aside(result: CheckResult) -> str:
    """``3 baselined, 1 ignored, 1 fixed``: what ignore rules and the baseline set aside."""
    counts = [
        (len(result.baselined), "baselined"),
        (len(result.ignored), "ignored"),
        (len(result.fixed), "fixed"),
    ]
    return ", ".join(f"{n} {what}" for n, what in counts if n)


def _with_set_aside(line: str, result: CheckResult) -> str:
    """The summary line (ending in a period) with the set-aside counts appended."""
    extra = _set_aside(result)
    return f"{line[:-1]}; {extra}." if extra else line


def _fixed_lines(result: CheckResult) -> list[str]:
    from migration_check.baseline import describe

    if not result.fixed:
        return []
    return [
        "Fixed since the baseline (remove them with `check-migrations baseline`):",
        *(f"  {describe(entry)}" for entry in result.fixed),
        "",
    ]


def _problems(n: int) -> str:
    return f"{n} problem{'s' if n != 1 else ''}"


def _location(f: Finding, fallback: str) -> tuple[str, int]:
    if f.location is not None:
        return f.location.file, f.location.line
    return fallback, 1


class _Style:
    def __init__(self, *, color: bool) -> None:
        self.color = color

    def _wrap(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def red(self, text: str) -> str:
        return self._wrap("31", text)

    def green(self, text: str) -> str:
        return self._wrap("32", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)


def render_text(result: CheckResult, *, color: bool = False, show_ops: bool = True) -> str:
    """Human report: findings grouped by table, location first, one summary line last."""
    style = _Style(color=color)
    if result.in_sync:
        head = "head " + result.heads[0] if result.heads else "head base (no revisions)"
        if len(result.heads) > 1:  # labelled branches, checked together
            head = "heads " + ", ".join(sorted(result.heads))
        verdict = "no new differences" if result.baselined else "models and migrations agree"
        summary = _with_set_aside(
            f"check-migrations: {verdict} ({result.revisions_applied} "
            f"revision(s) applied, {head}, {result.config_file}).",
            result,
        )
        return "\n".join([*_fixed_lines(result), style.green(summary)]) + "\n"
    lines: list[str] = []
    by_table: dict[str, list[Finding]] = defaultdict(list)
    for f in result.findings:
        by_table[f.table or ""].append(f)
    for table in sorted(by_table):
        lines.append(style.bold(table or "revision history"))
        for f in by_table[table]:
            file, line = _location(f, result.config_file)
            # An untracked revision's subject is its file: saying it twice helps nobody.
            subject = "" if f.subject == file else f"{style.red(f.subject)}: "
            lines.append(f"  {file}:{line}: {subject}{f.message} {_tag(f)}")
            if show_ops and f.op:
                lines.extend(style.dim("      " + ln) for ln in f.op.splitlines())
            if f.hint:
                lines.append(f"      fix: {f.hint}")
        lines.append("")
    instructions = _instructions(result)
    if instructions:
        lines += [*instructions, ""]
    lines.extend(_fixed_lines(result))
    tables = len([t for t in by_table if t])
    lines.append(
        style.red(
            _with_set_aside(
                f"check-migrations: {_problems(len(result.findings))}"
                + (f" in {tables} table{'s' if tables != 1 else ''}" if tables else "")
                + f": {_headline(result.findings)}.",
                result,
            )
        )
    )
    return "\n".join(lines) + "\n"


def _finding_json(f: Finding, fallback: str) -> dict[str, Any]:
    file, line = _location(f, fallback)
    return {
        "kind": f.kind,
        "table": f.table,
        "column": f.column,
        "object": f.name,
        "subject": f.subject,
        "message": f.message,
        "op": f.op or None,
        "hint": f.hint or None,
        "file": file,
        "line": line,
        "located": f.location is not None,
        "source": f.source,
        "in_database": f.in_database,
        "in_models": f.in_models,
    }


def _envelope(verdict: str, exit_code: int) -> dict[str, Any]:
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "schema_minor": JSON_SCHEMA_MINOR,
        "tool": {"name": "check-migrations", "version": __version__},
        "verdict": verdict,
        "exit_code": exit_code,
    }


def render_json(result: CheckResult) -> str:
    data = _envelope("in_sync" if result.in_sync else "drift", 0 if result.in_sync else 1)
    data.update(
        {
            "config": result.config_file,
            "heads": result.heads,
            "revisions_applied": result.revisions_applied,
            "revision_command": result.revision_command,
            "findings": [_finding_json(f, result.config_file) for f in result.findings],
            "errors": [],
            "catalog_skipped": result.catalog_skipped or None,
            **_set_aside_json(result),
        }
    )
    return json.dumps(data, indent=2) + "\n"


def _set_aside_json(result: CheckResult) -> dict[str, Any]:
    return {
        "ignored": len(result.ignored),
        "baselined": [_finding_json(f, result.config_file) for f in result.baselined],
        "fixed": [dict(entry) for entry in result.fixed],
    }


def render_json_error(kind: str, message: str, *, exit_code: int) -> str:
    data = _envelope("error", exit_code)
    data.update(
        {
            "config": None,
            "heads": [],
            "revisions_applied": 0,
            "revision_command": None,
            "findings": [],
            "errors": [{"kind": kind, "message": message}],
            "catalog_skipped": None,
        }
    )
    return json.dumps(data, indent=2) + "\n"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _title(f: Finding) -> str:
    title = _TITLES.get(f.kind, "Missing migration")
    if f.source == "catalog":
        title += " (write it by hand)"
    return f"{title}: {f.subject}"


def render_github(result: CheckResult) -> str:
    """``::error`` workflow commands at each model line, one collapsible group per file.

    The annotations land on the pull request's diff at the model's line; the groups keep the
    log readable when one file holds many findings.
    """
    if result.in_sync:
        return _github_set_aside(result) + render_text(result)
    rows = sorted(
        ((*_location(f, result.config_file), f) for f in result.findings),
        key=lambda r: (r[0], r[1], r[2].sort_key()),
    )
    out: list[str] = []
    for file, group in groupby(rows, key=lambda r: r[0]):
        out.append(f"::group::{_escape_data(file)}")
        for _, line, f in group:
            message = f"{f.message} {_tag(f)}"
            if f.op:
                message += "\nA revision needs:\n" + f.op
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
    out.append(
        _with_set_aside(
            f"check-migrations: {_problems(len(result.findings))}: {_headline(result.findings)}.",
            result,
        )
    )
    return _github_set_aside(result) + "\n".join(out) + "\n"


def _github_set_aside(result: CheckResult) -> str:
    """Baselined findings in a collapsed group (no annotations: they are accepted), and a
    notice per fixed baseline entry, so the pull request shows the baseline can shrink."""
    from migration_check.baseline import describe

    out: list[str] = []
    if result.baselined:
        out.append(f"::group::Baselined ({len(result.baselined)}, not failing the check)")
        for f in result.baselined:
            file, line = _location(f, result.config_file)
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
        f"### check-migrations: {_problems(len(result.findings))}: {_headline(result.findings)}",
        "",
        "| Where | What | Kind | Message |",
        "| --- | --- | --- | --- |",
    ]
    rows = sorted(
        ((*_location(f, result.config_file), f) for f in result.findings),
        key=lambda r: (r[0], r[1], r[2].sort_key()),
    )
    for file, line, f in rows:
        kind = f"{f.kind} (catalog)" if f.source == "catalog" else f.kind
        lines.append(f"| `{file}:{line}` | `{_md(f.subject)}` | {kind} | {_md(f.message)} |")
    lines.append("")
    instructions = _instructions(result)
    if instructions:
        lines += [instructions[0], ""]
        lines += ["```sh", instructions[1].strip(), "```", ""]
    hints = sorted({f.hint for f in result.findings if f.hint})
    if hints:
        lines += ["Then:" if lines[-2] == "```" else "Fix:", "", "```sh", *hints, "```", ""]
    return "\n".join(lines) + _step_summary_set_aside(result)


def _step_summary_set_aside(result: CheckResult) -> str:
    from migration_check.baseline import describe

    lines: list[str] = []
    if result.ignored or result.baselined:
        lines += ["", f"Not failing the check: {_set_aside(result)}.", ""]
    if result.baselined:
        lines += ["<details><summary>Baselined findings</summary>", ""]
        lines += [f"- `{_md(f.subject)}`: {_md(f.message)} [{f.kind}]" for f in result.baselined]
        lines += ["", "</details>", ""]
    if result.fixed:
        lines += ["Fixed since the baseline (remove them with `check-migrations baseline`):", ""]
        lines += [f"- `{_md(describe(entry))}`" for entry in result.fixed]
        lines += [""]
    return "\n".join(lines)

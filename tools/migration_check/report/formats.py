"""Renderers: a check's result (or error) as text, JSON or GitHub annotations. No printing here."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from migration_check import __version__
from migration_check.findings import CheckResult, Finding

__all__ = [
    "JSON_SCHEMA_MINOR",
    "JSON_SCHEMA_VERSION",
    "finding_location",
    "headline",
    "kind_tag",
    "located_rows",
    "problems",
    "render_json",
    "render_json_error",
    "render_text",
    "revision_instructions",
    "set_aside",
    "unchecked_line",
    "with_set_aside",
]

JSON_SCHEMA_VERSION = 1
# Additive changes within a schema version (docs/json-schema.md): 1 added each finding's
# source, in_database and in_models, and the document's catalog_skipped; 2 the safety
# observation's ``safety`` records and ``warnings`` (report/safety.py); 3 ``unchecked``.
JSON_SCHEMA_MINOR = 3
_DRIFT = "models changed without a matching revision"
_UNSAFE = "a new revision would lock or rewrite existing tables (safety)"
# Kinds that are not model drift: the headline must not blame the models for them.
_NOT_DRIFT = {
    "multiple_heads": "the revision history has more than one head",
    "untracked_revision": "revision files are not tracked by git",
    "downgrade_failed": "a new revision's downgrade fails",
    "downgrade_incomplete": "a new revision's downgrade does not undo its upgrade",
    "reupgrade_failed": "a new revision does not upgrade again after its downgrade",
    "revision_modified": "a revision the base already had was edited",
    "stale_revision": "a new revision builds on an old head",
    "concurrently_in_transaction": "a new revision's upgrade stops at a statement that cannot "
    "run in a transaction (safety)",
}


def headline(findings: list[Finding]) -> str:
    """What is wrong, in words that fit every finding present."""
    kinds = {f.kind for f in findings}
    safety = {f.kind for f in findings if f.source == "safety"} - _NOT_DRIFT.keys()
    parts = [_DRIFT] if kinds - _NOT_DRIFT.keys() - safety else []
    parts += [text for kind, text in _NOT_DRIFT.items() if kind in kinds]
    parts += [_UNSAFE] if safety else []
    return "; ".join(parts)


def kind_tag(f: Finding) -> str:
    """``[kind]``, or ``[kind, catalog]`` for what only the catalog comparison saw."""
    return f"[{f.kind}, catalog]" if f.source == "catalog" else f"[{f.kind}]"


def revision_instructions(result: CheckResult) -> list[str]:
    """What to run: the writer writes autogenerate's ops, and the catalog's for review."""
    with_ops = [f for f in result.findings if f.op and f.source != "safety"]
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


def set_aside(result: CheckResult) -> str:
    """``3 baselined, 1 ignored, 1 fixed``: what ignore rules and the baseline set aside."""
    counts = [
        (len(result.baselined), "baselined"),
        (len(result.ignored), "ignored"),
        (len(result.fixed), "fixed"),
    ]
    return ", ".join(f"{n} {what}" for n, what in counts if n)


def with_set_aside(line: str, result: CheckResult) -> str:
    """The summary line (ending in a period) with the set-aside counts appended."""
    extra = set_aside(result)
    return f"{line[:-1]}; {extra}." if extra else line


def _fixed_lines(result: CheckResult) -> list[str]:
    from migration_check.run.baseline import describe

    if not result.fixed:
        return []
    return [
        "Fixed since the baseline (remove them with `check-migrations baseline`):",
        *(f"  {describe(entry)}" for entry in result.fixed),
        "",
    ]


def problems(n: int) -> str:
    return f"{n} problem{'s' if n != 1 else ''}"


def located_rows(result: CheckResult) -> list[tuple[str, int, Finding]]:
    """(file, line, finding) in the order a reader walks the files."""
    return sorted(
        ((*finding_location(f, result.config_file), f) for f in result.findings),
        key=lambda r: (r[0], r[1], r[2].sort_key()),
    )


def finding_location(f: Finding, fallback: str) -> tuple[str, int]:
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
        summary = with_set_aside(
            f"check-migrations: {verdict} ({result.revisions_applied} "
            f"revision(s) applied, {head}, {result.config_file}).",
            result,
        )
        return "\n".join([*_safety(result), *_fixed_lines(result), style.green(summary)]) + "\n"
    lines: list[str] = []
    by_table: dict[str, list[Finding]] = defaultdict(list)
    for f in result.findings:
        by_table[f.table or ""].append(f)
    for table in sorted(by_table):
        lines.append(style.bold(table or "revision history"))
        for f in by_table[table]:
            file, line = finding_location(f, result.config_file)
            # An untracked revision's subject is its file: saying it twice helps nobody.
            subject = "" if f.subject == file else f"{style.red(f.subject)}: "
            lines.append(f"  {file}:{line}: {subject}{f.message} {kind_tag(f)}")
            if show_ops and f.op:
                lines.extend(style.dim("      " + ln) for ln in f.op.splitlines())
            if f.hint:
                lines.append(f"      fix: {f.hint}")
        lines.append("")
    instructions = revision_instructions(result)
    if instructions:
        lines += [*instructions, ""]
    lines.extend(_safety(result))
    lines.extend(_fixed_lines(result))
    if result.unchecked:
        lines += [style.red(unchecked_line(result)), ""]
    tables = len([t for t in by_table if t])
    lines.append(
        style.red(
            with_set_aside(
                f"check-migrations: {problems(len(result.findings))}"
                + (f" in {tables} table{'s' if tables != 1 else ''}" if tables else "")
                + f": {headline(result.findings)}.",
                result,
            )
        )
    )
    return "\n".join(lines) + "\n"


def unchecked_line(result: CheckResult) -> str:
    """Why the models were not compared: the upgrade stopped (never an agreement)."""
    why = result.unchecked.split("; ", 1)[0]
    return (
        f"Models and migrations were not compared: the history does not reach head ({why}); "
        "fix that revision and check again."
    )


def _safety(result: CheckResult) -> list[str]:
    from migration_check.report.safety import safety_text

    return safety_text(result)


def _finding_json(f: Finding, fallback: str) -> dict[str, Any]:
    file, line = finding_location(f, fallback)
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
            "unchecked": result.unchecked or None,
            **_set_aside_json(result),
            **_safety_json(result),
        }
    )
    return json.dumps(data, indent=2) + "\n"


def _safety_json(result: CheckResult) -> dict[str, Any]:
    from migration_check.report.safety import safety_json

    return safety_json(result, _finding_json)


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

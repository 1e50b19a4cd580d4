"""The safety observation in each format: a table per new revision, warnings, the JSON records.

The worker (worker/safety/results.py) sends one record per new revision with every statement it
observed; findings at ``error`` are ordinary findings, the rest (advice, or ``safety = "warn"``)
arrive as ``result.warnings`` and never fail the check.
"""

from __future__ import annotations

from typing import Any

from migration_check.findings import CheckResult, Finding

__all__ = ["safety_github", "safety_json", "safety_text"]

_WIDTH = 48


def _cut(text: str, width: int = _WIDTH) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _verdict(stmt: dict[str, Any]) -> str:
    kinds = [f["kind"] + (" (allowed)" if f.get("allowed") else "") for f in stmt["findings"]]
    if stmt.get("error"):
        kinds = kinds or ["fails"]
    return ", ".join(kinds) or "ok"


def safety_text(result: CheckResult) -> list[str]:
    """Per new revision: statement / locks / rewrite / scan / verdict; then the warnings."""
    lines: list[str] = []
    for rec in result.safety:
        rows = rec["statements"]
        if not rows:
            continue
        lines.append(f"safety of revision {rec['revision']} ({rec['file']})")
        head = ("line", "statement", "locks (existing tables)", "rewrite", "scan", "verdict")
        table = [head]
        for s in rows:
            locks = ", ".join(f"{t} {m}" for t, m in s["locks"].items())
            if s["autocommit"]:
                locks = "(outside a transaction)"
            table.append((str(s["line"]), _cut(s["statement"]), _cut(locks or "-", 36),
                          ", ".join(s["rewritten"]) or "-", ", ".join(s["scanned"]) or "-",
                          _verdict(s)))  # fmt: skip
        widths = [max(len(r[i]) for r in table) for i in range(len(head))]
        for row in table:
            lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        if rec.get("not_seeded"):
            lines.append(f"  left empty: {', '.join(sorted(rec['not_seeded']))}")
        lines.append("")
    if result.warnings:
        lines.append("safety warnings (not failing the check)")
        for f in result.warnings:
            where = f"{f.location.file}:{f.location.line}: " if f.location else ""
            lines.append(f"  {where}{f.subject}: {f.message} [{f.kind}]")
            lines.extend("      " + ln for ln in f.op.splitlines())
        lines.append("")
    return lines


def safety_json(result: CheckResult, finding_json: Any) -> dict[str, Any]:
    """``safety``: every observed statement per new revision; ``warnings``: findings not failing."""
    return {
        "safety": result.safety,
        "warnings": [finding_json(f, result.config_file) for f in result.warnings],
    }


def safety_github(result: CheckResult, escape: Any, escape_property: Any) -> list[str]:
    """``::warning`` annotations at the revision's line for the findings that do not fail."""
    out = []
    for f in result.warnings:
        file, line = (f.location.file, f.location.line) if f.location else (result.config_file, 1)
        message = f"{f.message} [{f.kind}]" + (f"\nSafe form:\n{f.op}" if f.op else "")
        out.append(
            f"::warning file={escape_property(file)},line={line},"
            f"title={escape_property(_title(f))}::{escape(message)}"
        )
    return out


def _title(f: Finding) -> str:
    return f"Migration safety: {f.kind.replace('_', ' ')} on {f.table or f.name}"

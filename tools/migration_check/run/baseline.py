"""The baseline: today's findings, committed, so a check fails on new drift only.

Each finding is stored as a fingerprint that survives edits elsewhere in the project: the
config it came from, its kind, schema, table, column, object, and its two sides
(``in_database``, ``in_models``). Never a line number. A finding that carries neither side
(autogenerate's today) keeps its message instead, so a difference that changes (a column
baselined at VARCHAR(500) vs VARCHAR(100), now vs VARCHAR(200)) is new, not baselined.

The file holds one entry per line, sorted, so adding or fixing one difference is a one-line
diff in review.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migration_check.errors import ConfigError
from migration_check.findings import Finding

__all__ = [
    "DEFAULT_BASELINE",
    "FORMAT_VERSION",
    "Baseline",
    "Entry",
    "baseline_path",
    "config_key",
    "describe",
    "entry_for",
    "load_baseline",
    "render_baseline",
    "split_findings",
]

DEFAULT_BASELINE = "check-migrations.baseline.json"
FORMAT_VERSION = 1
# The order of an entry's keys in the file, and of the values it is sorted by.
_FIELDS = (
    "config",
    "section",
    "kind",
    "schema",
    "table",
    "column",
    "object",
    "in_database",
    "in_models",
    "message",
)
Entry = dict[str, str]


@dataclass
class Baseline:
    path: Path
    entries: list[Entry] = field(default_factory=list)


def baseline_path(setting: str | None) -> tuple[Path, bool]:
    """(path, required): a baseline named in the settings must exist; the default may not."""
    return Path(setting or DEFAULT_BASELINE), setting is not None


def config_key(config: str, section: str, baseline_file: Path) -> dict[str, str]:
    """The config part of a fingerprint: the ini's path relative to the baseline file.

    Relative to the file, not the working directory, so running from elsewhere with
    ``-c`` still matches.
    """
    rel = os.path.relpath(Path(config).resolve(), baseline_file.resolve().parent)
    key = {"config": Path(rel).as_posix()}
    if section != "alembic":
        key["section"] = section
    return key


def entry_for(finding: Finding, key: dict[str, str]) -> Entry:
    schema, _, table = (finding.table or "").rpartition(".")
    values: dict[str, str | None] = {
        **key,
        "kind": finding.kind,
        "schema": schema or None,
        "table": table or None,
        "column": finding.column,
        "object": finding.name,
        "in_database": finding.in_database,
        "in_models": finding.in_models,
    }
    if finding.in_database is None and finding.in_models is None:
        values["message"] = finding.message
    return {k: v for k, v in values.items() if v is not None}


def _sort_key(entry: Entry) -> tuple[str, ...]:
    return tuple(entry.get(k, "") for k in _FIELDS)


def describe(entry: Entry) -> str:
    """One line for a report: ``schema.table.column (object) [kind]``."""
    where = ".".join(entry[k] for k in ("schema", "table", "column") if k in entry)
    if "object" in entry:
        where = f"{where} ({entry['object']})" if where else entry["object"]
    return f"{where or entry['kind']} [{entry['kind']}]"


def load_baseline(path: Path, *, required: bool) -> Baseline | None:
    """Read and validate the file; None when it is optional and absent."""
    if not path.is_file():
        if required:
            raise ConfigError(
                f"{path}: baseline file not found; create it with `check-migrations baseline` "
                "or fix the baseline setting"
            )
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"{path}: not a readable baseline ({exc}); regenerate it with "
            "`check-migrations baseline`"
        ) from exc
    findings = data.get("findings") if isinstance(data, dict) else None
    if (
        not isinstance(data, dict)
        or data.get("version") != FORMAT_VERSION
        or not isinstance(findings, list)
        or not all(_is_entry(e) for e in findings)
    ):
        raise ConfigError(
            f"{path}: not a check-migrations baseline (version {FORMAT_VERSION} with a "
            "findings list of {kind, config, ...} objects); regenerate it with "
            "`check-migrations baseline`"
        )
    return Baseline(path, list(findings))


def _is_entry(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
        and "kind" in value
        and "config" in value
    )


def _identity(entry: Entry) -> tuple[str | None, ...]:
    return tuple(entry.get(k) for k in _FIELDS)


def split_findings(
    findings: Sequence[Finding], key: dict[str, str], baseline: Baseline
) -> tuple[list[Finding], list[Finding], list[Entry]]:
    """(new, baselined, fixed) for one config's findings.

    A multiset match: two identical findings need two entries, so a second copy of a
    baselined difference is new. ``fixed`` holds this config's entries nothing matched.
    """
    mine = [e for e in baseline.entries if all(e.get(k) == key.get(k) for k in _CONFIG_FIELDS)]
    available = Counter(_identity(e) for e in mine)
    new: list[Finding] = []
    baselined: list[Finding] = []
    for finding in findings:
        for ident in _identities(finding, key):
            if available[ident] > 0:
                available[ident] -= 1
                baselined.append(finding)
                break
        else:
            new.append(finding)
    fixed: list[Entry] = []
    for entry in sorted(mine, key=_sort_key):
        ident = _identity(entry)
        if available[ident] > 0:
            available[ident] -= 1
            fixed.append(entry)
    return new, baselined, fixed


_CONFIG_FIELDS = ("config", "section")
_CONSTRAINT_ADDS = frozenset(["add_unique", "add_check", "add_pk", "add_constraint"])


def _identities(finding: Finding, key: dict[str, str]) -> list[tuple[str | None, ...]]:
    """The finding's identity, then the one an earlier version stored for the same finding.

    A baseline holds autogenerate's message, so rewording a finding would turn every entry of
    it into a new finding and fail the projects that baselined it when they update the checker.
    Until commit 752d555 an added constraint read ``constraint <name> in the models, no
    revision creates it`` (``constraint None`` when unnamed), with no column.
    """
    found = [_identity(entry_for(finding, key))]
    if finding.kind in _CONSTRAINT_ADDS and finding.source == "autogenerate":
        earlier = dataclasses.replace(
            finding,
            column=None,
            message=f"constraint {finding.name} in the models, no revision creates it",
        )
        found.append(_identity(entry_for(earlier, key)))
    return found


def render_baseline(
    previous: Baseline | None, checked: Iterable[dict[str, str]], entries: Iterable[Entry]
) -> str:
    """The file's new text: ``entries`` for the configs ``checked``, others' entries kept.

    Checking one config of a monorepo must not drop the baseline of the others.
    """
    keys = [tuple(k.get(f) for f in _CONFIG_FIELDS) for k in checked]
    kept = [
        e
        for e in (previous.entries if previous else [])
        if tuple(e.get(f) for f in _CONFIG_FIELDS) not in keys
    ]
    rows = sorted([*kept, *entries], key=_sort_key)
    lines = [
        "{",
        f'  "version": {FORMAT_VERSION},',
        '  "comment": "Findings check-migrations accepts (fails on new ones only). '
        'Regenerate with: check-migrations baseline",',
        '  "findings": [' + ("" if rows else "]"),
    ]
    for i, row in enumerate(rows):
        ordered = {k: row[k] for k in _FIELDS if k in row}
        ordered.update({k: v for k, v in sorted(row.items()) if k not in ordered})
        lines.append("    " + json.dumps(ordered) + ("," if i < len(rows) - 1 else ""))
    if rows:
        lines.append("  ]")
    lines.append("}")
    return "\n".join(lines) + "\n"

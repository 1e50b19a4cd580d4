"""Ignore rules: differences a team keeps on purpose, set aside before the baseline and the report.

A rule is ``KIND:GLOB`` (``remove_table:legacy_*``, ``*:audit.*``). ``KIND`` is a finding kind
from ``findings.KINDS``, or a glob over them (``*``, ``remove_*``). ``GLOB`` is matched, with
``fnmatch`` rules and case-sensitively, against the finding's path (``finding_path``):

    [schema.]table[.object]

``schema.`` is there only when the finding's table carries a schema (autogenerate leaves the
default schema out); ``.object`` is the index or constraint name, else the column, else
nothing. A finding without a table (``multiple_heads``, ``untracked_revision``) has the object
alone as its path. ``*`` also matches dots: ``audit.*`` covers every table of schema ``audit``
and everything in them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from migration_check.errors import ConfigError
from migration_check.findings import KINDS, Finding

__all__ = ["IgnoreRule", "apply_ignores", "finding_object", "finding_path", "parse_rules"]


@dataclass(frozen=True)
class IgnoreRule:
    text: str
    kind: str
    glob: str

    def matches(self, finding: Finding) -> bool:
        return fnmatchcase(finding.kind, self.kind) and fnmatchcase(
            finding_path(finding), self.glob
        )


def finding_object(finding: Finding) -> str | None:
    """The object a finding is about inside its table: the named index or constraint, else
    the column."""
    return finding.name or finding.column


def finding_path(finding: Finding) -> str:
    """``[schema.]table[.object]``: what an ignore rule's glob is matched against."""
    parts = [p for p in (finding.table, finding_object(finding)) if p]
    return ".".join(parts)


def parse_rules(texts: Iterable[str], origin: str) -> list[IgnoreRule]:
    """Validate every rule before any server starts; a bad one is a ConfigError naming it."""
    rules = []
    for text in texts:
        kind, sep, glob = text.partition(":")
        kind, glob = kind.strip(), glob.strip()
        if not sep or not kind or not glob:
            raise ConfigError(
                f"{origin}: ignore rule {text!r} is not KIND:GLOB "
                '(e.g. "remove_table:legacy_*" or "*:audit.*")'
            )
        if not any(fnmatchcase(k, kind) for k in KINDS):
            raise ConfigError(
                f"{origin}: ignore rule {text!r}: unknown finding kind {kind!r}; known: "
                + ", ".join(sorted(KINDS))
                + ", or * for any"
            )
        rules.append(IgnoreRule(text, kind, glob))
    return rules


def apply_ignores(
    findings: Sequence[Finding], rules: Sequence[IgnoreRule], used: set[str]
) -> tuple[list[Finding], list[Finding]]:
    """Split findings into (kept, ignored); add the text of each rule that matched to ``used``.

    ``used`` is shared across the configs of one run: a rule is stale only when it matched
    nothing in any of them.
    """
    kept: list[Finding] = []
    ignored: list[Finding] = []
    for finding in findings:
        hits = [rule.text for rule in rules if rule.matches(finding)]
        used.update(hits)
        (ignored if hits else kept).append(finding)
    return kept, ignored

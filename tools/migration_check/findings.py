"""What a check found: plain data, shared by the worker (which builds it) and the reporters."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = ["KINDS", "SOURCES", "CheckResult", "Finding", "Location"]

# Every finding kind, by the opinion that reports it. Ignore rules (``kind:glob``) and the
# baseline validate against this; a module that reports a new kind adds it here.
_AUTOGENERATE_KINDS = [
    "add_table",
    "remove_table",
    "add_column",
    "remove_column",
    "modify_type",
    "modify_nullable",
    "modify_default",
    "modify_comment",
    "modify_table_comment",
    "modify_name",
    "modify_identity",
    "add_index",
    "modify_index",
    "remove_index",
    "add_unique",
    "remove_unique",
    "modify_unique",
    "add_fk",
    "remove_fk",
    "modify_fk",
    "add_pk",
    "add_check",
    "remove_check",
    "add_constraint",
    "remove_constraint",
]
# The second opinion's own kinds (worker/catalog/render.py); where a change means the same as
# one of autogenerate's kinds (add_check, modify_default, modify_fk, ...) the catalog reuses that
# kind, so both opinions report it under one name (a finding's ``source`` tells them apart).
_CATALOG_KINDS = [
    "modify_check",
    "modify_primary_key",
    "remove_pk",
    "add_exclude",
    "remove_exclude",
    "modify_exclude",
    "rename_constraint",
    "rename_index",
    "add_enum_value",
    "remove_enum_value",
    "modify_enum",
    "modify_sequence",
    "modify_computed",
    "modify_collation",
]
# Kinds of the ops Alembic extensions add to autogenerate (worker/autogenerate/plugin_ops.py): ENUM
# types and their labels (alembic-postgresql-enum, named as the catalog names them), alembic-utils'
# entities (views, functions, triggers, ...), and ``plugin_op`` for an op no describer knows.
_PLUGIN_KINDS = ["add_enum", "remove_enum", "add_entity", "modify_entity", "remove_entity",
                 "plugin_op"]  # fmt: skip
_SAFETY_KINDS = ["table_rewrite", "create_index", "drop_index", "constraint_validated",
                 "set_not_null", "not_null_without_default", "unique_constraint",
                 "validate_same_transaction", "lock_held", "lock_timeout", "drop_column",
                 "rename_column", "drop_table", "rename_table", "fk_without_index",
                 "invalid_index", "concurrently_in_transaction", "fails_with_rows"]  # fmt: skip
KINDS: dict[str, str] = {
    **dict.fromkeys(_AUTOGENERATE_KINDS, "autogenerate"),
    **dict.fromkeys(_PLUGIN_KINDS, "autogenerate"),
    **dict.fromkeys(_CATALOG_KINDS, "catalog"),
    "multiple_heads": "history",
    "downgrade_failed": "history",
    "downgrade_incomplete": "history",
    "reupgrade_failed": "history",
    "revision_modified": "history",
    "stale_revision": "history",
    "untracked_revision": "git",
    # The safety observation's (worker/safety/hazards.py): what a new revision does on a server.
    **dict.fromkeys(_SAFETY_KINDS, "safety"),
}
# Where a finding comes from: autogenerate (Alembic's own comparison), catalog (the second
# opinion from the PostgreSQL catalog), history (the revision graph), git (the work tree), safety
# (what the new revisions were observed to do on a server: locks, rewrites, scans).
SOURCES = ("autogenerate", "catalog", "history", "git", "safety")


@dataclass(frozen=True, order=True)
class Location:
    """Where a finding should be fixed: usually the model's source line."""

    file: str
    line: int


@dataclass(frozen=True)
class Finding:
    """One thing the revisions lack compared with the models.

    ``kind`` follows Alembic's diff vocabulary (``add_column``, ``remove_index``, ...) plus the
    checker's own (``multiple_heads``, ``untracked_revision``). ``op`` is the Alembic op code a
    revision would need, as autogenerate renders it; empty when there is none.
    """

    kind: str
    table: str | None
    message: str
    column: str | None = None
    name: str | None = None
    op: str = ""
    location: Location | None = None
    hint: str = ""
    source: str = "autogenerate"
    # Both sides as PostgreSQL (or Alembic) prints them, when the finding is a difference of
    # one object: what the migrated database has, and what the models would build.
    in_database: str | None = None
    in_models: str | None = None
    # The code that reverses ``op`` (the downgrade), where the finding's source can render it.
    undo: str = ""

    @property
    def subject(self) -> str:
        """``table.column``, ``table``, or the object name: what the user searches for."""
        if self.table and self.column:
            return f"{self.table}.{self.column}"
        if self.table and self.name:
            return f"{self.table} ({self.name})"
        return self.table or self.name or self.kind

    def sort_key(self) -> tuple[str, bool, str, int, str, str, str, str]:
        # Alembic's diff order varies between runs; reports must not. Within a table, the
        # order a reviewer reads the model in; what has no line follows, in a fixed order.
        loc = self.location
        return (
            self.table or "",
            loc is None,
            loc.file if loc else "",
            loc.line if loc else 0,
            self.kind,
            self.column or "",
            self.name or "",
            self.message,
        )

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["location"] = dataclasses.asdict(self.location) if self.location else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        loc = data.get("location")
        return cls(
            kind=data["kind"],
            table=data.get("table"),
            message=data["message"],
            column=data.get("column"),
            name=data.get("name"),
            op=data.get("op", ""),
            location=Location(**loc) if loc else None,
            hint=data.get("hint", ""),
            source=data.get("source", "autogenerate"),
            in_database=data.get("in_database"),
            in_models=data.get("in_models"),
            undo=data.get("undo", ""),
        )


@dataclass
class CheckResult:
    """The outcome of one check: findings (possibly none) and facts about the run."""

    findings: list[Finding] = field(default_factory=list)
    revisions_applied: int = 0
    heads: list[str] = field(default_factory=list)
    config_file: str = ""
    revision_command: str = ""
    # Where Alembic found revisions once env.py ran: the git check looks there for untracked files.
    version_dirs: list[str] = field(default_factory=list)
    # The worker's: their listings, for the verdict's key (None: one holds a file not in the map).
    version_listings: dict[str, str | None] | None = None
    # The revision writer's files (``check-migrations revision``), absolute paths.
    written: list[str] = field(default_factory=list)
    # Every revision id in the history: the writer's --rev-id convention is read from them.
    revision_ids: list[str] = field(default_factory=list)
    # Lines for stderr that are not findings (e.g. history checks skipped: no git repository).
    notices: list[str] = field(default_factory=list)
    # Why the catalog comparison (second opinion) did not run, when it was asked for and could not.
    catalog_skipped: str = ""
    # Set aside before reporting, so not in ``findings``: matched by an ignore rule
    # (run/ignores.py), or found in the baseline (run/baseline.py); and the baseline's entries that
    # no longer occur (fixed).
    ignored: list[Finding] = field(default_factory=list)
    baselined: list[Finding] = field(default_factory=list)
    fixed: list[dict[str, str]] = field(default_factory=list)
    # The safety observation (worker/safety/): findings that do not fail the check (advice, or
    # safety = "warn"), and what each new revision's statements were seen to do.
    warnings: list[Finding] = field(default_factory=list)
    safety: list[dict[str, Any]] = field(default_factory=list)
    # Why the drift comparison did not run: the upgrade's failure, when a new revision stopped it
    # with a safety finding (worker/safety/in_transaction.py). Never an agreement: with the
    # finding set aside, the check fails with this line (run/configs.py).
    unchecked: str = ""

    @property
    def in_sync(self) -> bool:
        return not self.findings

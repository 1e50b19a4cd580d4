"""What a check found: plain data, shared by the worker (which builds it) and the reporters."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CheckResult", "Finding", "Location"]


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

    @property
    def subject(self) -> str:
        """``table.column``, ``table``, or the object name: what the user searches for."""
        if self.table and self.column:
            return f"{self.table}.{self.column}"
        if self.table and self.name:
            return f"{self.table} ({self.name})"
        return self.table or self.name or self.kind

    def sort_key(self) -> tuple[str, str, str, str, str]:
        # Alembic's diff order varies between runs; reports must not.
        return (self.table or "", self.kind, self.column or "", self.name or "", self.message)

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

    @property
    def in_sync(self) -> bool:
        return not self.findings

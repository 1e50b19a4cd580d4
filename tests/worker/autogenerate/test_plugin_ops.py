"""An extension's op no describer knows: one finding, under a kind ignore rules accept."""

from __future__ import annotations

from typing import Any

from alembic.operations import ops
from alembic.runtime.migration import MigrationContext
from sqlalchemy.dialects import postgresql

from migration_check.findings import KINDS
from migration_check.run.ignores import parse_rules
from migration_check.worker.autogenerate.ops import findings_from_ops


class GrantOp(ops.MigrateOperation):
    """A real Alembic op class, as an extension defines one, with no renderer."""

    def __init__(self, role: str) -> None:
        self.role = role

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("grant_role", self.role)


def test_unknown_plugin_op_is_plugin_op_named_from_its_diff() -> None:
    context = MigrationContext.configure(dialect=postgresql.dialect())  # type: ignore[no-untyped-call]
    (finding,) = findings_from_ops(ops.UpgradeOps(ops=[GrantOp("reporting")]), context)
    assert finding.kind == "plugin_op"
    assert finding.kind in KINDS
    assert finding.name == "reporting"
    assert finding.message.startswith("GrantOp reporting:")
    # The baseline and ignore rules validate kinds against KINDS: this one can be named.
    (rule,) = parse_rules(["plugin_op:reporting"], "pyproject.toml")
    assert rule.matches(finding)

"""The writer's safe forms: autogenerate's ops rewritten where the safe form is mechanical.

Autogenerate writes what builds the schema, not what a populated production table can take
(``shared/SAFETY.md`` has the measured locks): a plain CREATE INDEX blocks writes while it
builds, ADD CONSTRAINT scans the table under a lock that blocks writes, and an ALTER TABLE
queued behind a long query blocks every query after it. Only ops on tables that exist before
the revision are rewritten: a table the same revision creates (or drops) is empty (or going),
and its plain ops cannot block anyone. Each rewrite leaves one line in ``notes``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from alembic.autogenerate import renderers
from alembic.autogenerate.render import render_op
from alembic.operations import ops
from alembic.util import rev_id as random_rev_id

from migration_check.findings import Finding
from migration_check.worker.safety import forms_text

__all__ = ["DEFAULT_LOCK_TIMEOUT", "SafeForms", "ValidateLater", "apply"]

DEFAULT_LOCK_TIMEOUT = forms_text.DEFAULT_LOCK_TIMEOUT
VALIDATE_NOTE = "# ### check-migrations: nothing to undo; the revision before drops it ###"
_Table = tuple[str | None, str]


class AutocommitBlockOp(ops.MigrateOperation):
    """Ops that must run outside a transaction (``CONCURRENTLY``), in ``autocommit_block()``."""

    def __init__(self, inner: list[ops.MigrateOperation]) -> None:
        self.inner = inner


class CommentOp(ops.MigrateOperation):
    """Lines rendered as they are (a comment, ``pass``)."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines


@renderers.dispatch_for(AutocommitBlockOp)
def _render_block(autogen_context: Any, op: AutocommitBlockOp) -> list[str]:
    prefix = autogen_context.opts.get("alembic_module_prefix") or "op."
    lines = [forms_text.AUTOCOMMIT.replace("op.", prefix, 1)]
    for inner in op.inner:
        lines.extend(render_op(autogen_context, inner))
    # Mako's PythonPrinter, which Alembic renders the body with, closes a block at a blank line.
    return [*lines, ""]


@renderers.dispatch_for(CommentOp)
def _render_comment(autogen_context: Any, op: CommentOp) -> list[str]:
    return op.lines


@dataclasses.dataclass(frozen=True)
class ValidateLater:
    """A constraint written ``NOT VALID``: the second revision validates it."""

    schema: str | None
    table: str
    name: str

    def sql(self) -> str:
        return forms_text.validate_sql(self.schema, self.table, self.name)


def _new_tables(container: ops.OpContainer) -> set[_Table]:
    """Tables this body creates or drops: their plain ops cannot block anyone."""
    return {
        (op.schema, op.table_name)
        for op in container.ops
        if isinstance(op, (ops.CreateTableOp, ops.DropTableOp))
    }


def _name(value: Any) -> str | None:
    return str(value) if isinstance(value, str) and value else None


class SafeForms:
    """Rewrites one revision's bodies; ``notes`` says what was rewritten and why."""

    def __init__(self, lock_timeout: str | None, *, validate_later: bool) -> None:
        self.lock_timeout = lock_timeout
        # False when no second revision can be written (several bodies, e.g. multidb).
        self.validate_later = validate_later
        self.notes: list[str] = []
        self.validations: list[ValidateLater] = []
        self.checks: list[ValidateLater] = []

    def rewrite(self, container: ops.OpContainer, *, upgrade: bool) -> None:
        """Rewrite ``container`` (an upgrade or downgrade body) in place.

        The downgrade is rewritten by the same rules, so it stays the upgrade's mirror; only
        the upgrade's rewrites are said (the downgrade's follow from them).
        """
        new = _new_tables(container)
        say = self.notes.append if upgrade else (lambda _line: None)
        out: list[ops.MigrateOperation] = []
        # The NOT VALID checks (added later, as hand-written code) lock their tables briefly.
        exclusive: list[str] = [v.table for v in self.checks] if upgrade else []
        created = _created(container)
        for op in container.ops:
            if isinstance(op, ops.ModifyTableOps) and (op.schema, op.table_name) not in new:
                out.extend(self._modify_table(op, say, exclusive))
                continue
            # Dropping or renaming a table that was there takes ACCESS EXCLUSIVE on it.
            where = (getattr(op, "schema", None), getattr(op, "table_name", ""))
            if isinstance(op, ops.DropTableOp | ops.RenameTableOp) and where not in created:
                exclusive.append(where[1])
            out.append(op)
        if self.lock_timeout and exclusive:
            out.insert(0, ops.ExecuteSQLOp(forms_text.lock_timeout_sql(self.lock_timeout)))
            tables = ", ".join(sorted(set(exclusive)))
            say(
                f"wrote SET lock_timeout = '{self.lock_timeout}' at the top of upgrade() (it "
                f"locks {tables}: a lock queued behind a long query blocks every query after it)"
            )
        container.ops = out

    def _modify_table(
        self, table_ops: ops.ModifyTableOps, say: Any, exclusive: list[str]
    ) -> list[ops.MigrateOperation]:
        """The table's ops with the unsafe ones rewritten, in their order.

        ``autocommit_block()`` commits what came before it, so the ops around a concurrent
        index stay on their side of it; neighbouring concurrent ops share one block.
        """
        out: list[ops.MigrateOperation] = []
        pending: list[ops.MigrateOperation] = []
        table = table_ops.table_name
        for op in table_ops.ops:
            block = self._concurrent(op, say)
            if block is None:
                if isinstance(op, ops.CreateForeignKeyOp) and self.validate_later:
                    self._not_valid(op, table_ops.schema, table, say)
                if not isinstance(op, ops.CreateTableCommentOp | ops.DropTableCommentOp):
                    exclusive.append(table)
                pending.append(op)
                continue
            if pending:
                out.append(ops.ModifyTableOps(table, pending, schema=table_ops.schema))
                pending = []
            if out and isinstance(out[-1], AutocommitBlockOp):
                out[-1].inner.extend(block[0].inner)
                out.extend(block[1:])
            else:
                out.extend(block)
            if len(block) > 1:  # UNIQUE USING INDEX: a brief ACCESS EXCLUSIVE lock
                exclusive.append(table)
        if pending:
            out.append(ops.ModifyTableOps(table, pending, schema=table_ops.schema))
        return out

    def _concurrent(
        self, op: ops.MigrateOperation, say: Any
    ) -> tuple[AutocommitBlockOp, *tuple[ops.MigrateOperation, ...]] | None:
        """The concurrent form of an index op or a UNIQUE constraint; None: not one of them."""
        if isinstance(op, ops.CreateIndexOp) and not op.kw.get("postgresql_concurrently"):
            op.kw["postgresql_concurrently"] = True
            say(
                f"wrote create_index {op.index_name} CONCURRENTLY (the table exists: a plain "
                "CREATE INDEX blocks writes while it builds)"
            )
            return (AutocommitBlockOp([op]),)
        if isinstance(op, ops.DropIndexOp) and not op.kw.get("postgresql_concurrently"):
            op.kw["postgresql_concurrently"] = True
            say(
                f"wrote drop_index {op.index_name} CONCURRENTLY (the table exists: a plain "
                "DROP INDEX takes an ACCESS EXCLUSIVE lock on it)"
            )
            return (AutocommitBlockOp([op]),)
        if isinstance(op, ops.AddConstraintOp) and op.constraint_type == "unique":
            return self._unique(op, say)
        return None

    def _unique(
        self, op: ops.AddConstraintOp, say: Any
    ) -> tuple[AutocommitBlockOp, ops.ExecuteSQLOp] | None:
        """A UNIQUE constraint as a concurrent unique index, then ``UNIQUE USING INDEX``.

        Only the plain shape: a deferrable constraint or one with dialect options would lose
        them on the way.
        """
        constraint = op.to_constraint()
        name = _name(constraint.name)
        columns = [c.name for c in constraint.columns]  # type: ignore[attr-defined]
        options = (
            constraint.deferrable,
            constraint.initially,
            constraint.dialect_kwargs,
        )
        if name is None or not columns or any(options):
            return None
        table = constraint.table
        index = ops.CreateIndexOp(
            name, table.name, columns, schema=table.schema, unique=True,
            postgresql_concurrently=True,
        )  # fmt: skip
        say(
            f"wrote create_unique_constraint {name} as a unique index built CONCURRENTLY, then "
            "ADD CONSTRAINT ... USING INDEX (the table exists: a plain one builds the index "
            "under an ACCESS EXCLUSIVE lock)"
        )
        attach = forms_text.attach_sql(table.schema, table.name, name)
        return AutocommitBlockOp([index]), ops.ExecuteSQLOp(attach)

    def _not_valid(
        self, op: ops.CreateForeignKeyOp, schema: str | None, table: str, say: Any
    ) -> None:
        name = _name(op.constraint_name)
        if name is None:
            say(
                f"kept create_foreign_key on {table} as autogenerate wrote it: it has no name "
                "to validate it by later (give the metadata a naming convention)"
            )
            return
        op.kw["postgresql_not_valid"] = True
        self.validations.append(ValidateLater(schema, table, name))
        say(
            f"wrote create_foreign_key {name} NOT VALID and a second revision that validates "
            "it (the table exists: a plain one scans both tables under a lock that blocks writes)"
        )

    def not_valid_checks(self, findings: Sequence[Finding], new: set[_Table]) -> list[Finding]:
        """The catalog's ``create_check_constraint`` code with ``postgresql_not_valid=True``.

        Called before ``rewrite`` of the upgrade, which then counts their tables as locked.
        """
        out: list[Finding] = []
        for f in findings:
            code = f.op.strip()
            schema, _, table = (f.table or "").rpartition(".")
            name = f.name
            if (
                self.validate_later
                and f.source == "catalog"
                and f.kind == "add_check"
                and name
                and table
                and (schema or None, table) not in new
                and code.startswith("op.create_check_constraint(")
                and code.endswith(")")
                and "\n" not in code
            ):
                self.checks.append(ValidateLater(schema or None, table, name))
                self.validations.append(self.checks[-1])
                self.notes.append(
                    f"wrote create_check_constraint {name} NOT VALID and a second revision "
                    "that validates it (the table exists: a plain one scans it under an ACCESS "
                    "EXCLUSIVE lock)"
                )
                out.append(dataclasses.replace(f, op=code[:-1] + ", postgresql_not_valid=True)"))
            else:
                out.append(f)
        return out

    def validate_revision(self, first: ops.MigrationScript, taken: set[str]) -> ops.MigrationScript:
        """The second revision: VALIDATE each NOT VALID constraint, after the first."""
        rev_id = _next_rev_id(str(first.rev_id), taken)
        names = ", ".join(v.name for v in self.validations)
        second = ops.MigrationScript(
            rev_id,
            # In autocommit_block(): under Alembic's default env.py every revision of an upgrade
            # shares one transaction, so a plain VALIDATE would still run under the ADD's lock.
            ops.UpgradeOps(
                [AutocommitBlockOp([ops.ExecuteSQLOp(v.sql()) for v in self.validations])]
            ),
            ops.DowngradeOps([CommentOp([VALIDATE_NOTE, "pass"])]),
            message=f"validate {names}",
            head=first.rev_id,
            version_path=first.version_path,
        )
        # What RevisionContext sets on the scripts autogenerate made, so it renders the ops.
        second._needs_render = True
        return second


def _created(container: ops.OpContainer) -> set[_Table]:
    return {(op.schema, op.table_name) for op in container.ops if isinstance(op, ops.CreateTableOp)}


def _next_rev_id(first: str, taken: set[str]) -> str:
    """The id after ``first`` in the project's own numbering, or a random one."""
    if first.isdigit():
        candidate = str(int(first) + 1).zfill(len(first))
        if candidate not in taken:
            return candidate
    return random_rev_id()


def apply(
    scripts: list[ops.MigrationScript],
    findings: Sequence[Finding],
    taken: set[str],
    lock_timeout: str | None,
    notes: list[str],
) -> tuple[list[Finding], list[ops.MigrationScript]]:
    """Rewrite autogenerate's revision (after env.py's ``process_revision_directives``).

    Returns the findings with the catalog's CHECK code made ``NOT VALID``, and the second
    revision that validates what was written ``NOT VALID`` (none: nothing was).
    """
    bodies = [body for s in scripts for body in s.upgrade_ops_list]
    # One revision with one body: a second revision can follow it (multidb has several bodies).
    forms = SafeForms(lock_timeout, validate_later=len(scripts) == 1 and len(bodies) == 1)
    new = set().union(*(_new_tables(body) for body in bodies))
    findings = forms.not_valid_checks(findings, new)
    for s in scripts:
        for up in s.upgrade_ops_list:
            forms.rewrite(up, upgrade=True)
        for down in s.downgrade_ops_list:
            forms.rewrite(down, upgrade=False)
    notes.extend(forms.notes)
    if not forms.validations:
        return findings, []
    return findings, [forms.validate_revision(scripts[-1], taken)]

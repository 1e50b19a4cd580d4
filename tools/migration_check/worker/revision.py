"""The writer, worker side: the missing revision, as ``alembic revision --autogenerate`` writes it.

Runs in the worker after the check's own comparison, against the scratch database the check
upgraded to head, so the user needs no database of their own. The revision goes through
Alembic's ``RevisionContext`` and env.py exactly as the ``revision`` command would (the
project's ``script.py.mako``, ``file_template``, ``post_write_hooks``, env.py's
``process_revision_directives``). What the catalog comparison found and autogenerate cannot
render (an enum value, a CHECK expression) is added to the upgrade body as code to review.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from migration_check.findings import Finding
from migration_check.worker.autogenerate.owned import keep_extension_tables
from migration_check.worker.diagnose import Failure
from migration_check.worker.envpy import run_env

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.operations.ops import UpgradeOps
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

__all__ = [
    "REVIEW_COMMENT",
    "UNDO_COMMENT",
    "add_hand_written",
    "hand_written_code",
    "hand_written_undo",
    "write_revision",
]

# Short enough for a 100-column line limit once indented (ruff format never wraps comments).
REVIEW_COMMENT = "# ### check-migrations: autogenerate cannot write these; review them! ###"
UNDO_COMMENT = "# ### check-migrations: undo the reviewed part of upgrade() here, if it can be ###"
UNDONE_COMMENT = "# ### check-migrations: reverses the reviewed part of upgrade(); review it! ###"
_COMMAND_KEYS = (
    "message",
    "head",
    "splice",
    "branch_label",
    "version_path",
    "rev_id",
    "depends_on",
)


def hand_written_undo(findings: Sequence[Finding]) -> list[str] | None:
    """The reverse of ``hand_written_code``, last change first; None when one has no reverse.

    A downgrade that undoes only part of the upgrade would pass for complete: without every
    reverse, the writer leaves the note to write it rather than half of it.
    """
    catalog = [f for f in findings if f.source == "catalog" and f.op.strip()]
    if any(not f.undo.strip() for f in catalog):
        return None
    seen: set[str] = set()
    undo: list[str] = []
    for code in sorted(catalog, key=lambda f: f.op.strip(), reverse=True):
        if code.undo.strip() not in seen:
            seen.add(code.undo.strip())
            undo.append(code.undo.strip())
    return undo


def hand_written_code(findings: Sequence[Finding]) -> list[str]:
    """The ``op`` of every catalog finding: code the revision needs and autogenerate omits.

    Sorted and de-duplicated, so two findings needing the same statement write it once.
    """
    codes = {f.op.strip() for f in findings if f.source == "catalog" and f.op.strip()}
    return sorted(codes)


def _block_lines(code: str) -> list[str]:
    """``code``'s lines as Mako's ``PythonPrinter`` wants them.

    The printer Alembic renders the upgrade body with re-indents every line from the colons
    that open blocks and closes a block at a blank line; so each dedent in the code becomes
    that many blank lines, and indentation is left to the printer.
    """
    out: list[str] = []
    stack = [0]
    for raw in textwrap.dedent(code).splitlines():
        if not raw.strip():
            continue
        indent = len(raw) - len(raw.lstrip())
        while len(stack) > 1 and indent < stack[-1]:
            stack.pop()
            out.append("")
        if indent > stack[-1]:
            stack.append(indent)
        out.append(raw.strip())
    out.extend("" for _ in stack[1:])
    return out


def _hand_written_op_class() -> type[Any]:
    """A ``MigrateOperation`` that renders as the given code (defined once, lazily)."""
    global _HandWritten  # noqa: PLW0603 - Alembic's renderer registry is global too
    if _HandWritten is not None:
        return _HandWritten
    from alembic.autogenerate import renderers
    from alembic.operations.ops import MigrateOperation

    class HandWrittenOp(MigrateOperation):
        def __init__(self, lines: list[str]) -> None:
            self.lines = lines

        def reverse(self) -> MigrateOperation:
            return HandWrittenOp([UNDO_COMMENT])

    @renderers.dispatch_for(HandWrittenOp)
    def _render(autogen_context: Any, op: HandWrittenOp) -> list[str]:
        return op.lines

    _HandWritten = HandWrittenOp
    return HandWrittenOp


_HandWritten: type[Any] | None = None


def add_hand_written(upgrade_ops: UpgradeOps, codes: Sequence[str]) -> None:
    """Append ``codes`` to the upgrade body under the review comment (nothing when empty)."""
    if not codes:
        return
    op_class = _hand_written_op_class()
    lines = [REVIEW_COMMENT]
    for code in codes:
        lines.extend(_block_lines(code))
    upgrade_ops.ops.append(op_class(lines))


def write_revision(
    cfg: Config,
    script: ScriptDirectory,
    url: str,
    options: dict[str, Any],
    findings: Sequence[Finding],
    notes: list[str] | None = None,
) -> list[str]:
    """Write the revision the comparison calls for; return the paths written (none: in sync).

    ``findings`` are the check's own: when they are empty there is nothing to write, and the
    catalog ones among them supply the hand-written part. Unless ``options["plain"]``, ops
    on existing tables get their safe forms (worker/safe_forms.py), each said in ``notes``.
    """
    from alembic.util import CommandError

    from alembic import autogenerate as autogen

    command_args: dict[str, Any] = dict.fromkeys(_COMMAND_KEYS)
    command_args.update({k: options.get(k) for k in _COMMAND_KEYS})
    command_args.update(
        autogenerate=True,
        sql=False,
        head=options.get("head") or "head",
        splice=bool(options.get("splice")),
    )
    codes = hand_written_code(findings)
    try:
        revision_context = autogen.RevisionContext(cfg, script, command_args)
    except CommandError as exc:
        raise _command_failure(exc, script) from exc
    state: dict[str, Any] = {}

    def retrieve(rev: Any, context: MigrationContext) -> list[Any]:
        try:
            revision_context.run_autogenerate(rev, context)
        except CommandError as exc:
            state["command_error"] = exc
            return []
        owned = keep_extension_tables(revision_context.generated_revisions, context)
        if notes is not None:
            notes.extend(owned)
        return []

    run_env(
        cfg,
        script,
        url,
        retrieve,
        phase="compare",
        template_args=revision_context.template_args,
        revision_context=revision_context,
    )
    if "command_error" in state:
        raise _command_failure(state["command_error"], script)
    scripts = revision_context.generated_revisions
    if scripts:
        from migration_check.worker.unnamed import name_unnamed_uniques

        name_unnamed_uniques(scripts, notes if notes is not None else [])
    second: list[Any] = []
    if scripts and not options.get("plain"):
        from migration_check.worker import safe_forms

        taken = {rev.revision for rev in script.walk_revisions()}
        lock_timeout = options.get("lock_timeout", safe_forms.DEFAULT_LOCK_TIMEOUT)
        said = notes if notes is not None else []
        findings, second = safe_forms.apply(scripts, findings, taken, lock_timeout, said)
        codes = hand_written_code(findings)
    # env.py's process_revision_directives may have dropped the revision, or kept it empty.
    if scripts and codes:
        add_hand_written(scripts[-1].upgrade_ops_list[-1], codes)
        downgrade = scripts[-1].downgrade_ops_list[-1]
        undo = hand_written_undo(findings)
        if undo:
            # Reversed first: downgrade() undoes the upgrade's last step first.
            lines = [UNDONE_COMMENT]
            for code in undo:
                lines.extend(_block_lines(code))
            downgrade.ops.insert(0, _hand_written_op_class()(lines))
        else:
            # A body of comments alone is not Python: keep the pass the renderer would have put.
            note = [UNDO_COMMENT] + (["pass"] if downgrade.is_empty() else [])
            downgrade.ops.insert(0, _hand_written_op_class()(note))
    if not any(not ops.is_empty() for s in scripts for ops in s.upgrade_ops_list):
        return []
    scripts.extend(second)  # after the first is complete: it is written first, then this one
    written: list[str] = []
    try:
        for generated in revision_context.generate_scripts():
            if generated is not None:
                written.append(os.path.abspath(generated.path))
    except CommandError as exc:
        raise _command_failure(exc, script) from exc
    except FileNotFoundError as exc:
        raise _missing_file(exc, script) from exc
    return written


def _missing_file(exc: FileNotFoundError, script: ScriptDirectory) -> Failure:
    """A file Alembic needs to write the revision is gone: name it and how to get it back."""
    missing = str(exc.filename or exc)
    if os.path.basename(missing) == "script.py.mako":
        return Failure(
            "config",
            f"revision: {os.path.relpath(missing)} is missing: it is the template every revision "
            f"is written from; restore it from version control, or copy Alembic's own "
            f"(alembic/templates/generic/script.py.mako) into {os.path.relpath(script.dir)}",
        )
    return Failure("config", f"revision: {os.path.relpath(missing)} does not exist")


def _command_failure(exc: Exception, script: ScriptDirectory) -> Failure:
    """Alembic's refusal as one line; for several heads, the --head that would do."""
    message = str(exc)
    if "Multiple heads" in message:
        labels = sorted(
            {lb for h in script.get_heads() for lb in script.get_revision(h).branch_labels}
        )
        example = f"{labels[0]}@head" if labels else "REVISION"
        message = f"the history has several heads: pass --head {example} (or merge the heads)"
    return Failure("config", f"revision: {message}")

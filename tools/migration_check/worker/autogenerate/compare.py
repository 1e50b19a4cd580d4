"""First opinion: autogenerate through env.py, exactly as ``alembic.command.check`` does."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from migration_check.findings import Finding
from migration_check.worker.envpy import refuse_empty_metadata, run_env

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

__all__ = ["Comparison", "compare_autogenerate"]


class Comparison:
    """``alembic check``'s function for env.py (``retrieve``) and what it found.

    One place for the comparison, whichever run of env.py calls it: its own (as ``alembic
    check``), or the upgrade's when that run applies nothing (worker/autogenerate/folded.py).

    ``seen`` receives what env.py configured (``opts``: target metadata, filters, version
    table): the catalog comparison reads it there, after env.py and the revisions loaded.
    ``per_database``: a multidb env.py runs autogenerate once per database, each adding its
    own ``UpgradeOps`` (token ``<name>_upgrades``); each finding then says which database.
    ``on_configured`` gets env.py's opts once, before autogenerate compares (the catalog
    comparison starts building the models' database then).
    """

    def __init__(
        self,
        cfg: Config,
        script: ScriptDirectory,
        seen: dict[str, Any] | None = None,
        *,
        per_database: bool = False,
        on_configured: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        from alembic import autogenerate as autogen

        command_args = {
            "message": None,
            "autogenerate": True,
            "sql": False,
            "head": "head",
            "splice": False,
            "branch_label": None,
            "version_path": None,
            "rev_id": None,
            "depends_on": None,
        }
        self.script = script
        self.revision_context = autogen.RevisionContext(cfg, script, command_args)
        self.seen = seen
        self.per_database = per_database
        self.on_configured = on_configured
        self.found: list[Finding] = []
        self._configured = False
        self._counted = 0

    def context_kw(self) -> dict[str, Any]:
        """What ``alembic check`` hands EnvironmentContext besides ``fn``: env.py's
        ``configure(template_args=...)`` lands in the first, hooks may read both in opts."""
        return {
            "template_args": self.revision_context.template_args,
            "revision_context": self.revision_context,
        }

    def retrieve(self, rev: Any, context: MigrationContext) -> list[Any]:
        if self.seen is not None:
            self.seen["opts"] = dict(context.opts)
        refuse_empty_metadata(context, self.script)
        if self.on_configured is not None and not self._configured:
            self._configured = True
            self.on_configured(dict(context.opts))
        revision_context = self.revision_context
        revision_context.run_autogenerate(rev, context)
        # env.py's process_revision_directives may drop an empty revision (a cookbook recipe).
        if revision_context.generated_revisions:
            from migration_check.worker.autogenerate.ops import findings_from_ops

            script_ = revision_context.generated_revisions[-1]
            # Only the ops this call added: earlier databases' ops are already counted.
            for upgrade_ops in script_.upgrade_ops_list[self._counted :]:
                batch = findings_from_ops(upgrade_ops, context)
                token = str(upgrade_ops.upgrade_token or "")
                if self.per_database and token.endswith("_upgrades"):
                    database = token.removesuffix("_upgrades")
                    batch = [
                        dataclasses.replace(f, message=f"database {database}: {f.message}")
                        for f in batch
                    ]
                self.found.extend(batch)
            self._counted = len(script_.upgrade_ops_list)
        return []


def compare_autogenerate(
    cfg: Config,
    script: ScriptDirectory,
    url: str,
    seen: dict[str, Any] | None = None,
    *,
    per_database: bool = False,
    on_configured: Callable[[dict[str, Any]], None] | None = None,
) -> list[Finding]:
    """Autogenerate through env.py, exactly as ``alembic.command.check`` does (``Comparison``)."""
    comparison = Comparison(
        cfg, script, seen, per_database=per_database, on_configured=on_configured
    )
    run_env(cfg, script, url, comparison.retrieve, phase="compare", **comparison.context_kw())
    return comparison.found

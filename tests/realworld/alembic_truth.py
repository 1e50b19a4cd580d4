"""Plain Alembic's verdict, run by a real project's own venv python (never imported by pytest).

``python alembic_truth.py ALEMBIC_INI URL`` upgrades the database at URL to its heads through
the project's env.py, then prints as JSON, on its last line, the diffs ``alembic check`` would
fail on, each as ``[kind, table, name]`` (name: the column, index or constraint; null for a
table). It is Alembic's own comparison (``compare_metadata`` inside env.py, so env.py's
``include_object`` and ``compare_type`` apply), so the suite's truth never comes from the checker.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.command import upgrade
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory


def _key(diff: Any) -> list[str | None]:
    kind = diff[0]
    if kind in ("add_table", "remove_table"):
        return [kind, diff[1].name, None]
    if kind in ("add_column", "remove_column"):
        return [kind, diff[2], diff[3].name]
    if kind in ("add_index", "remove_index", "add_constraint", "remove_constraint"):
        return [kind, diff[1].table.name, diff[1].name]
    if kind in ("add_fk", "remove_fk"):
        return [kind, diff[1].parent.name, diff[1].name]
    if kind.startswith("modify_"):
        return [kind, diff[2], diff[3]]
    return [kind, None, repr(diff[1:])]


def main() -> None:
    ini, url = sys.argv[1], sys.argv[2]
    cfg = Config(ini)
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    # "heads": a history with expand and contract branches (keystone) is migrated to both.
    upgrade(cfg, "heads")

    script = ScriptDirectory.from_config(cfg)
    keys: list[list[str | None]] = []

    def compare(_rev: object, context: MigrationContext) -> list[object]:
        for diff in compare_metadata(context, context.opts["target_metadata"]):
            # Alembic groups a column's modify_* diffs into one list.
            for one in diff if isinstance(diff, list) else [diff]:
                keys.append(_key(one))
        return []

    with EnvironmentContext(cfg, script, fn=compare):
        script.run_env()
    print(json.dumps(sorted(keys, key=json.dumps)))


if __name__ == "__main__":
    main()

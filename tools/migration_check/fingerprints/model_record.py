"""What of a model module the migrated database can depend on: its code, not its columns.

The migrated database is what the revisions build through env.py. A module env.py imports but
no revision imports (the models, mostly) reaches that build only through code that runs during
the upgrade (a ``@compiles`` override, an event listener, a ``TypeDecorator`` method, a
monkeypatch at import time) and through the target metadata's attributes Alembic reads (the
worker records those, worker/replay_record.py). So such a module is keyed by ``model_digest``:
its syntax tree with every class body's plain assignments (column declarations,
``__tablename__``, ``__table_args__``) left out. Functions, decorators, module-level statements
and the imports they use all stay in: adding a column reuses the migrated database, editing a
listener, a type's method or a module-level naming convention does not.

Stdlib only: the CLI re-checks these digests before it copies a cached cluster.
"""

from __future__ import annotations

import ast
import hashlib
import os
from typing import Any

__all__ = ["model_digest", "models_changed", "shown_path"]


def model_digest(path: str) -> str | None:
    """The digest of what of ``path`` can run during an upgrade; None if unreadable."""
    try:
        with open(path, "rb") as fh:
            source = fh.read()
        tree = ast.parse(source, path)
    except (OSError, SyntaxError, ValueError):
        return None
    tree = _Strip().visit(tree)
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    used |= {n.value.id for n in ast.walk(tree)
             if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)}  # fmt: skip
    body: list[ast.stmt] = []
    for stmt in tree.body:
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            # An import only the dropped column declarations use cannot run during an upgrade:
            # adding a column of a new type must not count. Star imports and modules imported
            # for their side effects stay (their bound name is unused, but a star is kept).
            names = [a for a in stmt.names if a.name == "*" or _bound(a) in used]
            if isinstance(stmt, ast.Import) and not names:
                # `import pkg.mod` for its side effect (listeners, registrations): keep it.
                names = list(stmt.names)
            if not names:
                continue
            stmt.names = names
        body.append(stmt)
    tree.body = body
    return hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()


def _bound(alias: ast.alias) -> str:
    return alias.asname or alias.name.split(".", 1)[0]


class _Strip(ast.NodeTransformer):
    """Class bodies without their plain assignments; everything else kept."""

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        self.generic_visit(node)
        node.body = [
            s
            for s in node.body
            if not isinstance(s, ast.Assign | ast.AnnAssign)
            and not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
        ] or [ast.Pass()]
        return node


def models_changed(recorded: Any) -> str | None:
    """None if every recorded module's model digest still holds, else what moved."""
    if not isinstance(recorded, dict):
        return None
    for path, digest in recorded.items():
        if model_digest(path) != digest:
            return f"{shown_path(path)} changed beyond its column declarations"
    return None


def shown_path(path: str) -> str:
    """Relative to the working directory when below it, else absolute: for one-line notes."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel

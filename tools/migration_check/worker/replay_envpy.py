"""Does env.py read the models' data? Then a migrated database cannot be reused across a model
edit (worker/replay_record.py).

env.py runs around the migrations and may take a setting from the models that is neither a call
the upgrade's trace sees nor an attribute Alembic reads: ``version_table_schema =
Base.metadata.schema``, ``SET search_path TO`` a schema a model module names,
``config.attributes["tables"] = Base.metadata.tables`` for a revision to read. So env.py's syntax
tree is read: a name it imports from a model module may only be handed on whole (``Base``,
``Base.metadata``): assigned to a plain name (which is then held to the same rule), passed as
``target_metadata=``, or listed in a list or tuple so handed on. Anything else (an attribute of
it, a call, a subscript, an f-string) is a read of the models' data, and the record cannot vouch
for it.
"""

from __future__ import annotations

import ast
import os
import sys

__all__ = ["envpy_reads_models"]


def _file(module: str) -> str | None:
    path = getattr(sys.modules.get(module), "__file__", None)
    return os.path.realpath(path) if isinstance(path, str) else None


def _model_names(tree: ast.AST, models: set[str]) -> tuple[set[str], str | None]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".", 1)[0]
                if _file(alias.name) in models or _file(bound) in models:
                    names.add(bound)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                why = "a relative import the record cannot follow"
                return names, f"env.py line {node.lineno}: {why}"
            module = node.module or ""
            for alias in node.names:
                here = _file(f"{module}.{alias.name}") or _file(module)
                if here not in models:
                    continue
                if alias.name == "*":
                    return names, f"env.py line {node.lineno}: imports * from a model module"
                names.add(alias.asname or alias.name)
    return names, None


def envpy_reads_models(env_py: str, models: set[str]) -> str | None:
    """Why env.py reads the models' data, in one line naming the line; None if it does not."""
    if not models:
        return None
    try:
        with open(env_py, encoding="utf-8") as fh:
            tree = ast.parse(fh.read(), env_py)
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return "env.py could not be read"
    names, why = _model_names(tree, models)
    if why is not None or not names:
        return why
    parents: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    held = set(names)
    while True:
        grown = False
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Name) and node.id in held):
                continue
            if not isinstance(node.ctx, ast.Load):
                continue
            whole: ast.AST = node
            parent = parents.get(whole)
            if isinstance(parent, ast.Attribute) and parent.attr == "metadata":
                whole, parent = parent, parents.get(parent)
            while isinstance(parent, ast.List | ast.Tuple):
                whole, parent = parent, parents.get(parent)
            if isinstance(parent, ast.keyword) and parent.arg == "target_metadata":
                continue
            if isinstance(parent, ast.Expr):
                continue  # a bare name: imported for its side effects, read nowhere
            if (
                isinstance(parent, ast.Assign)
                and parent.value is whole
                and all(isinstance(t, ast.Name) for t in parent.targets)
            ):
                new = {t.id for t in parent.targets if isinstance(t, ast.Name)} - held
                if new:
                    held |= new
                    grown = True
                continue
            shown = ast.unparse(parent if isinstance(parent, ast.expr) else whole)
            return f"env.py line {node.lineno} reads the models' data ({shown[:60]})"
        if not grown:
            return None

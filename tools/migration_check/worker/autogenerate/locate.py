"""Where a finding is fixed: the model's source line, or the module nothing imports.

Runs in the worker, after env.py has imported the models: the mapped classes are found
through SQLAlchemy's mapper registries, their attributes by parsing their source.
"""

from __future__ import annotations

import ast
import inspect
import os
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from migration_check.findings import Location

__all__ = [
    "Locator",
    "Orphan",
    "attribute_location",
    "class_location",
    "parse_module",
    "relative",
]

_SKIP_DIRS = {"__pycache__", ".git", ".venv", "node_modules", ".mypy_cache", ".ruff_cache"}


@dataclass(frozen=True)
class Orphan:
    """A table defined in a module of the models' package that nothing has imported."""

    location: Location
    import_statement: str  # what the package's ``__init__`` lacks: ``from models.x import X``
    package_init: str  # the package's ``__init__.py``, relative like ``location.file``


class Locator:
    """Find the model source line that declares a table or column."""

    def __init__(self, metadata: Any) -> None:
        self._tables: dict[str, Any] = {}
        self._metadatas = list(metadata) if isinstance(metadata, list | tuple) else [metadata]
        self._orphans: dict[tuple[str | None, str], Orphan] | None = None
        self._core: dict[str, _CoreTable] | None = None
        try:
            from sqlalchemy.orm.mapper import _mapper_registries
        except ImportError:  # pragma: no cover - private API moved
            return
        for registry in list(_mapper_registries):
            for mapper in registry.mappers:
                for table in getattr(mapper, "tables", []):
                    self._tables.setdefault(table.fullname, mapper)

    def find(self, table: str | None, column: str | None) -> Location | None:
        if table is None:
            return None
        mapper = self._tables.get(table)
        if mapper is None:
            return self._core_table(table, column)
        cls = mapper.class_
        if column is not None:
            loc = self._column(mapper, table, column)
            if loc is not None:
                return loc
        return class_location(cls)

    def orphan(self, name: str, schema: str | None) -> Orphan | None:
        """The unimported module of the models' package that defines table ``name``, if any.

        A table whose module the package stopped importing reads to autogenerate as dropped;
        the fix is an import, not ``op.drop_table``.
        """
        if self._orphans is None:
            self._orphans = _scan_orphans(_model_packages(self._metadatas, self._tables))
        return self._orphans.get((schema, name)) or self._orphans.get((None, name))

    def _core_table(self, table: str, column: str | None) -> Location | None:
        """A ``Table(...)`` has no mapper: its place is read from the module holding it."""
        if self._core is None:
            self._core = _core_tables(self._metadatas)
        found = self._core.get(table)
        if found is None:
            return None
        line = found.columns.get(column, found.line) if column is not None else found.line
        return Location(found.file, line)

    def _column(self, mapper: Any, table: str, column: str) -> Location | None:
        col = None
        for t in mapper.tables:
            if t.fullname == table and column in t.c:
                col = t.c[column]
        if col is None:
            return None
        try:
            key = mapper.get_property_by_column(col).key
        except Exception:
            key = column
        for klass in mapper.class_.__mro__:
            if key in vars(klass) or key in getattr(klass, "__annotations__", {}):
                loc = attribute_location(klass, key)
                if loc is not None:
                    return loc
        return None


@dataclass(frozen=True)
class _CoreTable:
    file: str
    line: int  # the ``Table(`` call's
    columns: dict[str, int]  # each literal ``Column("name", ...)`` inside it


def _core_tables(metadatas: list[Any]) -> dict[str, _CoreTable]:
    """Each literal ``Table("x", ...)`` in a loaded module that holds one of the metadatas or
    a table of theirs, keyed by the table's full name (``schema.x`` when it names a schema)."""
    from sqlalchemy import Table

    wanted = {id(m) for m in metadatas if m is not None}
    found: dict[str, _CoreTable] = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not isinstance(path, str) or not path.endswith(".py"):
            continue
        try:
            values = list(vars(module).values())
        except TypeError:
            continue
        # isinstance, not getattr: a module's ctypes library loads a file for any attribute.
        if not any(
            id(v) in wanted or (isinstance(v, Table) and id(v.metadata) in wanted) for v in values
        ):
            continue
        tree = parse_module(path)
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)] if tree is not None else []
        for node in calls:
            spec = _table_call(node)
            if spec is None:
                continue
            schema, name = spec
            columns = {
                arg.args[0].value: arg.lineno
                for arg in node.args
                if isinstance(arg, ast.Call)
                and _called(arg) == "Column"
                and arg.args
                and isinstance(arg.args[0], ast.Constant)
                and isinstance(arg.args[0].value, str)
            }
            key = f"{schema}.{name}" if schema else name
            found.setdefault(key, _CoreTable(relative(path), node.lineno, columns))
    return found


def _called(node: ast.Call) -> str | None:
    """The called name: ``Table`` for ``Table(...)`` and ``sa.Table(...)`` alike."""
    func = node.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)


def _model_packages(metadatas: list[Any], mappers: dict[str, Any]) -> dict[str, Path]:
    """Packages holding the models: those of the mapped classes and of modules naming the
    metadata, so a Core-only project (``Table(...)`` modules) is found too."""
    modules: set[str] = set()
    wanted = {id(m) for m in metadatas if m is not None}
    for mapper in mappers.values():
        if any(id(t.metadata) in wanted for t in mapper.tables):
            modules.add(mapper.class_.__module__)
    for name, module in list(sys.modules.items()):
        try:
            values = list(vars(module).values())
        except TypeError:
            continue
        if any(id(v) in wanted for v in values):
            modules.add(name)
    packages: dict[str, Path] = {}
    for name in modules:
        package = name if hasattr(sys.modules.get(name), "__path__") else name.rpartition(".")[0]
        # A lone models.py is no package: its siblings are the project, not the models.
        pkg = sys.modules.get(package) if package else None
        init = getattr(pkg, "__file__", None)
        if init and os.path.basename(init) == "__init__.py":
            packages[package] = Path(init).parent
    # A subpackage is scanned with its parent.
    return {
        name: path
        for name, path in packages.items()
        if not any(name.startswith(other + ".") for other in packages)
    }


def _scan_orphans(packages: dict[str, Path]) -> dict[tuple[str | None, str], Orphan]:
    loaded = {
        os.path.realpath(f)
        for m in list(sys.modules.values())
        if isinstance(f := getattr(m, "__file__", None), str)
    }
    found: dict[tuple[str | None, str], Orphan] = {}
    for package, root in sorted(packages.items()):
        init = relative(str(root / "__init__.py"))
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
            for filename in sorted(filenames):
                path = os.path.join(dirpath, filename)
                if not filename.endswith(".py") or os.path.realpath(path) in loaded:
                    continue
                rel = Path(path).relative_to(root).with_suffix("")
                parts = [p for p in rel.parts if p != "__init__"]
                module = ".".join([package, *parts])
                for schema, table, line, symbol in _tables_defined(path):
                    statement = f"from {module} import {symbol}" if symbol else f"import {module}"
                    orphan = Orphan(Location(relative(path), line), statement, init)
                    found.setdefault((schema, table), orphan)
    return found


def _tables_defined(path: str) -> list[tuple[str | None, str, int, str | None]]:
    """``(schema, table, line, name to import)`` for each ``__tablename__ = "x"`` and
    ``Table("x", ...)`` in a module."""
    tree = parse_module(path)
    if tree is None:
        return []
    out: list[tuple[str | None, str, int, str | None]] = []
    named: set[int] = set()  # Table() calls already recorded under the name bound to them
    for node in ast.walk(tree):  # breadth first: a statement before the call it holds
        if isinstance(node, ast.ClassDef):
            for stmt in node.body:
                value = _assigned(stmt, "__tablename__")
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    out.append((None, value.value, node.lineno, node.name))
                table = _assigned(stmt, "__table__")
                spec = _table_call(table) if isinstance(table, ast.Call) else None
                if spec:
                    named.add(id(table))
                    out.append((*spec, node.lineno, node.name))
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            target = node.targets[0] if len(node.targets) == 1 else None
            spec = _table_call(node.value)
            if spec and isinstance(target, ast.Name) and id(node.value) not in named:
                named.add(id(node.value))
                out.append((*spec, node.lineno, target.id))
        elif isinstance(node, ast.Call) and id(node) not in named:
            spec = _table_call(node)
            if spec:
                out.append((*spec, node.lineno, None))
    return out


def _table_call(node: ast.Call) -> tuple[str | None, str] | None:
    """``(schema, table)`` when the call is ``Table("x", ...)`` with a literal name."""
    if _called(node) != "Table" or not node.args:
        return None
    first = node.args[0]
    if not isinstance(first, ast.Constant) or not isinstance(first.value, str):
        return None
    schema = next(
        (
            kw.value.value
            for kw in node.keywords
            if kw.arg == "schema"
            and isinstance(kw.value, ast.Constant)
            and isinstance(kw.value.value, str)
        ),
        None,
    )
    return schema, first.value


def _assigned(stmt: ast.stmt, name: str) -> ast.expr | None:
    if isinstance(stmt, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == name for t in stmt.targets
    ):
        return stmt.value
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
        return stmt.value if stmt.target.id == name else None
    return None


def class_location(cls: type) -> Location | None:
    try:
        path = inspect.getsourcefile(cls)
        _, line = inspect.getsourcelines(cls)
    except (OSError, TypeError):
        return None
    if not path:
        return None
    return Location(relative(path), line)


def attribute_location(cls: type, key: str) -> Location | None:
    try:
        path = inspect.getsourcefile(cls)
    except TypeError:
        return None
    if not path:
        return None
    tree = parse_module(path)
    if tree is None:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == cls.__name__:
            for stmt in node.body:
                targets: list[ast.expr] = []
                if isinstance(stmt, ast.AnnAssign):
                    targets = [stmt.target]
                elif isinstance(stmt, ast.Assign):
                    targets = list(stmt.targets)
                if any(isinstance(t, ast.Name) and t.id == key for t in targets):
                    return Location(relative(path), stmt.lineno)
    return None


@cache
def parse_module(path: str) -> ast.Module | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return ast.parse(fh.read(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return None


def relative(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel

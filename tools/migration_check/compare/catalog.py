"""Second opinion: the migrated database against one ``create_all()`` built, via the catalog.

Autogenerate compares reflected objects with the models, and cannot see some changes at all:
CHECK constraints, ENUM labels, a primary key that moves, a partial index's WHERE clause, a
``Computed`` expression, identity options. Here PostgreSQL builds the models into a second
database (compare/modelsdb.py) and both are read through the same catalog queries
(compare/catalog_sql.py), so each side is printed by PostgreSQL itself and formatting noise
cannot differ. Only tables present on both sides are compared (a table added or removed is
autogenerate's finding), through env.py's own ``include_schemas``, ``include_name`` and
``include_object``, and nothing autogenerate already reported for the same object is repeated.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

from migration_check.compare import catalog_render as render
from migration_check.compare.catalog_render import Change, TableRef
from migration_check.compare.catalog_sql import Constraint, Index, Snapshot, read_snapshot
from migration_check.compare.modelsdb import ModelsDatabase
from migration_check.findings import Finding

__all__ = ["compare_catalog", "metadatas_of"]

# Autogenerate kinds that cover a catalog finding of the same family on the same table.
_FAMILY_KINDS = {
    "fk": {"add_fk", "remove_fk", "modify_fk"},
    "unique": {"add_unique", "remove_unique", "modify_unique"},
    "index": {"add_index", "remove_index", "modify_index"},
}


def compare_catalog(
    models_db: ModelsDatabase, url: str, seen: dict[str, Any], first: list[Finding]
) -> list[Finding]:
    """Build the models' database, compare both catalogs, return what autogenerate missed.

    ``seen`` holds what env.py configured (``compare_autogenerate(seen=...)``): the target
    metadata and the filters. Raises ``SkipCatalog`` when the models cannot be built.
    """
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    opts = seen.get("opts") or {}
    metadatas = metadatas_of(opts.get("target_metadata"))
    if not metadatas:
        return []  # no target_metadata: autogenerate compares nothing, and neither do we
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as migrated:
            models_db.build(metadatas, migrated)
            db = read_snapshot(migrated)
    finally:
        engine.dispose()
    with models_db.engine().connect() as conn:
        models = read_snapshot(conn)
    filters = _Filters(opts)
    found: list[_Found] = []
    compared: list[tuple[TableRef, Any]] = []
    for table in (t for md in metadatas for t in md.tables.values()):
        ref = _compared(table, filters, opts, db, models)
        if ref is not None:
            compared.append((ref, table))
            found.extend(_table_findings(ref, table, filters, db, models))
    found.extend(_enum_findings(compared, filters, db, models))
    found = [(f, w) for f, w in _new_only(found, first) if not _same_default(models_db, f)]
    return _located(found, opts.get("target_metadata"), compared)


def _same_default(models_db: ModelsDatabase, f: Finding) -> bool:
    """Two spellings of one default (``now()`` and ``CURRENT_TIMESTAMP``) are no drift.

    As Alembic's PostgreSQL comparison does, PostgreSQL evaluates both, in a transaction that
    is rolled back; never a ``nextval()``, which would advance a sequence.
    """
    a, b = f.in_database, f.in_models
    if f.kind != "modify_default" or a is None or b is None or "nextval(" in a + b:
        return False
    conn = models_db.conn
    try:
        with conn.transaction(force_rollback=True):
            row = conn.execute(f"SELECT ({a}) IS NOT DISTINCT FROM ({b})").fetchone()
    except Exception:  # not comparable as values: the texts differ, so it is a finding
        return False
    return bool(row and row[0])


def metadatas_of(target: Any) -> list[Any]:
    if target is None:
        return []
    return list(target) if isinstance(target, list | tuple) else [target]


class _Filters:
    """env.py's ``include_name`` / ``include_object``, called as autogenerate calls them."""

    def __init__(self, opts: dict[str, Any]) -> None:
        self.include_name: Callable[..., bool] | None = opts.get("include_name")
        self.include_object: Callable[..., bool] | None = opts.get("include_object")

    def name(self, name: str | None, type_: str, parents: dict[str, Any]) -> bool:
        return self._call(self.include_name, name, type_, parents)

    def obj(self, obj: Any, name: str | None, type_: str) -> bool:
        if obj is None:  # only the database has it: autogenerate would pass a reflected object
            return True
        return self._call(self.include_object, obj, name, type_, False, None)

    @staticmethod
    def _call(hook: Callable[..., bool] | None, *args: Any) -> bool:
        if hook is None:
            return True
        try:
            return bool(hook(*args))
        except Exception:  # a hook that cannot judge our object hides nothing from us
            return True


def _compared(
    table: Any, filters: _Filters, opts: dict[str, Any], db: Snapshot, models: Snapshot
) -> TableRef | None:
    schema = None if table.schema in (None, db.default_schema) else table.schema
    if schema is not None and not opts.get("include_schemas", False):
        return None
    if opts.get("include_schemas", False) and not filters.name(schema, "schema", {}):
        return None
    version = (
        opts.get("version_table_schema") or None,
        opts.get("version_table") or "alembic_version",
    )
    if (schema, table.name) == version:
        return None
    if not filters.name(table.name, "table", {"schema_name": schema}):
        return None
    if not filters.obj(table, table.name, "table"):
        return None
    key_db = (schema or db.default_schema, table.name)
    key_models = (schema or models.default_schema, table.name)
    if key_db not in db.tables or key_models not in models.tables:
        return None
    return TableRef(table.fullname, table.name, table.schema)


def _key(ref: TableRef, snap: Snapshot) -> tuple[str, str]:
    return (ref.schema or snap.default_schema, ref.name)


def _table_findings(
    ref: TableRef, table: Any, filters: _Filters, db: Snapshot, models: Snapshot
) -> Iterator[_Found]:
    kdb, km = _key(ref, db), _key(ref, models)
    parents = {"table_name": ref.name, "schema_name": ref.schema,
               "schema_qualified_table_name": ref.fullname}  # fmt: skip
    if db.tables[kdb] != models.tables[km]:
        yield _finding(
            ref,
            render.table_comment_change(ref, db.tables[kdb], models.tables[km]),
            undo=render.table_comment_change(ref, models.tables[km], db.tables[kdb]),
        )
    db_cols, m_cols = db.columns.get(kdb, {}), models.columns.get(km, {})
    for name in _included_columns(ref, table, filters, db, models):
        d_col, m_col = db_cols[name], m_cols[name]
        d_seq, m_seq = db.sequences.get((*kdb, name)), models.sequences.get((*km, name))
        changes = render.column_changes(ref, d_col, m_col, d_seq, m_seq)
        # The same column rendered the other way round: each kind's reverse, for downgrade().
        undos = {c.kind: c for c in render.column_changes(ref, m_col, d_col, m_seq, d_seq)}
        yield from (_finding(ref, c, undo=undos.get(c.kind)) for c in changes)
    explicit = _explicit_names(table)
    yield from _object_findings(
        ref, table, filters, parents, explicit,
        db.constraints.get(kdb, []), models.constraints.get(km, []),
    )  # fmt: skip
    yield from _object_findings(
        ref, table, filters, parents, explicit | {i.name for i in models.indexes.get(km, [])},
        db.indexes.get(kdb, []), models.indexes.get(km, []),
    )  # fmt: skip


def _included_columns(
    ref: TableRef, table: Any, filters: _Filters, db: Snapshot, models: Snapshot
) -> list[str]:
    """Columns on both sides that env.py's filters let through, in the models' order."""
    parents = {"table_name": ref.name, "schema_name": ref.schema,
               "schema_qualified_table_name": ref.fullname}  # fmt: skip
    by_name = {c.name: c for c in table.columns}  # table.c is keyed by key, not name
    db_cols, m_cols = db.columns.get(_key(ref, db), {}), models.columns.get(_key(ref, models), {})
    return [
        name
        for name, _col in sorted(m_cols.items(), key=lambda kv: kv[1].position)
        if name in db_cols
        and filters.name(name, "column", parents)
        and filters.obj(by_name.get(name), name, "column")
    ]


def _explicit_names(table: Any) -> set[str]:
    """Names the models chose (or a naming convention did), rather than PostgreSQL."""
    names = {c.name for c in table.constraints if isinstance(c.name, str)}
    return names | {i.name for i in table.indexes if isinstance(i.name, str)}


_Obj = Constraint | Index


def _identity(o: _Obj) -> tuple[str, str]:
    return (o.type if isinstance(o, Constraint) else "i", o.definition)


def _match(dbs: list[_Obj], ms: list[_Obj]) -> list[tuple[_Obj | None, _Obj | None]]:
    """Pair objects: same name and definition, then same definition, then same name.

    Definition before name: PostgreSQL names unnamed constraints in creation order
    (``t_check``, ``t_check1``), which a revision and ``create_all()`` need not share.
    """
    db_left, m_left = list(dbs), list(ms)
    pairs: list[tuple[_Obj | None, _Obj | None]] = []
    tests: list[Callable[[_Obj, _Obj], bool]] = [
        lambda d, m: d.name == m.name and _identity(d) == _identity(m),
        lambda d, m: _identity(d) == _identity(m),
        lambda d, m: d.name == m.name and _identity(d)[0] == _identity(m)[0],
        # A table has one primary key, whatever either side calls it.
        lambda d, m: _identity(d)[0] == _identity(m)[0] == "p",
    ]
    for test in tests:
        for m in list(m_left):
            d = next((d for d in db_left if test(d, m)), None)
            if d is not None:
                pairs.append((d, m))
                db_left.remove(d)
                m_left.remove(m)
    pairs += [(d, None) for d in db_left]
    pairs += [(None, m) for m in m_left]
    return pairs


_FILTER_TYPES = {"u": "unique_constraint", "f": "foreign_key_constraint", "i": "index"}


def _object_findings(
    ref: TableRef,
    table: Any,
    filters: _Filters,
    parents: dict[str, Any],
    explicit: set[str],
    dbs: list[Any],
    ms: list[Any],
) -> Iterator[_Found]:
    for d, m in _match(dbs, ms):
        same = d is not None and m is not None and d.definition == m.definition
        if (
            same
            and d is not None
            and m is not None
            and (d.name == m.name or m.name not in explicit)
        ):
            continue  # equal, or only PostgreSQL's generated name differs
        some = m if m is not None else d
        assert some is not None
        type_ = _FILTER_TYPES.get(_identity(some)[0])
        if type_ is not None:
            if not filters.name(some.name, type_, parents):
                continue
            if m is not None and not filters.obj(_metadata_object(table, m.name), m.name, type_):
                continue
        if isinstance(some, Index):
            change = render.index_change(ref, d, m)  # type: ignore[arg-type]
            undo = render.index_change(ref, m, d)  # type: ignore[arg-type]
        else:
            change = render.constraint_change(ref, d, m)  # type: ignore[arg-type]
            undo = render.constraint_change(ref, m, d)  # type: ignore[arg-type]
        first = some.columns[0] if some.columns else None
        yield _finding(ref, change, first_column=first, undo=undo)


def _metadata_object(table: Any, name: str) -> Any:
    for obj in [*table.constraints, *table.indexes]:
        if obj.name == name:
            return obj
    return None


def _enum_findings(
    compared: list[tuple[TableRef, Any]], filters: _Filters, db: Snapshot, models: Snapshot
) -> Iterator[_Found]:
    """ENUM types the compared columns use, label by label in order."""
    used: dict[tuple[str, str], tuple[TableRef, str]] = {}
    for ref, table in compared:
        m_cols = models.columns.get(_key(ref, models), {})
        for name in _included_columns(ref, table, filters, db, models):
            enum = m_cols[name].enum
            if enum is not None:
                used.setdefault(enum, (ref, name))
    for key, (ref, column) in sorted(used.items()):
        db_key = (db.default_schema if key[0] == models.default_schema else key[0], key[1])
        labels_db, labels_m = db.enums.get(db_key), models.enums.get(key)
        if labels_db is None or labels_m is None or labels_db == labels_m:
            continue
        users = [
            (TableRef(f"{s}.{t}" if s != db.default_schema else t, t,
                      None if s == db.default_schema else s), c.name)
            for (s, t), cols in sorted(db.columns.items())
            for c in cols.values()
            if c.enum == db_key
        ]  # fmt: skip
        schema = None if key[0] == models.default_schema else key[0]
        change = render.enum_change(schema, key[1], labels_db, labels_m, users)
        undo = render.enum_change(schema, key[1], labels_m, labels_db, users)
        yield _finding(ref, change, first_column=column, undo=undo)


# A finding and the column that locates it (a constraint's or index's first column).
_Found = tuple[Finding, str | None]


def _finding(
    ref: TableRef, change: Change, first_column: str | None = None, undo: Change | None = None
) -> _Found:
    return Finding(
        kind=change.kind,
        table=ref.fullname,
        message=change.message,
        column=change.column,
        name=change.name,
        op=change.op,
        source="catalog",
        in_database=change.in_database,
        in_models=change.in_models,
        undo=undo.op if undo is not None else "",
    ), first_column or change.column


def _new_only(found: list[_Found], first: list[Finding]) -> list[_Found]:
    """Drop what autogenerate already reported for the same table, column or object."""
    tables = {f.table for f in first if f.kind in ("add_table", "remove_table")}
    columns = {(f.table, f.column) for f in first if f.column}
    names = {(f.table, f.name) for f in first if f.name}
    kinds = {(f.table, f.kind) for f in first}
    family_cols = {(f.table, f.kind, f.column) for f in first if f.column}
    out = []
    for f, where in found:
        if f.table in tables or (f.column and (f.table, f.column) in columns):
            continue
        if f.name and (f.table, f.name) in names:
            continue
        if f.kind == "modify_table_comment" and (f.table, f.kind) in kinds:
            continue
        family = next((k for k, v in _FAMILY_KINDS.items() if f.kind in v), None)
        if family is not None and any(
            (f.table, k, where) in family_cols for k in _FAMILY_KINDS[family]
        ):
            continue
        out.append((f, where))
    return out


def _located(
    found: list[_Found], target: Any, compared: list[tuple[TableRef, Any]]
) -> list[Finding]:
    from migration_check.ops import _class_location, _Locator

    locator = _Locator(target)
    enum_classes: dict[str, Any] = {}
    for _ref, table in compared:
        for col in table.columns:
            kind = getattr(col.type, "item_type", col.type)
            if getattr(kind, "enum_class", None) is not None and isinstance(kind.name, str):
                enum_classes.setdefault(kind.name, kind.enum_class)
    out = []
    for f, where in found:
        location = None
        if f.kind.endswith(("enum_value", "_enum")) and f.name:
            cls = enum_classes.get(f.name.rsplit(".", 1)[-1].strip('"'))
            location = _class_location(cls) if cls is not None else None
        if location is None:
            location = locator.find(f.table, where)
        out.append(dataclasses.replace(f, location=location))
    return out

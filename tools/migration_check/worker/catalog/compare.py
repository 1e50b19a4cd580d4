"""Second opinion: the migrated database against one ``create_all()`` built, via the catalog.

Autogenerate compares reflected objects with the models, and cannot see some changes at all:
CHECK constraints, ENUM labels, a primary key that moves, a partial index's WHERE clause, a
``Computed`` expression, identity options. Here PostgreSQL builds the models into a second
database (worker/catalog/modelsdb.py) and both are read through the same catalog queries
(worker/catalog/sql.py), so each side is printed by PostgreSQL itself and formatting noise
cannot differ. Only tables present on both sides are compared (a table added or removed is
autogenerate's finding), through env.py's own ``include_schemas``, ``include_name`` and
``include_object`` called as autogenerate calls them (worker/catalog/filters.py), with the
comparison env.py chose (server defaults only under ``compare_server_default``), and nothing
autogenerate already reported for the same object is repeated.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from migration_check.findings import Finding
from migration_check.worker.catalog import render
from migration_check.worker.catalog.filters import EnvFilters, Reflector
from migration_check.worker.catalog.modelsdb import ModelsDatabase
from migration_check.worker.catalog.modelsdb_partial import Skipped
from migration_check.worker.catalog.objects import Candidate, object_candidates
from migration_check.worker.catalog.render import Change, TableRef
from migration_check.worker.catalog.sql import Snapshot, read_snapshot

__all__ = ["compare_catalog", "metadatas_of"]

# Autogenerate kinds that cover a catalog finding of the same family on the same table.
_FAMILY_KINDS = {
    "fk": {"add_fk", "remove_fk", "modify_fk"},
    "unique": {"add_unique", "remove_unique", "modify_unique"},
    "index": {"add_index", "remove_index", "modify_index"},
}
_UNIQUE = _FAMILY_KINDS["unique"]


def compare_catalog(
    models_db: ModelsDatabase, url: str, seen: dict[str, Any], first: list[Finding]
) -> list[Finding]:
    """Build the models' database, compare both catalogs, return what autogenerate missed.

    ``seen`` holds what env.py configured (``compare_autogenerate(seen=...)``): the target
    metadata and the filters. Raises ``SkipCatalog`` when the models cannot be built, and
    ``Failure`` when one of env.py's filters raises.
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
            _leave_out(db, models_db.skipped)
            with models_db.engine().connect() as conn:
                models = read_snapshot(conn)
            filters = EnvFilters(opts, Reflector(migrated))
            compared: list[tuple[TableRef, Any]] = []
            found: list[_Found] = []
            for table in (t for md in metadatas for t in md.tables.values()):
                ref = _compared(table, filters, opts, db, models)
                if ref is not None:
                    compared.append((ref, table))
                    found.extend(_table_findings(ref, table, filters, opts, db, models))
            found.extend(_enum_findings(compared, filters, db, models))
            found = [f for f in _new_only(found, first) if not _same_default(models_db, f.finding)]
            kept = _admitted(found, filters)
    finally:
        engine.dispose()
    return _located(kept, opts.get("target_metadata"), compared)


def _leave_out(db: Snapshot, skipped: list[Skipped]) -> None:
    """What create_all() could not build is compared on neither side (it is named on stderr):
    the database's copy must not read as removed from the models."""
    for s in skipped:
        if s.table is None or s.code not in _LEFT_OUT_CODES:
            continue  # a table: absent from the models' database, so not compared at all
        key = (s.table[0] or db.default_schema, s.table[1])
        if s.code == "i":
            db.indexes[key] = [r for r in db.indexes.get(key, []) if not s.covers(r, "i")]
        else:
            db.constraints[key] = [
                r for r in db.constraints.get(key, []) if not s.covers(r, r.type)
            ]


_LEFT_OUT_CODES = frozenset({"i", "f", "u", "c", "p"})


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


# A finding, the column that locates it (a constraint's or index's first column), the table
# it belongs to, and env.py's ``include_object`` for it given the reflected table.
@dataclasses.dataclass(frozen=True)
class _Found:
    finding: Finding
    where: str | None
    ref: TableRef
    table: Any
    admit: Callable[[Any], bool]
    schema: str | None  # as autogenerate names it to the filters: None for the default
    # False: ``admit`` judges the tables itself (an ENUM, used by columns of several tables).
    gated: bool = True


def _compared(
    table: Any, filters: EnvFilters, opts: dict[str, Any], db: Snapshot, models: Snapshot
) -> TableRef | None:
    """The table, when both sides have it and env.py's names let it through (its object
    filter needs the reflected table: ``_admitted`` calls it, only for tables with findings)."""
    schema = None if table.schema in (None, db.default_schema) else table.schema
    if schema is not None and not opts.get("include_schemas", False):
        return None
    # Autogenerate runs the schema filter even without include_schemas (on None).
    if not filters.name(schema, "schema", {}):
        return None
    version = (
        opts.get("version_table_schema") or None,
        opts.get("version_table") or "alembic_version",
    )
    if (schema, table.name) == version:
        return None
    if not filters.name(table.name, "table", {"schema_name": schema}):
        return None
    key_db = (schema or db.default_schema, table.name)
    key_models = (schema or models.default_schema, table.name)
    if key_db not in db.tables or key_models not in models.tables:
        return None
    return TableRef(table.fullname, table.name, table.schema)


def _key(ref: TableRef, snap: Snapshot) -> tuple[str, str]:
    return (ref.schema or snap.default_schema, ref.name)


def _schema(ref: TableRef, db: Snapshot) -> str | None:
    """The table's schema as autogenerate hands it to env.py's filters: None for the default."""
    return None if ref.schema in (None, db.default_schema) else ref.schema


def _column_admit(table: Any, filters: EnvFilters, name: str) -> Callable[[Any], bool]:
    def admit(conn_table: Any) -> bool:
        by_name = {c.name: c for c in table.columns}  # table.c is keyed by key, not name
        conn_col = conn_table.c.get(name) if conn_table is not None else None
        if by_name.get(name) is None:
            return True  # not a column of the model's Table (a DDL listener's): nothing to hand
        return filters.obj(by_name.get(name), name, "column", reflected=False, compare_to=conn_col)

    return admit


def _always(conn_table: Any) -> bool:
    return True


def _table_findings(
    ref: TableRef,
    table: Any,
    filters: EnvFilters,
    opts: dict[str, Any],
    db: Snapshot,
    models: Snapshot,
) -> Iterator[_Found]:
    kdb, km = _key(ref, db), _key(ref, models)
    schema = _schema(ref, db)
    if db.tables[kdb] != models.tables[km]:
        change = render.table_comment_change(ref, db.tables[kdb], models.tables[km])
        undo = render.table_comment_change(ref, models.tables[km], db.tables[kdb])
        yield _found(ref, schema, table, Candidate(change, undo, None, _always))
    db_cols, m_cols = db.columns.get(kdb, {}), models.columns.get(km, {})
    # Server defaults only where env.py asked autogenerate to compare them (Alembic's default
    # is not to: a revision's backfill default is then no drift).
    defaults = bool(opts.get("compare_server_default"))
    for name in _included_columns(ref, filters, db, models):
        d_col, m_col = db_cols[name], m_cols[name]
        d_seq, m_seq = db.sequences.get((*kdb, name)), models.sequences.get((*km, name))
        changes = render.column_changes(ref, d_col, m_col, d_seq, m_seq)
        # The same column rendered the other way round: each kind's reverse, for downgrade().
        undos = {c.kind: c for c in render.column_changes(ref, m_col, d_col, m_seq, d_seq)}
        admit = _column_admit(table, filters, name)
        for c in changes:
            if c.kind == "modify_default" and not defaults:
                continue
            yield _found(ref, schema, table, Candidate(c, undos.get(c.kind), None, admit))
    explicit = _explicit_names(table, filters)
    for dbs, ms, names in (
        (db.constraints.get(kdb, []), models.constraints.get(km, []), explicit),
        (db.indexes.get(kdb, []), models.indexes.get(km, []),
         explicit | {i.name for i in models.indexes.get(km, [])}),
    ):  # fmt: skip
        parents = {"table_name": ref.name, "schema_name": schema}
        for cand in object_candidates(ref, table, filters, parents, names, dbs, ms):  # type: ignore[arg-type]
            yield _found(ref, schema, table, cand)


def _included_columns(
    ref: TableRef, filters: EnvFilters, db: Snapshot, models: Snapshot
) -> list[str]:
    """Columns on both sides whose reflected name env.py's ``include_name`` lets through, in
    the models' order (``include_object`` needs the reflected column: ``_admitted``)."""
    parents = {"table_name": ref.name, "schema_name": _schema(ref, db)}
    db_cols, m_cols = db.columns.get(_key(ref, db), {}), models.columns.get(_key(ref, models), {})
    return [
        name
        for name, _col in sorted(m_cols.items(), key=lambda kv: kv[1].position)
        if name in db_cols and filters.name(name, "column", parents)
    ]


def _explicit_names(table: Any, filters: EnvFilters) -> set[str]:
    """Names the models chose (or a naming convention did), rather than PostgreSQL."""
    names = {filters.final_name(c) for c in [*table.constraints, *table.indexes]}
    return {n for n in names if n}


def _enum_findings(
    compared: list[tuple[TableRef, Any]], filters: EnvFilters, db: Snapshot, models: Snapshot
) -> Iterator[_Found]:
    """ENUM types the compared columns use, label by label in order.

    A type is reported when a column that uses it passes env.py's filters (autogenerate
    filters no type: it reaches a type only through its columns).
    """
    used: dict[tuple[str, str], list[tuple[TableRef, str | None, Any, str]]] = {}
    for ref, table in compared:
        m_cols = models.columns.get(_key(ref, models), {})
        for name in _included_columns(ref, filters, db, models):
            enum = m_cols[name].enum
            if enum is not None:
                used.setdefault(enum, []).append((ref, _schema(ref, db), table, name))
    for key, users_m in sorted(used.items(), key=lambda kv: kv[0]):
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
        ref, user_schema, table, column = users_m[0]
        cand = Candidate(change, undo, column, _enum_admit(filters, users_m))
        yield dataclasses.replace(_found(ref, user_schema, table, cand), gated=False)


def _enum_admit(
    filters: EnvFilters, users: list[tuple[TableRef, str | None, Any, str]]
) -> Callable[[Any], bool]:
    def admit(conn_table: Any) -> bool:
        for i, (ref, schema, table, column) in enumerate(users):
            # The first user's table is the one _admitted reflected; the others' on demand.
            conn = conn_table if i == 0 else _reflect(filters, ref.name, schema)
            if _table_admitted(filters, table, ref, conn) and _column_admit(table, filters, column)(
                conn
            ):
                return True
        return False

    return admit


def _found(ref: TableRef, schema: str | None, table: Any, cand: Candidate) -> _Found:
    change: Change = cand.change
    finding = Finding(
        kind=change.kind,
        table=ref.fullname,
        message=change.message,
        column=change.column,
        name=change.name,
        op=change.op,
        source="catalog",
        in_database=change.in_database,
        in_models=change.in_models,
        undo=cand.undo.op if cand.undo is not None else "",
    )
    return _Found(finding, cand.first_column or change.column, ref, table, cand.admit, schema)


def _reflect(filters: EnvFilters, name: str, schema: str | None) -> Any:
    """The migrated database's table as autogenerate reflects it; None without an object
    filter to hand it to (reflection is the cost of ``include_object``, and only then paid)."""
    if not filters.has_object_filter or filters.reflector is None:
        return None
    with warnings.catch_warnings():
        # Autogenerate reflected the same table and warned already, if at all.
        warnings.simplefilter("ignore")
        return filters.reflector.table(name, schema)


def _table_admitted(filters: EnvFilters, table: Any, ref: TableRef, conn_table: Any) -> bool:
    return filters.obj(table, ref.name, "table", reflected=False, compare_to=conn_table)


def _admitted(found: list[_Found], filters: EnvFilters) -> list[tuple[Finding, str | None]]:
    """What env.py's ``include_object`` keeps: the table first, then the object itself."""
    verdicts: dict[str, tuple[bool, Any]] = {}
    out = []
    for f in found:
        if f.ref.fullname not in verdicts:
            conn_table = _reflect(filters, f.ref.name, f.schema)
            ok = _table_admitted(filters, f.table, f.ref, conn_table)
            verdicts[f.ref.fullname] = (ok, conn_table)
        ok, conn_table = verdicts[f.ref.fullname]
        if (ok or not f.gated) and f.admit(conn_table):
            out.append((f.finding, f.where))
    return out


def _new_only(found: list[_Found], first: list[Finding]) -> list[_Found]:
    """Drop what autogenerate already reported for the same table, column or object."""
    tables = {f.table for f in first if f.kind in ("add_table", "remove_table")}
    # A unique constraint's column says only which one it is on (an unnamed one has no other
    # name): it matches the catalog's finding for that constraint below, not every finding of
    # the column.
    columns = {(f.table, f.column) for f in first if f.column and f.kind not in _UNIQUE}
    names = {(f.table, f.name) for f in first if f.name}
    kinds = {(f.table, f.kind) for f in first}
    family_cols = {(f.table, f.kind, f.column) for f in first if f.column}
    out = []
    for item in found:
        f, where = item.finding, item.where
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
        out.append(item)
    return out


def _located(
    found: list[tuple[Finding, str | None]], target: Any, compared: list[tuple[TableRef, Any]]
) -> list[Finding]:
    from migration_check.worker.autogenerate.locate import Locator, class_location

    locator = Locator(target)
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
            location = class_location(cls) if cls is not None else None
        if location is None:
            location = locator.find(f.table, where)
        out.append(dataclasses.replace(f, location=location))
    return out

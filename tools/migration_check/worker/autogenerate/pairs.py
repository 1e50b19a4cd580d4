"""A drop and a create of one object, read as the one change they are.

Autogenerate changes a foreign key's rules or an index's columns by dropping and re-creating
it; a reviewer reads "ON DELETE CASCADE in the database, RESTRICT in the models", not a
constraint "gone from the models" next to one "no revision creates". Runs in the worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from migration_check.findings import Finding

__all__ = ["Pair", "describe_pair", "pair_ops"]


@dataclass(frozen=True)
class Pair:
    """The drop (database side) and the create (models side) of one object on one table."""

    drop: Any
    create: Any
    wrapper: Any  # the enclosing ModifyTableOps, or None


def pair_ops(items: list[tuple[Any, Any]]) -> tuple[list[Pair], list[tuple[Any, Any]]]:
    """Split ``(op, wrapper)`` items into pairs and the ops left alone.

    Pairs by name first; then, when the models leave the object unnamed (no naming
    convention: the database has PostgreSQL's generated name), by what identifies it on the
    table (a foreign key's own columns, an index's or unique constraint's set of columns), only
    when that match is one to one. Two objects both named, under different names, stay two
    findings: each name is one the catalog comparison matches on.
    """
    from alembic.operations import ops as o

    fk_drops, fk_creates, ix_drops, ix_creates = [], [], [], []
    uq_drops, uq_creates = [], []
    for item in items:
        op = item[0]
        if isinstance(op, o.CreateForeignKeyOp):
            fk_creates.append(item)
        elif isinstance(op, o.CreateUniqueConstraintOp):
            uq_creates.append(item)
        elif isinstance(op, o.DropConstraintOp) and isinstance(op._reverse, o.CreateForeignKeyOp):
            fk_drops.append(item)
        elif isinstance(op, o.DropConstraintOp) and isinstance(
            op._reverse, o.CreateUniqueConstraintOp
        ):
            uq_drops.append(item)
        elif isinstance(op, o.CreateIndexOp):
            ix_creates.append(item)
        elif isinstance(op, o.DropIndexOp) and isinstance(op._reverse, o.CreateIndexOp):
            ix_drops.append(item)
    pairs = [
        *_match(fk_drops, fk_creates, _fk_table, _fk_keys),
        *_match(ix_drops, ix_creates, _ix_table, _ix_keys),
        *_match(uq_drops, uq_creates, _ix_table, _uq_keys),
    ]
    used = {id(p.drop) for p in pairs} | {id(p.create) for p in pairs}
    return pairs, [item for item in items if id(item[0]) not in used]


def _match(
    drops: list[tuple[Any, Any]],
    creates: list[tuple[Any, Any]],
    table: Any,
    keys: Any,
) -> Iterator[Pair]:
    """One-to-one matches within one table, by each key in turn (the name first)."""
    drops, creates = list(drops), list(creates)
    for rank in range(2):
        drop_groups = _group(drops, table, keys, rank, database=True)
        create_groups = _group(creates, table, keys, rank, database=False)
        for key, found in drop_groups.items():
            rivals = create_groups.get(key, [])
            if len(found) == 1 and len(rivals) == 1:
                drops.remove(found[0])
                creates.remove(rivals[0])
                yield Pair(found[0][0], rivals[0][0], rivals[0][1] or found[0][1])


def _group(
    items: list[tuple[Any, Any]], table: Any, keys: Any, rank: int, *, database: bool
) -> dict[tuple[Any, Any], list[tuple[Any, Any]]]:
    groups: dict[tuple[Any, Any], list[tuple[Any, Any]]] = {}
    for item in items:
        value = keys(item[0], database=database)[rank]
        if value is not None:
            groups.setdefault((table(item[0]), value), []).append(item)
    return groups


def _fk_table(op: Any) -> tuple[str | None, str]:
    if hasattr(op, "source_table"):
        return op.kw.get("source_schema"), op.source_table
    return op.schema, op.table_name


def _keys(name: str | None, shape: Any, *, database: bool) -> tuple[Any, Any]:
    """The name, then the shape; the models' side offers its shape only when unnamed."""
    return name, shape if database or name is None else None


def _fk_keys(op: Any, *, database: bool) -> tuple[Any, Any]:
    fk = op._reverse if database else op
    return _keys(_str_name(fk.constraint_name), tuple(fk.local_cols), database=database)


def _ix_table(op: Any) -> tuple[str | None, str]:
    return op.schema, op.table_name


def _ix_keys(op: Any, *, database: bool) -> tuple[Any, Any]:
    ix = op._reverse if database else op
    cols = _columns(ix)
    # By shape, only a reordering pairs: other changes are two findings honestly.
    shape = (frozenset(cols), _unique(ix), len(cols))
    return _keys(_str_name(ix.index_name), shape, database=database)


def _uq_keys(op: Any, *, database: bool) -> tuple[Any, Any]:
    uq = op._reverse if database else op
    cols = _columns(uq)
    return _keys(_str_name(uq.constraint_name), (frozenset(cols), len(cols)), database=database)


def _str_name(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _unique(ix: Any) -> bool:
    return bool(getattr(ix, "unique", False) or ix.kw.get("unique"))


def _columns(ix: Any) -> list[str]:
    return [getattr(col, "name", None) or str(col) for col in ix.columns]


def describe_pair(pair: Pair, table: str | None, dialect: Any) -> Finding:
    """One finding for a pair: what differs, both sides as PostgreSQL would print them."""
    from alembic.operations import ops as o

    if isinstance(pair.create, o.CreateForeignKeyOp):
        return _describe_fk(pair.drop._reverse, pair.create, table, dialect)
    if isinstance(pair.create, o.CreateUniqueConstraintOp):
        return _describe_unique(pair.drop._reverse, pair.create, table, dialect)
    return _describe_index(pair.drop._reverse, pair.create, table, dialect)


def _rule(value: str | None) -> str:
    return (value or "NO ACTION").upper()


def _deferral(fk: Any) -> str:
    if not fk.kw.get("deferrable"):
        return "NOT DEFERRABLE"
    initially = (fk.kw.get("initially") or "IMMEDIATE").upper()
    return f"DEFERRABLE INITIALLY {initially}"


def _fk_definition(fk: Any, dialect: Any) -> str:
    """As ``pg_get_constraintdef`` prints it: defaults (NO ACTION, MATCH SIMPLE) left out."""
    quote = dialect.identifier_preparer.quote
    local = ", ".join(quote(c) for c in fk.local_cols)
    text = f"FOREIGN KEY ({local}) REFERENCES {_referent(fk, dialect)}"
    match = (fk.kw.get("match") or "").upper()
    if match and match != "SIMPLE":
        text += f" MATCH {match}"
    if _rule(fk.kw.get("onupdate")) != "NO ACTION":
        text += f" ON UPDATE {_rule(fk.kw.get('onupdate'))}"
    if _rule(fk.kw.get("ondelete")) != "NO ACTION":
        text += f" ON DELETE {_rule(fk.kw.get('ondelete'))}"
    deferral = _deferral(fk)
    if deferral != "NOT DEFERRABLE":
        text += " " + deferral.removesuffix(" INITIALLY IMMEDIATE")
    return text


def _referent(fk: Any, dialect: Any) -> str:
    quote = dialect.identifier_preparer.quote
    schema = fk.kw.get("referent_schema")
    table = f"{quote(schema)}.{quote(fk.referent_table)}" if schema else quote(fk.referent_table)
    return f"{table}({', '.join(quote(c) for c in fk.remote_cols)})"


def _describe_fk(db: Any, models: Any, table: str | None, dialect: Any) -> Finding:
    db_name, name = _str_name(db.constraint_name), _str_name(models.constraint_name)

    def side(label: str, before: str, after: str) -> list[str]:
        if before == after:
            return []
        return [f"{label}{before} in the database, {after} in the models"]

    parts = [
        *side("columns ", f"({', '.join(db.local_cols)})", f"({', '.join(models.local_cols)})"),
        *side("references ", _referent(db, dialect), _referent(models, dialect)),
        *side(
            "MATCH ",
            (db.kw.get("match") or "SIMPLE").upper(),
            (models.kw.get("match") or "SIMPLE").upper(),
        ),
        *side("ON UPDATE ", _rule(db.kw.get("onupdate")), _rule(models.kw.get("onupdate"))),
        *side("ON DELETE ", _rule(db.kw.get("ondelete")), _rule(models.kw.get("ondelete"))),
        *side("", _deferral(db), _deferral(models)),
    ]
    in_database, in_models = _fk_definition(db, dialect), _fk_definition(models, dialect)
    if not parts:  # an option this reading does not know, such as a dialect keyword
        parts = [f"{in_database} in the database, {in_models} in the models"]
    if db_name and name and db_name != name:
        parts.insert(0, f"name {db_name} in the database, {name} in the models")
    return Finding(
        "modify_fk",
        table,
        f"foreign key {db_name or name or ''}: {'; '.join(parts)}".replace(" :", ":"),
        column=models.local_cols[0] if len(models.local_cols) == 1 else None,
        # The catalog's second opinion matches constraints by name: the database's one.
        name=db_name or name,
        in_database=in_database,
        in_models=in_models,
    )


def _index_definition(ix: Any, dialect: Any) -> str:
    from sqlalchemy.schema import CreateIndex

    try:
        return str(CreateIndex(ix.to_index()).compile(dialect=dialect))
    except Exception:  # an expression only the database could render
        unique = "UNIQUE " if _unique(ix) else ""
        columns = ", ".join(_columns(ix))
        return f"CREATE {unique}INDEX {ix.index_name} ON {ix.table_name} ({columns})"


def _name_and_columns(db_name: str | None, name: str | None, db: Any, models: Any) -> list[str]:
    """What differs in the name and the columns, the parts an index and a UNIQUE share."""
    db_cols, cols = _columns(db), _columns(models)
    parts: list[str] = []
    if db_name and name and db_name != name:
        parts.append(f"name {db_name} in the database, {name} in the models")
    if db_cols != cols:
        label = "column order is" if sorted(db_cols) == sorted(cols) else "columns"
        parts.append(
            f"{label} ({', '.join(db_cols)}) in the database, ({', '.join(cols)}) in the models"
        )
    return parts


def _unique_definition(uq: Any, dialect: Any) -> str:
    """As ``pg_get_constraintdef`` prints it."""
    quote = dialect.identifier_preparer.quote
    nulls = " NULLS NOT DISTINCT" if uq.kw.get("postgresql_nulls_not_distinct") else ""
    return f"UNIQUE{nulls} ({', '.join(quote(c) for c in _columns(uq))})"


def _describe_unique(db: Any, models: Any, table: str | None, dialect: Any) -> Finding:
    db_name, name = _str_name(db.constraint_name), _str_name(models.constraint_name)
    parts = _name_and_columns(db_name, name, db, models)
    in_database, in_models = _unique_definition(db, dialect), _unique_definition(models, dialect)
    if not parts:  # NULLS NOT DISTINCT, or an option this reading does not know
        parts = [f"{in_database} in the database, {in_models} in the models"]
    return Finding(
        "modify_unique",
        table,
        f"unique constraint {db_name or name or ''}: {'; '.join(parts)}".replace(" :", ":"),
        name=db_name or name,
        in_database=in_database,
        in_models=in_models,
    )


def _describe_index(db: Any, models: Any, table: str | None, dialect: Any) -> Finding:
    db_name, name = _str_name(db.index_name), _str_name(models.index_name)
    parts = _name_and_columns(db_name, name, db, models)
    if _unique(db) != _unique(models):
        parts.append(
            "unique in the database, not in the models"
            if _unique(db)
            else "not unique in the database, unique in the models"
        )
    in_database, in_models = _index_definition(db, dialect), _index_definition(models, dialect)
    if not parts:  # a WHERE clause, a method, an expression: both definitions say it
        parts = [f"{in_database} in the database, {in_models} in the models"]
    return Finding(
        "modify_index",
        table,
        f"index {db_name or name or ''}: {'; '.join(parts)}".replace(" :", ":"),
        # The catalog's second opinion matches indexes by name: the database's one.
        name=db_name or name,
        in_database=in_database,
        in_models=in_models,
    )

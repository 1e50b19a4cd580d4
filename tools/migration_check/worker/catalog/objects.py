"""Constraints and indexes of one table, paired across both catalogs and filtered as autogenerate.

Pairs come from the catalog rows (worker/catalog/sql.py); what env.py's ``include_object``
says about each is decided later, and only for the pairs that differ, because it needs the
reflected object (worker/catalog/filters.py): ``Candidate.admit`` takes the reflected table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from migration_check.worker.catalog import render
from migration_check.worker.catalog.filters import FILTER_TYPES, EnvFilters
from migration_check.worker.catalog.render import Change, TableRef
from migration_check.worker.catalog.sql import Constraint, Index

__all__ = ["Candidate", "canonical", "match", "object_candidates"]

_Obj = Constraint | Index


@dataclass(frozen=True)
class Candidate:
    """A difference found in the catalogs, before env.py's ``include_object`` has judged it."""

    change: Change
    undo: Change | None
    first_column: str | None
    # (the migrated database's table as SQLAlchemy reflects it, or None) -> include it?
    admit: Callable[[Any], bool]


_COLUMN_LIST = re.compile(r"\(([^()]*)\)")


def canonical(o: _Obj) -> tuple[str, str]:
    """What makes two objects the same: a UNIQUE constraint's columns are a set.

    Alembic compares unique constraints by their sorted column names (``_uq_constraint_sig``),
    so ``UNIQUE (b, a)`` in a revision and ``UniqueConstraint("a", "b")`` are no drift.
    """
    if isinstance(o, Index):
        return ("i", o.definition)
    if o.type != "u":
        return (o.type, o.definition)

    def sort(m: re.Match[str]) -> str:
        return "(" + ", ".join(sorted(m.group(1).split(", "))) + ")"

    return ("u", _COLUMN_LIST.sub(sort, o.definition, count=1))


def match(dbs: list[_Obj], ms: list[_Obj]) -> list[tuple[_Obj | None, _Obj | None]]:
    """Pair objects: same name and definition, then same definition, then same name.

    Definition before name: PostgreSQL names unnamed constraints in creation order
    (``t_check``, ``t_check1``), which a revision and ``create_all()`` need not share.
    """
    db_left, m_left = list(dbs), list(ms)
    pairs: list[tuple[_Obj | None, _Obj | None]] = []
    tests: list[Callable[[_Obj, _Obj], bool]] = [
        lambda d, m: d.name == m.name and canonical(d) == canonical(m),
        lambda d, m: canonical(d) == canonical(m),
        lambda d, m: d.name == m.name and canonical(d)[0] == canonical(m)[0],
        # A table has one primary key, whatever either side calls it.
        lambda d, m: canonical(d)[0] == canonical(m)[0] == "p",
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


def _code(o: _Obj) -> str:
    return o.type if isinstance(o, Constraint) else "i"


def object_candidates(
    ref: TableRef,
    table: Any,
    filters: EnvFilters,
    parents: dict[str, Any],
    explicit: set[str],
    dbs: list[_Obj],
    ms: list[_Obj],
) -> Iterator[Candidate]:
    """Every pair that differs; the database's names first pass ``include_name``, as reflected
    names do in autogenerate (an object it hides reads as absent from the database)."""
    dbs = [d for d in dbs if filters.name(d.name, FILTER_TYPES[_code(d)], parents)]
    for d, m in match(dbs, ms):
        if (
            d is not None
            and m is not None
            and canonical(d) == canonical(m)
            and (d.name == m.name or m.name not in explicit)
        ):
            continue  # equal, or only PostgreSQL's generated name differs
        if isinstance(d or m, Index):
            change = render.index_change(ref, d, m)  # type: ignore[arg-type]
            undo = render.index_change(ref, m, d)  # type: ignore[arg-type]
        else:
            change = render.constraint_change(ref, d, m)  # type: ignore[arg-type]
            undo = render.constraint_change(ref, m, d)  # type: ignore[arg-type]
        some = m if m is not None else d
        assert some is not None
        first = some.columns[0] if some.columns else None
        yield Candidate(change, undo, first, _admit_pair(table, filters, d, m))


def _admit_pair(
    table: Any, filters: EnvFilters, d: _Obj | None, m: _Obj | None
) -> Callable[[Any], bool]:
    """``include_object`` for a pair, with the arguments autogenerate would pass.

    Only the database has it: the reflected object, ``reflected=True``. Only the models: the
    model object, ``reflected=False``. Both, one name (or the table's one primary key): the
    model object with the reflected one as ``compare_to``, as for a changed index. Both under
    two names: autogenerate sees a removal and an addition, so both calls must include it.
    """
    type_ = FILTER_TYPES[_code(d or m)]  # type: ignore[arg-type]

    def admit(conn_table: Any) -> bool:
        reflected = (
            filters.reflected_object(conn_table, d) if d and conn_table is not None else None
        )
        model = filters.model_object(table, m) if m is not None else None
        calls: list[tuple[Any, str, bool, Any]] = []
        if d is not None and m is not None and (d.name == m.name or _code(d) == "p"):
            calls.append((model, m.name, False, reflected))
        else:
            if d is not None:
                calls.append((reflected, d.name, True, None))
            if m is not None:
                calls.append((model, m.name, False, None))
        return all(
            filters.obj(obj, name, type_, reflected=is_reflected, compare_to=other)
            for obj, name, is_reflected, other in calls
            # No SQLAlchemy object to hand over (e.g. an EXCLUDE constraint, which SQLAlchemy
            # does not reflect): include_name alone judged it.
            if obj is not None
        )

    return admit

"""ENUM rebuilds that keep the columns' server defaults.

PostgreSQL cannot drop or move an ENUM label, so the catalog comparison rebuilds the type
(catalog_render.enum_change) and converts each column to the new one. A column's default
(``'new'::order_status``) cannot follow: "default for column "status" cannot be cast
automatically to type order_status". Here the defaults of the columns the rebuild converts
are read from the migrated database, dropped before the rebuild and restored, as the same
text, after it: that text names the type, which by then is the new one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from migration_check.findings import Finding
from migration_check.worker.catalog.render import TableRef, keep_defaults

__all__ = ["keep_enum_defaults"]

# A finding whose ``op`` rebuilds the type, and one whose ``undo`` does (an added label's
# reverse is a removed one).
_OP_REBUILDS = {"remove_enum_value", "modify_enum"}
_UNDO_REBUILDS = {"add_enum_value", "modify_enum"}

_DEFAULTS = """
SELECT n.nspname, c.relname, a.attname, pg_get_expr(d.adbin, d.adrelid), current_schema()
FROM pg_attribute a
JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE a.atttypid = to_regtype(:type) AND a.attnum > 0 AND NOT a.attisdropped
  AND c.relkind IN ('r', 'p')
ORDER BY 1, 2, 3
"""


def keep_enum_defaults(findings: Sequence[Finding], url: str) -> list[Finding]:
    """``findings`` with every ENUM rebuild (op or undo) dropping and restoring defaults."""
    wanted = {
        f.name
        for f in findings
        if f.source == "catalog" and f.name and f.kind in _OP_REBUILDS | _UNDO_REBUILDS
    }
    if not wanted:
        return list(findings)
    defaults = _read_defaults(url, sorted(wanted))
    out = []
    for f in findings:
        found = defaults.get(f.name or "") if f.source == "catalog" else None
        if not found:
            out.append(f)
            continue
        op = keep_defaults(f.op, found) if f.kind in _OP_REBUILDS else f.op
        undo = keep_defaults(f.undo, found) if f.kind in _UNDO_REBUILDS and f.undo else f.undo
        out.append(dataclasses.replace(f, op=op, undo=undo))
    return out


def _read_defaults(url: str, types: list[str]) -> dict[str, list[tuple[TableRef, str, str]]]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    out: dict[str, list[tuple[TableRef, str, str]]] = {}
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            for type_ in types:
                for schema, table, column, default, current in conn.execute(
                    text(_DEFAULTS), {"type": type_}
                ):
                    own = None if schema == current else schema
                    ref = TableRef(f"{own}.{table}" if own else table, table, own)
                    out.setdefault(type_, []).append((ref, column, default))
    finally:
        engine.dispose()
    return out

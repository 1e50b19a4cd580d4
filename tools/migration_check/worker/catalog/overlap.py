"""One change, one finding: catalog findings an extension's autogenerate op already reports.

With alembic-postgresql-enum imported in env.py, autogenerate itself sees ENUM labels, and the
revision it writes carries the extension's op. The catalog comparison's finding for the same
type would add a second op for one change (``ALTER TYPE ... ADD VALUE`` after
``op.add_enum_value``), and the revision would fail on the duplicate label.
"""

from __future__ import annotations

from collections.abc import Sequence

from migration_check.findings import Finding
from migration_check.worker.autogenerate.plugin_ops import ENUM_KINDS

__all__ = ["not_covered"]


def not_covered(catalog: Sequence[Finding], first: Sequence[Finding]) -> list[Finding]:
    """``catalog`` without the ENUM findings whose type autogenerate already reported.

    Matched by the type's name alone, whatever table either opinion filed it under: a type
    several tables use is one change.
    """
    enums = {f.name for f in first if f.kind in ENUM_KINDS and f.name}
    return [f for f in catalog if not (f.kind in ENUM_KINDS and f.name in enums)]

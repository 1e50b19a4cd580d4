"""Run the migration drift check: ``python tools/check_migrations.py [--help]``.

A shim so the checker runs from a checkout without installing it; the code lives in the
``migration_check`` package beside this file (installed as the ``check-migrations`` script).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from migration_check.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

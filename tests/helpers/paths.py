"""Where the repository, its scenario projects and the checker's shim lie, for every test."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "tests" / "scenarios"
SHIM = REPO / "tools" / "check_migrations.py"

"""The warm server's tests' shared parts: its keeper's files, pids and log, read from a test's
private runtime directory (tests/helpers/warm.py's ``Warm``).
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers.procfs import leftovers, postgres_pids
from tests.helpers.warm import Warm

__all__ = ["keeper_files", "keepers", "retired", "run_dirs", "served", "servers", "servers_dir"]


def servers_dir(warm: Warm) -> Path:
    """Where the keepers' files are: beside the resident workers' directory."""
    return warm.xdg / "check-migrations-servers"


def keeper_files(warm: Warm) -> list[str]:
    path = servers_dir(warm)
    return sorted(p.name for p in path.iterdir()) if path.exists() else []


def keepers(warm: Warm) -> list[int]:
    """The pids the keepers' state files name (alive or not)."""
    found = sorted(servers_dir(warm).glob("s-*.json"))
    return [int(json.loads(p.read_text())["pid"]) for p in found]


def _log(warm: Warm) -> str:
    return "".join(p.read_text() for p in servers_dir(warm).glob("s-*.log"))


def served(warm: Warm) -> int:
    """Checks the live keepers' servers served without retiring (one log line each)."""
    return _log(warm).count(": served check")


def retired(warm: Warm) -> int:
    return _log(warm).count(": retired: ")


def run_dirs(warm: Warm) -> list[str]:
    return [p.name for p in leftovers(warm.run_root)]


def servers(warm: Warm) -> list[int]:
    """Live postgres processes under this test's run directory."""
    return postgres_pids(warm.run_root)

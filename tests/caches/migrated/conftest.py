"""Each migrated-database test has a cache directory of its own, and no verdict cache."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("CHECK_MIGRATIONS_CACHE_DIR", str(path))
    # These tests are about the migrated database, which a stored verdict would skip.
    monkeypatch.setenv("CHECK_MIGRATIONS_VERDICT_CACHE", "0")
    return path

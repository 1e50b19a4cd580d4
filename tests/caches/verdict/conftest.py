"""Each verdict-cache test has a cache directory of its own."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("CHECK_MIGRATIONS_CACHE_DIR", str(path))
    return path

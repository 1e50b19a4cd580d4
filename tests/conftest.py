"""Shared fixtures: the checker's own throwaway PostgreSQL, and scenario projects.

Nothing is mocked: tests run a real server (started here, as CI has none running), real
Alembic, and the real CLI entry point.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from migration_check.postgres.server import (
    PORT,
    SUPERUSER,
    ThrowawayServer,
    find_binaries,
    resolve_server_user,
)
from tests.helpers.checker import shared_dir
from tests.helpers.paths import SCENARIOS
from tests.helpers.scenarios import ScenarioFactory
from tests.helpers.second_server import SecondServer, second_server


@pytest.fixture(scope="session", autouse=True)
def _private_caches() -> Iterator[None]:
    """The suite's own cache, run and resident-worker directories, never the developer's.

    A verdict or migrated database cached by an earlier session (or by the developer's own
    checks) would make a test's outcome depend on what ran before it.
    """
    with shared_dir("cm-session-") as root, pytest.MonkeyPatch.context() as mp:
        runtime = root / "runtime"
        runtime.mkdir(mode=0o700)
        mp.setenv("CHECK_MIGRATIONS_CACHE_DIR", str(root / "cache"))
        mp.setenv("CHECK_MIGRATIONS_RUN_DIR", str(root))
        mp.setenv("XDG_RUNTIME_DIR", str(runtime))
        yield


@pytest.fixture(autouse=True)
def _quiet_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests assert on output; a developer's own settings must not leak into them.
    for name in list(os.environ):
        if name.startswith("CHECK_MIGRATIONS_") and name not in (
            "CHECK_MIGRATIONS_CACHE_DIR",
            "CHECK_MIGRATIONS_RUN_DIR",
        ):
            monkeypatch.delenv(name)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture
def git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """git with a committer of its own, and nothing of an outer repository or hook."""
    # An outer hook's GIT_DIR / GIT_INDEX_FILE would point git at another repository.
    for name in list(os.environ):
        if name.startswith("GIT_"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("PRE_COMMIT", raising=False)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Check Test")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "check-test@example.invalid")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[ThrowawayServer]:
    """One throwaway server for the session, from the binaries the checker itself uses."""
    server = ThrowawayServer(find_binaries(None), resolve_server_user(None))
    with server:
        yield server


@pytest.fixture(scope="module")
def real_server() -> Iterator[SecondServer]:
    """The second server, "the developer's real database": one per module, so that what a
    module asserts about its logins and databases is about that module's runs only."""
    with second_server() as server:
        yield server


@pytest.fixture(scope="session")
def admin_conninfo(pg_server: ThrowawayServer) -> dict[str, object]:
    return dict(pg_server.admin_conninfo())


@pytest.fixture
def scratch_url(admin_conninfo: dict[str, object]) -> Iterator[str]:
    """A ``postgresql+psycopg://`` URL of a fresh, empty database, dropped afterwards."""
    name = f"test_{secrets.token_hex(5)}"
    with psycopg.connect(**admin_conninfo, autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield (
            f"postgresql+psycopg://{SUPERUSER}@/{name}?host={admin_conninfo['host']}&port={PORT}"
        )
    finally:
        with psycopg.connect(**admin_conninfo, autocommit=True) as conn:  # type: ignore[arg-type]
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def run_root(request: pytest.FixtureRequest) -> Iterator[Path]:
    """CHECK_MIGRATIONS_RUN_DIR of this test's runs only, so its assertions are about them.

    Named after the test module (``cm-test_faults-...``): a leftover says which suite left it.
    """
    with shared_dir(f"cm-{request.module.__name__.rsplit('.', 1)[-1]}-") as path:
        yield path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The ``base`` scenario copied to tmp_path, for tests that run the checker as a process."""
    target = tmp_path / "project"
    shutil.copytree(SCENARIOS / "base", target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


@pytest.fixture
def scenario(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ScenarioFactory:
    """Copy a scenario project to tmp_path and chdir there, as a user runs the checker."""
    monkeypatch.chdir(tmp_path)
    return ScenarioFactory(tmp_path)

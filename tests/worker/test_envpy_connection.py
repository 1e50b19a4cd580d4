"""The connection handed to env.py is the one ``alembic`` would give it.

``conn_sync`` and ``conn_async`` are Alembic's generic and async env.py with the cookbook's
connection sharing (``config.attributes["connection"]``). Each uses what plain ``alembic
upgrade head`` runs through such an env.py: an index built ``CONCURRENTLY`` inside
``autocommit_block()`` (no transaction may be open when env.py gets the connection), with
``-x meta_schema=1`` a version-table schema env.py creates and commits before
``context.configure``, and in ``conn_async`` a revision using ``op.run_async`` (env.py must get
the sync proxy of an ``AsyncConnection``). Every test runs on the bundled PostgreSQL and on
PostgreSQL 15 (``.ci/run`` installs it); the first proves the scenarios are ordinary: plain
Alembic upgrades, checks and downgrades them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from migration_check.cli.app import EXIT_FINDINGS, EXIT_OK, main
from tests.helpers.edits import NICKNAME, edit_unique
from tests.helpers.git import git
from tests.helpers.paths import SCENARIOS
from tests.helpers.scenarios import ScenarioFactory

PG15 = "/usr/lib/postgresql/15/bin"
SERVERS = [pytest.param([], id="bundled"), pytest.param(["--postgres-bin", PG15], id="pg15")]
META = ["-x", "meta_schema=1"]


def _set_driver(project: Path, driver: str) -> None:
    ini = project / "alembic.ini"
    ini.write_text(re.sub(r"postgresql\+\w+://", f"postgresql+{driver}://", ini.read_text()))


def _check(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("name", "driver"),
    [("conn_sync", "psycopg"), ("conn_async", "asyncpg"), ("conn_async", "psycopg")],
)
def test_plain_alembic_and_the_checker_both_run_the_scenario(
    name: str, driver: str, scratch_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What plain Alembic runs through the env.py, the checker runs: both agree."""
    project = tmp_path / name
    shutil.copytree(SCENARIOS / name, project)
    ini = project / "alembic.ini"
    url = scratch_url.replace("postgresql+psycopg://", f"postgresql+{driver}://")
    ini.write_text(re.sub(r"sqlalchemy.url = .*", f"sqlalchemy.url = {url}", ini.read_text()))
    for command in (["upgrade", "head"], ["check"], ["downgrade", "base"], ["upgrade", "head"]):
        proc = subprocess.run(
            [sys.executable, "-m", "alembic", *META, *command],
            cwd=project, capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, f"alembic {command}: {proc.stdout}{proc.stderr}"

    os.chdir(project)
    _set_driver(project, driver)  # the checker swaps the rest of the URL for its own
    code, out, err = _check(META, capsys)
    assert code == EXIT_OK, out + err
    assert "models and migrations agree" in out


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("name", ["conn_sync", "conn_async"])
def test_concurrent_index_in_autocommit_block(
    name: str, server: list[str], scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """No transaction is open when env.py gets the connection: autocommit_block() works."""
    scenario(name)
    code, out, err = _check(server, capsys)
    assert code == EXIT_OK, out + err
    head = "0002" if name == "conn_sync" else "0003"
    assert f"head {head}" in out


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("name", ["conn_sync", "conn_async"])
def test_env_py_that_commits_before_configure(
    name: str, server: list[str], scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """env.py may commit the version table's schema first; real drift is still reported."""
    project = scenario(name)
    code, out, err = _check([*server, *META], capsys)
    assert code == EXIT_OK, out + err
    edit_unique(project / "models.py", *NICKNAME)
    code, out, err = _check([*server, *META], capsys)
    assert code == EXIT_FINDINGS, out + err
    assert "users.nickname" in out
    assert "[add_column]" in out


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("driver", ["asyncpg", "psycopg"])
def test_async_env_py_gets_the_async_proxy(
    driver: str, server: list[str], scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """A revision's op.run_async runs: env.py got AsyncConnection.run_sync's proxy.

    ``postgresql+psycopg`` is either kind; env.py's ``run_sync`` says it is used async.
    """
    project = scenario("conn_async")
    _set_driver(project, driver)
    code, out, err = _check(server, capsys)
    assert code == EXIT_OK, out + err
    assert "3 revision(s) applied, head 0003" in out


@pytest.mark.usefixtures("git_identity")
@pytest.mark.parametrize("server", SERVERS)
def test_round_trip_downgrades_through_the_async_proxy(
    server: list[str], scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """The new revisions' downgrades (run_async, autocommit_block) run on the handed proxy."""
    project = scenario("conn_async")
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "rm", "-q", "--cached", "versions/0002_notes.py", "versions/0003_email_index.py")
    git(project, "commit", "-q", "-m", "base: users only")
    git(project, "checkout", "-q", "-b", "feature")
    git(project, "add", "-A")
    code, out, err = _check([*server, *META], capsys)
    assert code == EXIT_OK, out + err
    assert "round trip of 0002, 0003" in err


@pytest.mark.parametrize("server", SERVERS)
def test_writer_through_the_async_proxy(
    server: list[str], scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """The revision writer runs env.py the same way, and its revision makes the check pass."""
    project = scenario("conn_async")
    edit_unique(project / "models.py", *NICKNAME)
    code, out, err = _check(["revision", "-m", "add nickname", "--rev-id", "0004", *server, *META],
                            capsys)  # fmt: skip
    assert code == EXIT_OK, out + err
    written = project / "versions" / "0004_add_nickname.py"
    assert "op.add_column(" in written.read_text()
    code, out, err = _check([*server, *META], capsys)
    assert code == EXIT_OK, out + err
    assert "4 revision(s) applied, head 0004" in out


@pytest.mark.parametrize("reserved", ["base", "head"])
def test_revision_with_a_reserved_id_is_named(
    reserved: str, scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not "env.py:23: AssertionError": the revision, its file and the reserved id."""
    project = scenario("base")
    edit_unique(
        project / "versions" / "0001_initial.py", 'revision = "0001"', f'revision = "{reserved}"'
    )
    edit_unique(project / "versions" / "0002_notes.py", 'down_revision = "0001"',
                f'down_revision = "{reserved}"')  # fmt: skip
    code, _out, err = _check([], capsys)
    assert code == 2, err
    assert err.splitlines()[-1] == (
        f"check-migrations: error: versions/0001_initial.py: revision id {reserved!r} is "
        "reserved: Alembic reads it as "
        + ("the state before the first revision" if reserved == "base" else "the head")
        + " in every command, so this revision is never found; give it another id (and change "
        "the down_revision that names it)"
    )

"""Nothing is written to a database the user named, wherever the project names it.

The project points at the second server (helpers/second_server.py, "the developer's real database")
through every door a real project uses: ``DATABASE_URL``, a ``.env`` file, ``sqlalchemy.url``
in alembic.ini, libpq's ``PGHOST``/``PGDATABASE``/..., and Flask's ``SQLALCHEMY_DATABASE_URI``;
the checker runs without ``--database-url``, so it must use its own throwaway server. Every
database of the second server (``postgres`` and ``template1`` too) and its roles are dumped
before and after: equal dumps mean nothing there changed. Its connection log shows that no
one but this suite even logged in.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from migration_check.cli.app import EXIT_OK, main
from tests.helpers.paths import SCENARIOS
from tests.helpers.second_server import OWNER, OWNER_PASSWORD, REAL_DB, SecondServer
from tests.helpers.untouched_projects import flask_project, multidb_project, start_from_dump

# How env.py finds its URL, one door each; env.py here never takes the checker's connection.
SOURCES = {
    "DATABASE_URL": "url = os.environ['DATABASE_URL']",
    ".env": "from dotenv import load_dotenv\nload_dotenv()\nurl = os.environ['DATABASE_URL']",
    "sqlalchemy.url": "url = config.get_main_option('sqlalchemy.url')",
    "PGHOST": "url = 'postgresql+psycopg://'  # libpq's PG* variables say where",
}

ENV_PY = """\
import os

from alembic import context
from sqlalchemy import create_engine, pool

from models import metadata

config = context.config
{source}
engine = create_engine(url, poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata,
                      compare_server_default=True)
    with context.begin_transaction():
        context.run_migrations()
"""


def everything(server: SecondServer) -> dict[str, bytes]:
    """Each database's schema-and-data dump, and the roles: what a write anywhere changes."""
    state = {db: server.dump(db) for db in sorted(server.databases()) if db != "template0"}
    proc = subprocess.run(
        [str(server.bindir / "pg_dumpall"), "--globals-only", "-h", "127.0.0.1",
         "-p", str(server.port), "-U", OWNER, "--no-password"],
        capture_output=True, env={**os.environ, "PGPASSWORD": OWNER_PASSWORD}, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    state["(roles)"] = b"\n".join(
        ln for ln in proc.stdout.splitlines() if not ln.startswith((b"\\restrict", b"\\unr"))
    )
    return state


def logins(server: SecondServer) -> list[str]:
    """Logins to any database of the second server by anyone but this suite's own tools."""
    lines = server.log_text().splitlines()
    return [
        ln
        for ln in lines
        if "connection authorized" in ln
        and not re.search(r"application_name=(pg_dump|pg_dumpall|fixture)$", ln)
    ]


def point_everything_at(
    server: SecondServer, project: Path, ini: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every door a project may read its URL from, all naming the real database."""
    url = server.url(REAL_DB)
    monkeypatch.setenv("DATABASE_URL", url)
    (project / ".env").write_text(f"DATABASE_URL={url}\n")
    lines, section = [], ""
    for line in ini.read_text().splitlines():
        section = line if line.startswith("[") else section
        if not (section == "[alembic]" and line.startswith("sqlalchemy.url")):
            lines.append(line)
        if line == "[alembic]":
            lines.append(f"sqlalchemy.url = {url}")
    ini.write_text("\n".join(lines) + "\n")
    for name, value in {
        "PGHOST": "127.0.0.1",
        "PGPORT": str(server.port),
        "PGUSER": OWNER,
        "PGPASSWORD": OWNER_PASSWORD,
        "PGDATABASE": REAL_DB,
    }.items():
        monkeypatch.setenv(name, value)


def _base(tmp_path: Path, source: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    project = tmp_path / "project"
    shutil.copytree(SCENARIOS / "base", project, ignore=shutil.ignore_patterns("__pycache__"))
    (project / "env.py").write_text(ENV_PY.format(source=SOURCES[source]))
    monkeypatch.chdir(project)
    return project


def _untouched(
    server: SecondServer, args: list[str], capsys: pytest.CaptureFixture[str]
) -> tuple[str, str]:
    before = everything(server)
    assert set(before) >= {"postgres", "template1", REAL_DB, "(roles)"}  # not vacuous
    rc = main(args)
    out, err = capsys.readouterr()
    assert rc == EXIT_OK, out + err
    assert everything(server) == before
    assert logins(server) == []
    assert OWNER_PASSWORD not in out + err
    return out, err


@pytest.mark.parametrize("source", list(SOURCES))
def test_check(
    source: str,
    real_server: SecondServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = _base(tmp_path, source, monkeypatch)
    point_everything_at(real_server, project, project / "alembic.ini", monkeypatch)
    out, _ = _untouched(real_server, [], capsys)
    assert "models and migrations agree (2 revision(s) applied" in out


@pytest.mark.parametrize("source", list(SOURCES))
def test_revision_writer(
    source: str,
    real_server: SecondServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = _base(tmp_path, source, monkeypatch)
    shutil.copy(SCENARIOS / "history" / "script.py.mako", project)
    models = project / "models.py"
    models.write_text(
        models.read_text().replace("mapped_column(String(500))", "mapped_column(String(700))")
    )
    point_everything_at(real_server, project, project / "alembic.ini", monkeypatch)
    out, _ = _untouched(real_server, ["revision", "-m", "wider body", "--rev-id", "0003"], capsys)
    assert out.strip().endswith("0003_wider_body.py")


def test_multidb(
    real_server: SecondServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = multidb_project(tmp_path / "project", real_server.url(REAL_DB))
    monkeypatch.chdir(project)
    point_everything_at(real_server, project, project / "alembic.ini", monkeypatch)
    # The template's own engine1/engine2 URLs name the real database as well.
    assert (project / "alembic.ini").read_text().count(real_server.url(REAL_DB)) == 3
    out, _ = _untouched(real_server, [], capsys)
    assert "models and migrations agree" in out


def test_flask_app(
    real_server: SecondServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = flask_project(tmp_path / "flaskproj", real_server.url(REAL_DB))
    monkeypatch.chdir(project)
    point_everything_at(real_server, project, project / "migrations" / "alembic.ini", monkeypatch)
    out, _ = _untouched(real_server, ["--flask-app", "app:create_app"], capsys)
    assert "models and migrations agree (1 revision(s) applied" in out


def test_start_from(
    real_server: SecondServer,
    scratch_url: str,
    admin_conninfo: dict[str, object],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = _base(tmp_path, "DATABASE_URL", monkeypatch)
    dump = start_from_dump(project, scratch_url, admin_conninfo, tmp_path / "at_0001.sql")
    point_everything_at(real_server, project, project / "alembic.ini", monkeypatch)
    out, err = _untouched(real_server, ["--start-from", str(dump)], capsys)
    assert "models and migrations agree (1 revision(s) applied" in out, err

"""A history that cannot build from empty: the one line that says so, and ``--start-from``.

``bad_not_from_empty`` is a project whose databases were made with ``create_all()`` and
``alembic stamp``: its revision 0002 widens ``legacy_accounts.code``, a table no revision
creates. The dump is made here, with the bundled pg_dump, from a database built the way
production's was (the schema as it stood at 0001, stamped 0001).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from migration_check.cli.app import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK, main
from migration_check.postgres.server import SUPERUSER, find_binaries
from tests.helpers.production_dump import PRODUCTION_AT_0001
from tests.helpers.scenarios import ScenarioFactory


@pytest.fixture
def production(admin_conninfo: dict[str, object]) -> Iterator[str]:
    """A database on the session's server built as production's was; its name."""
    name = "test_production_0001"
    with psycopg.connect(**admin_conninfo, autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(**{**admin_conninfo, "dbname": name}, autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(PRODUCTION_AT_0001.encode())
    try:
        yield name
    finally:
        with psycopg.connect(**admin_conninfo, autocommit=True) as conn:  # type: ignore[arg-type]
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def pg_dump(admin_conninfo: dict[str, object], database: str, *args: str) -> str:
    exe = find_binaries(None).bindir / "pg_dump"
    proc = subprocess.run(
        [str(exe), "-h", str(admin_conninfo["host"]), "-p", str(admin_conninfo["port"]),
         "-U", SUPERUSER, *args, database],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture
def quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHECK_MIGRATIONS_QUIET", "1")


@pytest.mark.usefixtures("quiet")
def test_not_from_empty_names_the_options(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario("bad_not_from_empty")
    assert main([]) == EXIT_ERROR
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "revision 0002 (versions/0002_legacy_code.py)" in err
    assert "the history does not build a database from empty" in err
    assert "a baseline revision that creates the schema as it stood" in err
    assert "--start-from FILE.sql" in err


def test_start_from_a_schema_dump(
    scenario: ScenarioFactory,
    admin_conninfo: dict[str, object],
    production: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = scenario("bad_not_from_empty")
    schema = pg_dump(admin_conninfo, production, "--schema-only", "--no-owner")
    # pg_dump 17.6+/18 protects its output with psql's \restrict: the loader must cope.
    assert "\\restrict" in schema
    rows = pg_dump(admin_conninfo, production, "--data-only", "--table=alembic_version")
    (project / "schema.sql").write_text(schema + rows)

    rc = main(["--start-from", "schema.sql"])
    out, err = capsys.readouterr()
    assert rc == EXIT_OK, out + err
    assert "models and migrations agree (1 revision(s) applied, head 0002" in out

    # On an existing server too: psql gets the role's connection, the scratch database goes.
    server_url = (
        f"postgresql://{SUPERUSER}@/postgres?host={admin_conninfo['host']}"
        f"&port={admin_conninfo['port']}"
    )
    rc = main(["--start-from", "schema.sql", "--database-url", server_url])
    out, err = capsys.readouterr()
    assert rc == EXIT_OK, out + err
    with psycopg.connect(**admin_conninfo) as conn:  # type: ignore[arg-type]
        left = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'check\\_migrations\\_%'"
        ).fetchall()
    assert left == []

    models = project / "models.py"
    models.write_text(
        models.read_text().replace(
            "code: Mapped[str | None] = mapped_column(String(20))",
            "code: Mapped[str | None] = mapped_column(String(40))",
        )
    )
    rc = main(["--start-from", "schema.sql"])
    out, err = capsys.readouterr()
    assert rc == EXIT_FINDINGS, out + err
    assert "legacy_accounts.code" in out
    assert "[modify_type]" in out


@pytest.mark.usefixtures("quiet")
def test_start_from_without_version_rows_says_how_to_add_them(
    scenario: ScenarioFactory,
    admin_conninfo: dict[str, object],
    production: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = scenario("bad_not_from_empty")
    (project / "schema.sql").write_text(
        pg_dump(admin_conninfo, production, "--schema-only", "--no-owner")
    )
    assert main(["--start-from", "schema.sql"]) == EXIT_ERROR
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("check-migrations: error: schema.sql: loaded, but its version table")
    assert "pg_dump --data-only --table=alembic_version" in err


@pytest.mark.usefixtures("quiet")
def test_start_from_a_dump_that_fails_names_its_line(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("bad_not_from_empty")
    (project / "schema.sql").write_text(
        "CREATE TABLE a (id integer);\n\nALTER TABLE missing ADD COLUMN x integer;\n"
    )
    assert main(["--start-from", "schema.sql"]) == EXIT_ERROR
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert 'schema.sql:3: ERROR: relation "missing" does not exist' in err

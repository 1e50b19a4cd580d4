"""alembic-utils' entities and GeoAlchemy2/PostGIS, each on a scenario project.

The truth is plain Alembic's: ``alembic upgrade head`` then ``alembic check`` on a database of
the same server. PostGIS runs on Debian's PostgreSQL 15 with ``postgresql-15-postgis-3``
(.ci/run installs both), through ``--postgres-bin``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.errors import DependentObjectsStillExist

from migration_check.cli.app import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK, main
from migration_check.postgres.server import (
    PORT,
    SUPERUSER,
    ThrowawayServer,
    find_binaries,
    resolve_server_user,
)
from tests.helpers.edits import edit_all
from tests.helpers.plain_alembic import alembic, ok
from tests.helpers.reports import check_json
from tests.helpers.scenarios import ScenarioFactory

PG15 = Path("/usr/lib/postgresql/15/bin")
POSTGIS = ["--postgres-bin", str(PG15)]


def test_changed_view_is_named_and_located_as_declared(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str], scratch_url: str
) -> None:
    project = scenario("ext_alembic_utils")
    edit_all(project / "entities.py", "balance > 1000", "balance > 5000")
    # Truth: autogenerate reports the view, under the name alembic-utils gives it.
    ok(alembic(project, scratch_url, "upgrade", "head"))
    check = alembic(project, scratch_url, "check")
    assert check.returncode != 0
    assert "'PGView: public.rich_accounts'" in check.stdout + check.stderr

    code, doc = check_json(capsys)
    assert code == EXIT_FINDINGS
    (finding,) = doc["findings"]
    assert finding["kind"] == "modify_entity"
    assert finding["object"] == "PGView: public.rich_accounts"
    assert finding["table"] == "rich_accounts"
    line = (project / "entities.py").read_text().splitlines().index("rich_accounts = PGView(") + 1
    assert (finding["file"], finding["line"]) == ("entities.py", line)
    assert "balance > 5000" in finding["in_models"]
    assert "1000" in finding["in_database"]
    assert "op.replace_entity(" in finding["op"]

    # An ignore rule can now name it.
    (project / "pyproject.toml").write_text(
        '[tool.check-migrations]\nignore = ["modify_entity:rich_accounts.PGView: public.*"]\n'
    )
    assert main([]) == EXIT_OK
    assert capsys.readouterr().out.rstrip().endswith("; 1 ignored.")


def test_every_entity_op_has_a_kind_and_a_name(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str], scratch_url: str
) -> None:
    """A function replaced, a trigger no revision creates, a view no longer declared."""
    project = scenario("ext_alembic_utils")
    edit_all(project / "entities.py", "greatest(NEW.balance, 0)", "greatest(NEW.balance, 1)")
    edit_all(
        project / "entities.py",
        "ENTITIES = [rich_accounts, clamp_balance, accounts_clamp]",
        "accounts_touch = PGTrigger(\n"
        '    schema="public",\n    signature="accounts_touch",\n'
        '    on_entity="public.accounts",\n'
        '    definition="BEFORE UPDATE ON public.accounts FOR EACH ROW '
        'EXECUTE FUNCTION public.clamp_balance()",\n)\n\n'
        "ENTITIES = [clamp_balance, accounts_clamp, accounts_touch]",
    )
    ok(alembic(project, scratch_url, "upgrade", "head"))
    truth = alembic(project, scratch_url, "check")
    assert truth.returncode != 0
    for op in ("replace_or_revert_entity", "create_entity", "drop_entity"):
        assert op in truth.stdout + truth.stderr

    code, doc = check_json(capsys)
    assert code == EXIT_FINDINGS
    got = sorted((f["kind"], f["object"], f["table"], f["file"]) for f in doc["findings"])
    assert got == [
        ("add_entity", "PGTrigger: public.accounts_touch", "accounts", "entities.py"),
        ("modify_entity", "PGFunction: public.clamp_balance()", "clamp_balance()", "entities.py"),
        ("remove_entity", "PGView: public.rich_accounts", "rich_accounts", "alembic.ini"),
    ]


@pytest.fixture(scope="module")
def pg15() -> Iterator[ThrowawayServer]:
    """Debian's PostgreSQL 15, which has PostGIS installed (the bundled server has none)."""
    with ThrowawayServer(find_binaries(PG15), resolve_server_user(None)) as server:
        yield server


@pytest.fixture
def pg15_url(pg15: ThrowawayServer) -> Iterator[str]:
    name = f"test_{secrets.token_hex(5)}"
    admin = pg15.admin_conninfo()
    with psycopg.connect(**admin, autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"postgresql+psycopg://{SUPERUSER}@/{name}?host={admin['host']}&port={PORT}"
    finally:
        with psycopg.connect(**admin, autocommit=True) as conn:  # type: ignore[arg-type]
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_missing_extension_says_the_server_lacks_it(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str], scratch_url: str
) -> None:
    project = scenario("ext_postgis")
    # Truth: the bundled server cannot create the extension at all.
    failed = alembic(project, scratch_url, "upgrade", "head")
    assert failed.returncode != 0
    assert 'extension "postgis" is not available' in failed.stderr

    assert main([]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "the server lacks extension postgis, not a fault of the revision" in err
    assert "--postgres-bin DIR" in err
    assert "--database-url URL" in err
    assert "fix the revision" not in err


def test_postgis_through_postgres_bin(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str], pg15_url: str
) -> None:
    project = scenario("ext_postgis")
    ok(alembic(project, pg15_url, "upgrade", "head"))
    ok(alembic(project, pg15_url, "check"))
    assert main(POSTGIS) == EXIT_OK


def test_table_an_extension_owns_is_never_a_drop(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str], pg15_url: str
) -> None:
    project = scenario("ext_postgis")
    edit_all(project / "env.py", "            include_object=alembic_helpers.include_object,\n", "")
    ok(alembic(project, pg15_url, "upgrade", "head"))
    truth = alembic(project, pg15_url, "check")
    assert truth.returncode != 0
    assert "remove_table" in truth.stdout + truth.stderr
    # Truth: the drop autogenerate proposes is one PostgreSQL refuses.
    conninfo = pg15_url.replace("postgresql+psycopg://", "postgresql://")
    with (
        psycopg.connect(conninfo) as conn,
        pytest.raises(DependentObjectsStillExist),
    ):
        conn.execute("DROP TABLE spatial_ref_sys")

    code, doc = check_json(capsys, *POSTGIS)
    assert code == EXIT_FINDINGS
    (finding,) = doc["findings"]
    assert (finding["kind"], finding["table"]) == ("remove_table", "spatial_ref_sys")
    assert finding["op"] is None  # no op.drop_table
    assert "belongs to extension postgis" in finding["message"]
    assert "include_object=geoalchemy2.alembic_helpers.include_object" in finding["hint"]


def test_the_writer_never_drops_a_table_an_extension_owns(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str], pg15_url: str
) -> None:
    """``check-migrations revision`` without GeoAlchemy2's filter: the model's change is written,
    autogenerate's ``op.drop_table('spatial_ref_sys')`` is not (PostgreSQL would refuse it)."""
    project = scenario("ext_postgis")
    edit_all(project / "env.py", "            include_object=alembic_helpers.include_object,\n", "")
    edit_all(
        project / "models.py",
        "    name: Mapped[str] = mapped_column(String(100))\n",
        "    name: Mapped[str] = mapped_column(String(100))\n"
        "    kind: Mapped[str | None] = mapped_column(String(20))\n",
    )
    before = set((project / "versions").glob("*.py"))
    assert main([*POSTGIS, "revision", "-m", "kind", "--plain"]) == EXIT_OK
    err = capsys.readouterr().err
    assert "left out op.drop_table('spatial_ref_sys'): extension postgis owns the table" in err
    (written,) = set((project / "versions").glob("*.py")) - before
    text = written.read_text()
    assert "op.add_column('places'" in text
    assert "spatial_ref_sys" not in text
    ok(alembic(project, pg15_url, "upgrade", "head"))
    ok(alembic(project, pg15_url, "downgrade", "-1"))

"""The second opinion: model changes autogenerate cannot see, caught through the catalog.

``catalog_all`` uses every feature the catalog comparison reads (CHECK constraints, ENUMs in two
schemas, composite, partial and expression indexes, FK rules, identity, a computed column,
comments, a collation, the citext extension, a non-default schema, a table env.py filters out,
and objects only the revision creates: a function, a trigger, a view, rows). In sync, it must
raise nothing; each test below then changes the models only, with no revision, as a developer
would, and expects exactly one finding naming the object and both sides.

Each runs on the bundled PostgreSQL and on PostgreSQL 15 through ``--postgres-bin`` (Debian's
``postgresql-15``, which ``.ci/run`` installs), since catalog text differs between majors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from migration_check.cli.app import EXIT_FINDINGS, EXIT_OK, main
from tests.helpers.edits import edit_unique
from tests.helpers.paths import SCENARIOS
from tests.helpers.prereq import PG15, require_pg15
from tests.helpers.reports import json_check
from tests.helpers.scenarios import ScenarioFactory
from tests.helpers.schema_dump import schema_dump

SERVERS = [
    pytest.param([], id="bundled"),
    pytest.param(["--postgres-bin", str(PG15)], id="pg15", marks=pytest.mark.pg15),
]


@pytest.fixture(autouse=True)
def _pg15_installed(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("pg15") is not None:
        require_pg15()


@pytest.mark.parametrize("server", SERVERS)
def test_every_feature_in_sync(
    server: list[str], scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario("catalog_all")
    code, document, err = json_check(server, capsys)
    assert (code, document["findings"], document["catalog_skipped"]) == (EXIT_OK, [], None), err
    assert "comparing the catalogs" in err


# name: (edits to models.py, kind, object or column, in the database, in the models)
CHANGES: dict[str, tuple[list[tuple[str, str]], str, str, str | None, str | None]] = {
    "check_edited": (
        [('"amount > 0", name="positive"', '"amount >= 0", name="positive"')],
        "modify_check", "invoices (ck_invoices_positive)",
        "CHECK (amount > 0::numeric)", "CHECK (amount >= 0::numeric)",
    ),
    "check_added": (
        [('    __table_args__ = (\n        CheckConstraint("amount',
          '    __table_args__ = (\n        CheckConstraint("char_length(reference) > 3", '
          'name="reference_long"),\n        CheckConstraint("amount')],
        "add_check", "invoices (ck_invoices_reference_long)",
        None, "CHECK (char_length(reference::text) > 3)",
    ),
    "check_dropped": (
        [('        CheckConstraint("discount <= amount", name="discount_le_amount"),\n', "")],
        "remove_check", "invoices (ck_invoices_discount_le_amount)",
        "CHECK (discount <= amount)", None,
    ),
    "enum_value_added": (
        [('    paid = "paid"\n', '    paid = "paid"\n    void = "void"\n')],
        "add_enum_value", "invoices (invoice_status)",
        "ENUM ('draft', 'sent', 'paid')", "ENUM ('draft', 'sent', 'paid', 'void')",
    ),
    "enum_value_removed": (
        [('    sent = "sent"\n', "")],
        "remove_enum_value", "invoices (invoice_status)",
        "ENUM ('draft', 'sent', 'paid')", "ENUM ('draft', 'paid')",
    ),
    "enum_value_added_in_schema": (
        [('Enum("debit", "credit", name=', 'Enum("debit", "credit", "refund", name=')],
        "add_enum_value", "billing.entries (billing.entry_kind)",
        "ENUM ('debit', 'credit')", "ENUM ('debit', 'credit', 'refund')",
    ),
    "primary_key_moved": (
        [("code: Mapped[str] = mapped_column(String(3), primary_key=True)",
          "code: Mapped[str] = mapped_column(String(3))"),
         ("numeric_code: Mapped[str] = mapped_column(String(3))",
          "numeric_code: Mapped[str] = mapped_column(String(3), primary_key=True)")],
        "modify_primary_key", "currencies (pk_currencies)",
        "PRIMARY KEY (code)", "PRIMARY KEY (numeric_code)",
    ),
    "partial_index_where_edited": (
        [("status <> 'paid'\")", "status = 'draft'\")")],
        "modify_index", "invoices (ix_invoices_open)",
        "USING btree (due_on) WHERE status <> 'paid'::invoice_status",
        "USING btree (due_on) WHERE status = 'draft'::invoice_status",
    ),
    "computed_expression_edited": (
        [('Computed("amount - discount")', 'Computed("amount + discount")')],
        "modify_computed", "invoices.total",
        # PostgreSQL 18 makes a generated column VIRTUAL unless told STORED; 15 only knows STORED.
        "GENERATED ALWAYS AS ((amount - discount))", "GENERATED ALWAYS AS ((amount + discount))",
    ),
}  # fmt: skip


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("change", list(CHANGES))
def test_model_only_change_is_one_catalog_finding(
    change: str,
    server: list[str],
    scenario: ScenarioFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    edits, kind, subject, in_database, in_models = CHANGES[change]
    project = scenario("catalog_all")
    for old, new in edits:
        edit_unique(project / "models.py", old, new)
    code, document, err = json_check(server, capsys)
    assert code == EXIT_FINDINGS, err
    [finding] = document["findings"]
    assert (finding["kind"], finding["source"], finding["subject"]) == (kind, "catalog", subject)
    for side, want in (("in_database", in_database), ("in_models", in_models)):
        got = finding[side]
        assert (got is None) if want is None else (got is not None and got.startswith(want)), (
            side,
            got,
        )
        if want is not None:
            assert want in finding["message"]
    assert finding["op"], "a catalog finding says what to write by hand"
    assert (finding["file"], finding["located"]) == ("models.py", True)


def test_op_code_and_wording(scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]) -> None:
    """The text report quotes both sides and says the revision is written by hand."""
    project = scenario("catalog_all")
    edit_unique(
        project / "models.py", '"amount > 0", name="positive"', '"amount >= 0", name="positive"'
    )
    edit_unique(
        project / "models.py", '    paid = "paid"\n', '    paid = "paid"\n    void = "void"\n'
    )
    assert main([]) == EXIT_FINDINGS
    out = capsys.readouterr().out
    assert (
        "CHECK constraint ck_invoices_positive is `CHECK (amount > 0::numeric)` in the "
        "database, `CHECK (amount >= 0::numeric)` in the models [modify_check, catalog]"
    ) in out
    assert "op.drop_constraint(op.f('ck_invoices_positive'), 'invoices', type_='check')" in out
    assert (
        "op.create_check_constraint(op.f('ck_invoices_positive'), 'invoices', "
        "'(amount >= 0::numeric)')"
    ) in out
    assert """op.execute("ALTER TYPE invoice_status ADD VALUE 'void'")""" in out
    assert "Autogenerate cannot write these changes" in out
    assert '  check-migrations revision -m "describe the change" --rev-id 0002' in out


def test_github_format_says_write_it_by_hand(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("catalog_all")
    edit_unique(project / "models.py", "status <> 'paid'\")", "status = 'draft'\")")
    assert main(["--format", "github"]) == EXIT_FINDINGS
    out = capsys.readouterr().out
    assert "title=Missing migration (write it by hand)%3A invoices (ix_invoices_open)" in out
    assert "[modify_index, catalog]" in out
    assert "Autogenerate cannot see this change" in out


@pytest.mark.parametrize(
    "how",
    [["--autogenerate-only"], "env", "pyproject"],
    ids=["flag", "env", "pyproject"],
)
def test_autogenerate_only_gives_alembic_checks_verdict(
    how: list[str] | str,
    scenario: ScenarioFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = scenario("catalog_all")
    edit_unique(
        project / "models.py", '"amount > 0", name="positive"', '"amount >= 0", name="positive"'
    )
    args: list[str] = []
    if how == "env":
        monkeypatch.setenv("CHECK_MIGRATIONS_AUTOGENERATE_ONLY", "1")
    elif how == "pyproject":
        (project / "pyproject.toml").write_text(
            "[tool.check-migrations]\nautogenerate-only = true\n"
        )
    else:
        assert isinstance(how, list)
        args = how
    code, document, err = json_check(args, capsys)
    assert (code, document["findings"]) == (EXIT_OK, []), err
    assert "comparing the catalogs" not in err


def test_types_only_a_revision_creates_are_copied(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """An ENUM with create_type=False, a domain, a function in a DEFAULT: still compared."""
    project = scenario("catalog_foreign_types")
    code, document, err = json_check([], capsys)
    assert (code, document["findings"], document["catalog_skipped"]) == (EXIT_OK, [], None), err
    assert "warning" not in err
    # And still compared: a CHECK constraint only the models have is found.
    edit_unique(
        project / "models.py",
        '    __tablename__ = "tickets"\n',
        '    __tablename__ = "tickets"\n    __table_args__ = '
        '(__import__("sqlalchemy").CheckConstraint("seats < 10", name="few_seats"),)\n',
    )
    code, document, err = json_check([], capsys)
    assert code == EXIT_FINDINGS, err
    assert [(f["kind"], f["source"], f["in_models"]) for f in document["findings"]] == [
        ("add_check", "catalog", "CHECK (seats::integer < 10)")
    ]


def test_models_that_cannot_be_built_skip_the_catalog_with_one_warning(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """A composite type only a revision creates is not copied: say so; autogenerate still judges."""
    project = scenario("catalog_foreign_types")
    (project / "versions/0002_pair.py").write_text(
        '"""a composite type\n\nRevision ID: 0002\nRevises: 0001\n"""\n'
        "from alembic import op\n\n"
        'revision = "0002"\ndown_revision = "0001"\n\n\n'
        "def upgrade() -> None:\n"
        '    op.execute("CREATE TYPE pair AS (a integer, b integer)")\n'
        '    op.execute("ALTER TABLE tickets ADD COLUMN span pair")\n'
    )
    with (project / "models.py").open("a") as fh:
        fh.write(
            "\n\nclass Pair(UserDefinedType[object]):\n    cache_ok = True\n\n"
            "    def get_col_spec(self, **kw: object) -> str:\n        return 'pair'\n\n\n"
            "Ticket.__table__.append_column(__import__('sqlalchemy').Column('span', Pair()))\n"
        )
    code, document, err = json_check([], capsys)
    assert code == EXIT_OK, err
    reason = document["catalog_skipped"]
    assert reason.startswith('create_all() on the models failed (type "pair" does not exist)')
    warnings = [ln for ln in err.splitlines() if "warning" in ln]
    assert warnings == [f"check-migrations: warning: {reason}"]


@pytest.mark.parametrize(
    "name", ["async_env", "base", "ini_url", "hook_project", "two_files", "wording", "history"]
)
def test_no_catalog_finding_on_existing_scenarios(
    name: str, scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario(name)
    _code, document, err = json_check([], capsys)
    assert document["errors"] == [], err
    assert [f for f in document["findings"] if f["source"] == "catalog"] == []
    assert document["catalog_skipped"] is None


def test_models_database_is_dropped_on_database_url(
    scenario: ScenarioFactory,
    capsys: pytest.CaptureFixture[str],
    admin_conninfo: dict[str, object],
) -> None:
    """On a server the user named, the second database is gone after the run."""
    import psycopg

    scenario("catalog_all")
    host, port, user = admin_conninfo["host"], admin_conninfo["port"], admin_conninfo["user"]
    url = f"postgresql://{user}@/postgres?host={host}&port={port}"

    def databases() -> set[str]:
        with psycopg.connect(**admin_conninfo, autocommit=True) as conn:  # type: ignore[arg-type]
            return {r[0] for r in conn.execute("SELECT datname FROM pg_database")}

    before = databases()
    code, document, err = json_check(["--database-url", url], capsys)
    assert (code, document["catalog_skipped"]) == (EXIT_OK, None), err
    assert databases() == before


def _load_models(path: Path, name: str) -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.metadata


def _percent_metadata() -> Any:
    from sqlalchemy import CheckConstraint, Column, Integer, MetaData, String, Table, text

    metadata = MetaData()
    Table(
        "codes",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("code", String(20), CheckConstraint("code LIKE 'X%'"), server_default=text("'5%'")),
    )
    return metadata


@pytest.mark.parametrize("models", ["catalog_all", "expense_models", "percent"])
def test_pipelined_ddl_builds_what_create_all_builds(
    models: str, admin_conninfo: dict[str, Any]
) -> None:
    """The shortcut (create_all's DDL compiled, then pipelined) against create_all itself."""
    import secrets

    import psycopg
    from sqlalchemy import create_engine
    from sqlalchemy.pool import StaticPool

    from migration_check.worker.catalog.modelsdb import ModelsDatabase

    if models == "catalog_all":
        metadata = _load_models(SCENARIOS / "catalog_all" / "models.py", "catalog_all_models")
    elif models == "expense_models":
        from expense_models import metadata
    else:
        metadata = _percent_metadata()
    admin = psycopg.connect(**admin_conninfo, autocommit=True)
    names = [f"test_{secrets.token_hex(5)}" for _ in range(2)]
    conns: list[Any] = []
    try:
        for name in names:
            admin.execute(f"CREATE DATABASE {name}")
            conn = psycopg.connect(**{**admin_conninfo, "dbname": name})
            conns.append(conn)
            conn.execute("CREATE EXTENSION citext; CREATE SCHEMA billing")
            conn.commit()
        fast = ModelsDatabase(names[0], admin, conns[0])
        assert fast._compiled_ddl([metadata]) is not None  # the shortcut is what is tested
        assert fast._create_all([metadata]) is None
        slow = create_engine(
            "postgresql+psycopg://", creator=lambda: conns[1], poolclass=StaticPool
        )
        with slow.begin() as connection:
            metadata.create_all(connection)
        conns[1].commit()  # the dump sees only what is committed
        # PostgreSQL's own dump judges, not the comparison's reader: what it misses, this sees.
        dumps = [schema_dump(admin_conninfo, name) for name in names]
        assert "CREATE TABLE" in dumps[0]  # not vacuous
        assert dumps[0] == dumps[1]
    finally:
        for conn in conns:
            conn.close()
        for name in names:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


@pytest.mark.parametrize("how", ["engine", "psycopg"])
def test_env_py_is_refused_the_models_database(
    how: str, scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """The checker reaches its second database its own way; env.py still gets only its own."""
    project = scenario("base")
    env_py = project / "env.py"
    reach = {
        "engine": "create_engine(url.set(database=url.database + '_models')).connect()",
        "psycopg": "__import__('psycopg').connect(host=url.query['host'], "
        "dbname=url.database + '_models', user=url.username)",
    }[how]
    env_py.write_text(
        env_py.read_text().replace(
            "def run_migrations_online() -> None:\n",
            "def run_migrations_online() -> None:\n"
            "    from sqlalchemy import make_url\n"
            "    url = make_url(os.environ['DATABASE_URL'])\n"
            f"    {reach}\n",
        )
    )
    code = main([])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "env.py tried to connect to postgresql server" in err
    assert "_models', not the checker's scratch database" in err

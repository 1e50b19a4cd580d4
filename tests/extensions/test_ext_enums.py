"""ENUM labels: alembic-postgresql-enum in env.py, and the catalog's rebuild of a defaulted column.

The truth is plain Alembic's: ``alembic check`` on a database upgraded with ``alembic upgrade
head``, and the written revision applied, reversed and applied again with ``alembic``.
"""

from __future__ import annotations

import psycopg
import pytest

from migration_check.cli.app import EXIT_FINDINGS, EXIT_OK, main
from tests.helpers.edits import edit_all
from tests.helpers.plain_alembic import alembic, ok
from tests.helpers.reports import check_json
from tests.helpers.scenarios import ScenarioFactory

ADD = ('    shipped = "shipped"\n', '    shipped = "shipped"\n    refunded = "refunded"\n')
REMOVE = ('    shipped = "shipped"\n', "")


@pytest.mark.parametrize(
    ("change", "kind"),
    [(ADD, "add_enum_value"), (REMOVE, "remove_enum_value")],
    ids=["add", "remove"],
)
def test_pg_enum_change_is_one_finding_and_one_op(
    scenario: ScenarioFactory,
    capsys: pytest.CaptureFixture[str],
    scratch_url: str,
    change: tuple[str, str],
    kind: str,
) -> None:
    project = scenario("ext_pg_enum")
    edit_all(project / "models.py", *change)
    # Truth: with the extension, autogenerate itself sees the label change.
    ok(alembic(project, scratch_url, "upgrade", "head"))
    assert alembic(project, scratch_url, "check").returncode != 0

    code, doc = check_json(capsys)
    assert code == EXIT_FINDINGS
    (finding,) = doc["findings"]
    assert finding["kind"] == kind
    assert finding["source"] == "autogenerate"
    # Two tables use the type: one finding, under either.
    assert (finding["table"], finding["object"]) in {("orders", "order_status"),
                                                     ("returns", "order_status")}  # fmt: skip
    assert finding["file"] == "models.py"  # a column that uses the type, not alembic.ini
    label = "'refunded'" if kind == "add_enum_value" else "'shipped'"
    assert label in finding["message"]

    assert main(["revision", "-m", "status", "--rev-id", "0002"]) == EXIT_OK
    written = (project / "versions" / "0002_status.py").read_text()
    assert "ALTER TYPE" not in written  # the extension's op alone, not the catalog's as well
    # Truth: the written revision applies, reverses and applies again, and leaves no drift.
    ok(alembic(project, scratch_url, "upgrade", "head"))
    ok(alembic(project, scratch_url, "check"))
    ok(alembic(project, scratch_url, "downgrade", "-1"))
    ok(alembic(project, scratch_url, "upgrade", "head"))
    capsys.readouterr()
    assert main([]) == EXIT_OK


def _default(url: str) -> str | None:
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(
            "SELECT column_default FROM information_schema.columns "
            "WHERE table_name = 'orders' AND column_name = 'status'"
        ).fetchone()
    return None if row is None else row[0]


@pytest.mark.parametrize(
    ("labels", "kind"),
    [('"new", "paid", name', "remove_enum_value"), ('"new", "paid", "shipped", "gone", name',
                                                     "add_enum_value")],
    ids=["remove", "add"],
)  # fmt: skip
def test_enum_rebuild_keeps_the_server_default(
    scenario: ScenarioFactory,
    capsys: pytest.CaptureFixture[str],
    scratch_url: str,
    labels: str,
    kind: str,
) -> None:
    """A removed label (and an added one's downgrade) rebuilds the type; the default stays."""
    project = scenario("ext_enum_default")
    edit_all(project / "models.py", '"new", "paid", "shipped", name', labels)
    code, doc = check_json(capsys)
    assert code == EXIT_FINDINGS
    assert [f["kind"] for f in doc["findings"]] == [kind]

    assert main(["revision", "-m", "status", "--rev-id", "0002"]) == EXIT_OK
    capsys.readouterr()
    # Truth: plain Alembic applies the written revision, reverses it and applies it again.
    ok(alembic(project, scratch_url, "upgrade", "head"))
    assert _default(scratch_url) == "'new'::order_status"
    ok(alembic(project, scratch_url, "downgrade", "-1"))
    assert _default(scratch_url) == "'new'::order_status"
    ok(alembic(project, scratch_url, "upgrade", "head"))
    assert main([]) == EXIT_OK

"""The catalog opinion builds what can be built, and compares as the project chose.

``filters_partial_build``: models ``create_all()`` cannot build whole (a ``gin`` index without
its operator class, a foreign key to a column whose UNIQUE constraint only a revision creates,
both seen in real projects) and a sequence only a revision creates. ``filters_comparison``: a
server default a revision backfilled and a UNIQUE constraint listing its columns in another
order, under Alembic's default comparison. The truth is plain ``alembic check``.
"""

from __future__ import annotations

import pytest

from migration_check.cli.app import EXIT_FINDINGS, EXIT_OK
from tests.helpers.edits import edit_unique
from tests.helpers.plain_alembic import alembic_check
from tests.helpers.reports import json_check
from tests.helpers.scenarios import ScenarioFactory


def test_objects_that_cannot_be_built_are_named_once_and_the_rest_compared(
    scenario: ScenarioFactory, scratch_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = scenario("filters_partial_build")
    truth = alembic_check(project, scratch_url, [])
    assert truth.returncode == 0, truth.stdout + truth.stderr
    code, document, err = json_check(["--no-cache"], capsys)
    assert (code, document["findings"]) == (EXIT_OK, []), err
    note = document["catalog_skipped"]
    assert note == (
        "create_all() on the models failed (data type text has no default operator class for "
        'access method "gin"); left out of the catalog comparison (the rest was compared): '
        "index ix_orders_body on table orders; foreign key fk_orders_account_code on table "
        "orders (there is no unique constraint matching given keys for referenced table "
        '"accounts")'
    )
    assert [ln for ln in err.splitlines() if "warning" in ln] == [
        f"check-migrations: warning: {note}"
    ]
    # And compared: a CHECK constraint edited in the models only is found beside them.
    edit_unique(project / "models.py", '"qty > 0", name=', '"qty >= 0", name=')
    code, document, err = json_check(["--no-cache"], capsys)
    assert code == EXIT_FINDINGS, err
    assert [(f["kind"], f["source"], f["subject"]) for f in document["findings"]] == [
        ("modify_check", "catalog", "orders (ck_orders_qty)")
    ]


def test_a_sequence_only_a_revision_creates_is_copied(
    scenario: ScenarioFactory, scratch_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``server_default=text("nextval('ticket_no_seq')")``: built, so nothing is left out."""
    project = scenario("filters_partial_build")
    gin = '        Index("ix_orders_body", "body", postgresql_using="gin"),\n'
    edit_unique(project / "models.py", gin, "")
    edit_unique(
        project / "models.py", ', ForeignKey("accounts.code", name="fk_orders_account_code")', ""
    )
    revision = project / "versions" / "0001_initial.py"
    fk = '            sa.ForeignKey("accounts.code", name="fk_orders_account_code"),\n'
    edit_unique(revision, fk, "")
    text = revision.read_text()
    start = text.index("    op.create_index(\n")
    revision.write_text(text[:start] + text[text.index("    )\n", start) + 6 :])
    truth = alembic_check(project, scratch_url, [])
    assert truth.returncode == 0, truth.stdout + truth.stderr
    code, document, err = json_check(["--no-cache"], capsys)
    assert (code, document["findings"], document["catalog_skipped"]) == (EXIT_OK, [], None), err


@pytest.mark.parametrize("defaults", ["off", "on"])
def test_the_catalog_compares_as_env_py_chose(
    defaults: str,
    scenario: ScenarioFactory,
    scratch_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Server defaults only under compare_server_default; UNIQUE columns as a set, as Alembic."""
    project = scenario("filters_comparison")
    xs = ["-x", f"defaults={defaults}"]
    truth = alembic_check(project, scratch_url, xs)
    code, document, err = json_check(["--no-cache", *xs], capsys)
    if defaults == "off":
        assert truth.returncode == 0, truth.stdout + truth.stderr
        assert (code, document["findings"]) == (EXIT_OK, []), err
    else:
        assert "modify_default" in truth.stdout + truth.stderr
        assert code == EXIT_FINDINGS, err
        assert [(f["kind"], f["subject"]) for f in document["findings"]] == [
            ("modify_default", "members.role")
        ]

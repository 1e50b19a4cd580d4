"""env.py's filters hide from the catalog opinion exactly what they hide from autogenerate.

``filters_hidden`` has a difference of every kind the catalog reports, on either side (only
the revision creates it, only the models declare it, both differently), and an env.py whose
filter picks them out by name, by table and columns (keystone's), by ``reflected`` (Alembic's
"never drop" recipe), by ``compare_to``, or by ``include_name``. The truth is plain Alembic's:
``alembic upgrade head`` then ``alembic check`` through the same env.py, on a scratch database.
"""

from __future__ import annotations

import pytest

from migration_check.cli.app import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK
from tests.helpers.plain_alembic import alembic_check
from tests.helpers.reports import json_check
from tests.helpers.scenarios import ScenarioFactory

# (filter, group of differences): each filter hides every difference of its group.
HIDDEN = [
    ("name", "all"),
    ("columns", "all"),
    ("include_name", "db_only"),
    ("reflected", "db_only"),
    ("compare_to", "modified"),
]


@pytest.mark.parametrize(("mode", "diffs"), HIDDEN, ids=[f"{m}-{d}" for m, d in HIDDEN])
def test_what_env_py_filters_out_is_not_reported(
    mode: str,
    diffs: str,
    scenario: ScenarioFactory,
    scratch_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = scenario("filters_hidden")
    xs = ["-x", f"filter={mode}", "-x", f"diffs={diffs}"]
    truth = alembic_check(project, scratch_url, xs)
    assert truth.returncode == 0, truth.stdout + truth.stderr
    assert "No new upgrade operations detected" in truth.stdout + truth.stderr
    code, document, err = json_check(["--no-cache", *xs], capsys)
    assert (code, document["findings"], document["catalog_skipped"]) == (EXIT_OK, [], None), err


# Without a filter: every hidden difference is real, and each of its kinds is found.
EVERY_DIFFERENCE = {
    "db_only": {
        ("remove_check", "orders (x_ck_old)"),
        ("remove_fk", "orders (x_fk_old)"),
        ("remove_unique", "orders (x_uq_old)"),
        ("remove_index", "orders (x_ix_old)"),
    },
    "models_only": {
        ("add_check", "orders (x_ck_new)"),
        ("add_fk", "orders.parent_id"),
        ("add_unique", "orders (x_uq_new)"),
        ("add_index", "orders (x_ix_new)"),
    },
    "modified": {
        ("modify_check", "orders (x_ck_mod)"),
        ("modify_fk", "orders.owner_id"),
        ("modify_index", "orders (x_ix_mod)"),
        ("modify_collation", "orders.x_coll"),
        ("add_enum_value", "orders (x_mood)"),
        ("modify_primary_key", "pairs (x_pk_pairs)"),
        ("modify_table_comment", "x_commented"),
    },
}


@pytest.mark.parametrize("diffs", list(EVERY_DIFFERENCE))
def test_without_the_filter_every_difference_is_found(
    diffs: str,
    scenario: ScenarioFactory,
    scratch_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = scenario("filters_hidden")
    xs = ["-x", "filter=none", "-x", f"diffs={diffs}"]
    truth = alembic_check(project, scratch_url, xs)
    assert truth.returncode != 0, truth.stdout + truth.stderr
    code, document, err = json_check(["--no-cache", *xs], capsys)
    assert code == EXIT_FINDINGS, err
    found = {(f["kind"], f["subject"]) for f in document["findings"]}
    assert found == EVERY_DIFFERENCE[diffs]


def test_a_filter_that_raises_is_an_error_naming_env_py(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """Never read as "include": the verdict would rest on a filter that could not judge."""
    scenario("filters_hidden")
    code, _document, err = json_check(
        ["--no-cache", "-x", "filter=raises", "-x", "diffs=db_only"], capsys
    )
    assert code == EXIT_ERROR, err
    [line] = [ln for ln in err.splitlines() if "error" in ln]
    assert "env.py:" in line
    assert "include_object() raised KeyError: 'managed'" in line
    assert "Traceback" not in err

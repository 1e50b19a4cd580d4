"""optuna 5.0.0 (its RDB storage's models and the Alembic history it ships) on PostgreSQL.

The upstream ships ``optuna/storages/_rdb/alembic.ini``, ``alembic/env.py`` (target_metadata is
``optuna.storages._rdb.models.BaseModel.metadata``, the URL is ``sqlalchemy.url``) and the
revisions inside the wheel. What a user adopting the checker writes, and all this suite writes:
a copy of that alembic.ini whose ``script_location`` is the installed package's ``alembic``
directory (the upstream's ``script_location = alembic`` is relative to the working directory)
and whose ``sqlalchemy.url`` is a placeholder the checker and the truth both replace.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from .realproject import (
    Venv,
    alembic_truth,
    check,
    entry_key,
    make_venv,
    mutated,
    record_baseline,
)

# What defines the schema and its comparison is pinned; the rest of optuna's dependencies
# (numpy, tqdm, ...) cannot change a table.
PINS = ["optuna==5.0.0", "sqlalchemy==2.1.9", "alembic==1.20.1"]

# Hand-checked drift of optuna 5.0.0 itself on PostgreSQL: optuna's RDBStorage builds a new
# database with metadata.create_all() and stamps it, so its history only has to carry old
# databases forward and lags the models. Each entry was read in the revisions:
UPSTREAM_AUTOGENERATE = {
    # TrialHeartbeatModel (models.py) has no revision: no file in versions/ mentions it.
    ("add_table", "trial_heartbeats", None),
    # v0.9.0.a creates trial_values.trial_id nullable; the model says nullable=False.
    ("modify_nullable", "trial_values", "trial_id"),
    # v3.2.0.a creates the index as op.f("trials_study_id_key"); the model's index=True names
    # it ix_trials_study_id: one index under two names, which autogenerate reads as drop + add.
    ("remove_index", "trials", "trials_study_id_key"),
    ("add_index", "trials", "ix_trials_study_id"),
}
# Plain Alembic cannot see this one; the test confirms it in the migrated database itself:
# v1.2.0.a adds WAITING by alter_column(type_=Enum(..., "WAITING", name="trialstate")), which on
# PostgreSQL re-types the column to the existing trialstate type and never adds the label, so
# every migrated database rejects a waiting trial (TrialState.WAITING is in the models).
UPSTREAM_CATALOG = {("add_enum_value", "trials", "trialstate")}


@pytest.fixture(scope="session")
def optuna_venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    return make_venv(tmp_path_factory.mktemp("optuna") / "venv", PINS)


@pytest.fixture(scope="session")
def rdb(optuna_venv: Venv) -> Path:
    return optuna_venv.site_packages / "optuna" / "storages" / "_rdb"


def _project(rdb: Path, root: Path) -> Path:
    upstream = (rdb / "alembic.ini").read_text()
    ini = upstream.replace("script_location = alembic\n", f"script_location = {rdb / 'alembic'}\n")
    ini = ini.replace("sqlalchemy.url = sqlite:///alembic.db\n", "sqlalchemy.url = postgresql://\n")
    assert ini.count(str(rdb)) == 1, "optuna's alembic.ini changed its script_location"
    assert "sqlite" not in ini, "optuna's alembic.ini changed its sqlalchemy.url"
    (root / "alembic.ini").write_text(ini)
    return root


@pytest.fixture(scope="session")
def project(rdb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wrapper alembic.ini alone, as on the day a user adds the checker."""
    return _project(rdb, tmp_path_factory.mktemp("optuna-project"))


@pytest.fixture(scope="session")
def adopted(
    optuna_venv: Venv, rdb: Path, tmp_path_factory: pytest.TempPathFactory, server_url: str
) -> Path:
    """The same, after ``check-migrations baseline`` and the review this module's sets record."""
    root = _project(rdb, tmp_path_factory.mktemp("optuna-adopted"))
    entries = record_baseline(optuna_venv, root, server_url)
    assert {entry_key(e) for e in entries} == UPSTREAM_AUTOGENERATE | UPSTREAM_CATALOG
    assert len(entries) == len(UPSTREAM_AUTOGENERATE | UPSTREAM_CATALOG)
    return root


@pytest.fixture
def models(rdb: Path) -> Path:
    return rdb / "models.py"


def _enum_labels(admin_conninfo: dict[str, object], url: str, enum: str) -> list[str]:
    dbname = url.split("@/", 1)[1].split("?", 1)[0]
    with psycopg.connect(**{**admin_conninfo, "dbname": dbname}) as conn:  # type: ignore[arg-type]
        row = conn.execute(f"SELECT enum_range(NULL::{enum})::text[]").fetchone()
    assert row is not None
    return list(row[0])


def test_clean_is_exactly_the_hand_checked_drift(
    optuna_venv: Venv,
    project: Path,
    server_url: str,
    scratch_url: str,
    admin_conninfo: dict[str, object],
) -> None:
    truth = alembic_truth(optuna_venv, project / "alembic.ini", scratch_url)
    assert truth == UPSTREAM_AUTOGENERATE
    assert _enum_labels(admin_conninfo, scratch_url, "trialstate") == [
        "RUNNING",
        "COMPLETE",
        "PRUNED",
        "FAIL",
    ]

    checked = check(optuna_venv, project, server_url)
    assert checked.exit_code == 1
    assert checked.by_source("autogenerate") == truth
    assert checked.by_source("catalog") == UPSTREAM_CATALOG
    assert checked.document["revisions_applied"] == 10


def test_clean_after_the_baseline_agrees(optuna_venv: Venv, adopted: Path, server_url: str) -> None:
    checked = check(optuna_venv, adopted, server_url)
    assert checked.exit_code == 0, checked.document["findings"]
    assert checked.document["verdict"] == "in_sync"
    assert checked.baselined == UPSTREAM_AUTOGENERATE | UPSTREAM_CATALOG
    assert checked.document["fixed"] == []


MUTATIONS = {
    "add_column": (
        "    number = _Column(Integer)\n",
        "    number = _Column(Integer)\n    note = _Column(String(100))\n",
        ("add_column", "trials", "note"),
    ),
    "shorter_string": (
        "    param_name = _Column(String(MAX_INDEXED_STRING_LENGTH))\n",
        "    param_name = _Column(String(256))\n",
        ("modify_type", "trial_params", "param_name"),
    ),
    "add_index": (
        '_Column("datetime_start", DateTime)',
        '_Column("datetime_start", DateTime, index=True)',
        ("add_index", "trials", "ix_trials_datetime_start"),
    ),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_model_only_mutation_is_named(
    name: str,
    optuna_venv: Venv,
    project: Path,
    adopted: Path,
    models: Path,
    server_url: str,
    scratch_url: str,
) -> None:
    old, new, expected = MUTATIONS[name]
    with mutated(models, old, new):
        truth = alembic_truth(optuna_venv, project / "alembic.ini", scratch_url)
        checked = check(optuna_venv, adopted, server_url)
        mutated_lines = models.read_text().splitlines()
    assert truth == UPSTREAM_AUTOGENERATE | {expected}, "plain Alembic does not see the mutation"
    assert checked.exit_code == 1
    assert checked.keys == {expected}
    assert checked.baselined == UPSTREAM_AUTOGENERATE | UPSTREAM_CATALOG
    [finding] = checked.document["findings"]
    assert finding["source"] == "autogenerate"
    assert finding["file"].endswith("optuna/storages/_rdb/models.py"), finding
    # The line is the edited attribute itself: the column's name (or the index's) is on it.
    assert expected[2] is not None
    attribute = expected[2].removeprefix("ix_trials_")
    assert attribute in mutated_lines[finding["line"] - 1], finding

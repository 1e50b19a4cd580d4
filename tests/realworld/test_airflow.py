"""apache-airflow-core 3.3.2 (Airflow's metadata database) on PostgreSQL.

A shape neither optuna nor keystone has: 124 revisions from a squashed 2.6.2 base, an env.py
that never reads ``sqlalchemy.url`` (it takes ``config.attributes["connection"]`` or builds
``settings.engine`` from ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN``), ``compare_type`` and
``compare_server_default`` as callables (``airflow.utils.db``), an ``include_object`` that
drops every table the metadata does not declare (the FAB provider's ``ab_*`` tables the base
revision creates), a MetaData naming convention, and partial indexes. Upstream asserts the
sync on PostgreSQL (``tests/unit/utils/test_db.py``,
``test_database_schema_and_sqlalchemy_model_are_in_sync``).

The driver is psycopg2, as Airflow documents (``postgresql+psycopg2://``): under psycopg 3,
SQLAlchemy 2.1's default, revision 686269002441 (0017) fails, since its
``literal("0")`` is bound as VARCHAR to an integer column. What a user adopting the checker
writes, and all this suite writes: a copy of airflow's alembic.ini whose ``script_location`` is
the installed ``airflow/migrations`` and whose ``sqlalchemy.url`` names that driver.
"""

from __future__ import annotations

import contextlib
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

# What defines the schema, its comparison and the driver is pinned; the rest of Airflow's
# dependencies (fastapi, the task SDK, ...) cannot change a table.
PINS = [
    "apache-airflow-core==3.3.2",
    "sqlalchemy==2.1.9",
    "alembic==1.20.1",
    "psycopg2-binary==2.9.13",
    # settings.py builds an async engine beside the sync one, on asyncpg.
    "asyncpg==0.32.0",
]

# Hand-checked drift of airflow 3.3.2 on PostgreSQL, each read in the revisions. Plain Alembic
# compares none of it (constraint names, primary key column order, an index's WHERE); the
# clean test confirms each in the migrated database itself.
UPSTREAM_CATALOG = {
    # 0041 (rename dataset as asset) renames the tables but not these primary keys; the models'
    # naming convention ("pk": "%(table_name)s_pkey") names them after the new tables.
    ("rename_constraint", "asset", "asset_pkey"),
    ("rename_constraint", "asset_alias", "asset_alias_pkey"),
    ("rename_constraint", "asset_event", "asset_event_pkey"),
    ("rename_constraint", "asset_alias_asset_event", "asset_alias_asset_event_pkey"),
    # 0041 re-creates the key as (event_id, dag_run_id); models/asset.py declares dag_run_id
    # first, so the key's index leads with the other column.
    ("modify_primary_key", "dagrun_asset_event", "dagrun_asset_event_pkey"),
    # The 2.6.2 base creates both without a WHERE and 0017 rebuilds them for SQLite only
    # (sqlite_where); models/dagrun.py declares them partial (postgresql_where).
    ("modify_index", "dag_run", "idx_dag_run_queued_dags"),
    ("modify_index", "dag_run", "idx_dag_run_running_dags"),
}
IN_DATABASE = {
    "asset": "dataset_pkey",
    "asset_alias": "dataset_alias_pkey",
    "asset_event": "dataset_event_pkey",
    "asset_alias_asset_event": "dataset_alias_dataset_event_pkey",
}


def _psycopg2(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql+psycopg2://", 1)


@pytest.fixture(scope="session")
def airflow_venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    root = tmp_path_factory.mktemp("airflow")
    # Importing airflow writes its logs/ (and would write airflow.cfg) under AIRFLOW_HOME.
    (root / "home").mkdir()
    return make_venv(root / "venv", PINS, env={"AIRFLOW_HOME": str(root / "home")})


@pytest.fixture(scope="session")
def airflow_dir(airflow_venv: Venv) -> Path:
    return airflow_venv.site_packages / "airflow"


def _project(airflow_dir: Path, root: Path) -> Path:
    upstream = (airflow_dir / "alembic.ini").read_text()
    ini = upstream.replace(
        "script_location = %(here)s/migrations\n",
        f"script_location = {airflow_dir / 'migrations'}\n",
    )
    ini = ini.replace(
        "sqlalchemy.url = scheme://localhost/airflow\n", "sqlalchemy.url = postgresql+psycopg2://\n"
    )
    assert ini.count(str(airflow_dir)) == 1, "airflow's alembic.ini changed its script_location"
    assert "scheme://" not in ini, "airflow's alembic.ini changed its sqlalchemy.url"
    (root / "alembic.ini").write_text(ini)
    return root


@pytest.fixture(scope="session")
def adopted(
    airflow_venv: Venv, airflow_dir: Path, tmp_path_factory: pytest.TempPathFactory, server_url: str
) -> Path:
    """The same, after ``check-migrations baseline`` and the review UPSTREAM_CATALOG records."""
    root = _project(airflow_dir, tmp_path_factory.mktemp("airflow-adopted"))
    entries = record_baseline(airflow_venv, root, server_url)
    assert {entry_key(e) for e in entries} == UPSTREAM_CATALOG
    assert len(entries) == len(UPSTREAM_CATALOG)
    return root


def _truth(venv: Venv, project: Path, url: str) -> set[tuple[str, str | None, str | None]]:
    # airflow's env.py connects through its own setting, never sqlalchemy.url.
    env = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": _psycopg2(url)}
    return alembic_truth(venv, project / "alembic.ini", _psycopg2(url), env=env)


def _catalog(admin_conninfo: dict[str, object], url: str) -> dict[str, str]:
    """What the migrated database has where the models differ, read with psql's queries."""
    dbname = url.split("@/", 1)[1].split("?", 1)[0]
    with psycopg.connect(**{**admin_conninfo, "dbname": dbname}) as conn:  # type: ignore[arg-type]
        rows = conn.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE contype = 'p' AND conrelid::regclass::text IN"
            " ('asset', 'asset_alias', 'asset_event', 'asset_alias_asset_event',"
            " 'dagrun_asset_event')"
        ).fetchall()
        found = {table: name for table, name, _ in rows}
        found.update({f"{name} def": definition for _, name, definition in rows})
        for index in ("idx_dag_run_queued_dags", "idx_dag_run_running_dags"):
            row = conn.execute("SELECT pg_get_indexdef(%s::regclass)", (index,)).fetchone()
            assert row is not None
            found[index] = row[0]
    return found


def test_clean_is_exactly_the_hand_checked_drift(
    airflow_venv: Venv,
    adopted: Path,
    server_url: str,
    truth_url: str,
    admin_conninfo: dict[str, object],
) -> None:
    # Plain Alembic through airflow's env.py (its compare_type, compare_server_default and
    # include_object): no diff.
    assert _truth(airflow_venv, adopted, truth_url) == set()
    catalog = _catalog(admin_conninfo, truth_url)
    for table, name in IN_DATABASE.items():
        assert catalog[table] == name
    assert catalog["dagrun_asset_event_pkey def"] == "PRIMARY KEY (event_id, dag_run_id)"
    for index in ("idx_dag_run_queued_dags", "idx_dag_run_running_dags"):
        assert catalog[index].endswith("USING btree (state, dag_id)"), catalog[index]

    # `adopted` recorded exactly UPSTREAM_CATALOG with `check-migrations baseline`; with it, in
    # sync. (A run before the baseline is left out: each run here replays 124 revisions.)
    checked = check(airflow_venv, adopted, server_url)
    assert checked.exit_code == 0, checked.document["findings"]
    assert checked.document["verdict"] == "in_sync"
    assert checked.baselined == UPSTREAM_CATALOG
    assert {f["source"] for f in checked.document["baselined"]} == {"catalog"}
    assert checked.document["fixed"] == []
    assert checked.document["revisions_applied"] == 124


# Three edits of models/pool.py, checked in one run: a model edit makes the checker replay the
# whole history (the models are among its cache key), 124 revisions a run.
MUTATIONS = [
    (
        '    DEFAULT_POOL_NAME = "default_pool"\n',
        "    note: Mapped[str | None] = mapped_column(String(64), nullable=True)\n\n"
        '    DEFAULT_POOL_NAME = "default_pool"\n',
        ("add_column", "slot_pool", "note"),
    ),
    (
        "mapped_column(String(256), unique=True, nullable=True)",
        "mapped_column(String(128), unique=True, nullable=True)",
        ("modify_type", "slot_pool", "pool"),
    ),
    (
        "include_deferred: Mapped[bool] = mapped_column(Boolean, nullable=False)",
        "include_deferred: Mapped[bool] = mapped_column(Boolean, nullable=True)",
        ("modify_nullable", "slot_pool", "include_deferred"),
    ),
]


def test_model_only_mutations_are_named(
    airflow_venv: Venv,
    adopted: Path,
    airflow_dir: Path,
    server_url: str,
    truth_url: str,
) -> None:
    models = airflow_dir / "models" / "pool.py"
    expected = {key for _, _, key in MUTATIONS}
    with contextlib.ExitStack() as edits:
        for old, new, _ in MUTATIONS:
            edits.enter_context(mutated(models, old, new))
        truth = _truth(airflow_venv, adopted, truth_url)
        checked = check(airflow_venv, adopted, server_url)
        mutated_lines = models.read_text().splitlines()
    assert truth == expected, "plain Alembic does not see the mutations"
    assert checked.exit_code == 1
    assert checked.keys == expected
    assert checked.baselined == UPSTREAM_CATALOG
    for finding in checked.document["findings"]:
        assert finding["source"] == "autogenerate"
        assert finding["file"].endswith("airflow/models/pool.py"), finding
        # The line is the edited attribute itself.
        assert f"{finding['column']}: Mapped" in mutated_lines[finding["line"] - 1], finding

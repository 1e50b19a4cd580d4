"""The models' database built while autogenerate runs (``ModelsDatabase.start_build``).

A shortcut: it may never build anything but what ``create_all()`` after autogenerate builds.
Each test compares the early build with the sequential one, pg_dump --schema-only against
pg_dump --schema-only: the catalog comparison's own reader would not see what it misses.
"""

from __future__ import annotations

import importlib.util
import secrets
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Column, String, create_engine
from sqlalchemy.pool import NullPool

from migration_check.worker.catalog.modelsdb import ModelsDatabase, open_models_database
from tests.helpers.paths import SCENARIOS
from tests.helpers.schema_dump import schema_dump


def _metadata(models: str) -> Any:
    if models == "expense_models":
        from expense_models import metadata

        return metadata
    path = SCENARIOS / models / "models.py"
    spec = importlib.util.spec_from_file_location(f"{models}_build_models", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.metadata


@pytest.fixture
def migrated(scratch_url: str) -> str:
    """The stand-in for the migrated database: the schemas and extensions the models need."""
    engine = create_engine(scratch_url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE EXTENSION citext; CREATE SCHEMA billing")
    engine.dispose()
    return scratch_url


@pytest.fixture
def models_dbs(admin_conninfo: dict[str, Any]) -> Iterator[list[ModelsDatabase]]:
    """Two models' databases (early build, sequential build), dropped afterwards."""
    made: list[ModelsDatabase] = []
    for _ in range(2):
        name = f"test_{secrets.token_hex(5)}"
        made.append(open_models_database(name, admin_conninfo, 5, psycopg.Connection.connect))
    try:
        yield made
    finally:
        for db in made:
            db.close()


def _build(db: ModelsDatabase, metadata: Any, url: str, admin: dict[str, Any]) -> str:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            assert db.build([metadata], conn) == "models"
    finally:
        engine.dispose()
    db.conn.commit()  # the dump sees only what is committed
    return schema_dump(admin, db.name)


@pytest.mark.parametrize("models", ["catalog_all", "expense_models"])
def test_the_early_build_is_the_sequential_build(
    models: str, migrated: str, models_dbs: list[ModelsDatabase], admin_conninfo: dict[str, Any]
) -> None:
    metadata = _metadata(models)
    early, sequential = models_dbs
    early.start_build([metadata], migrated)
    assert early._early is not None  # the shortcut is what is tested
    dumps = [
        _build(early, metadata, migrated, admin_conninfo),
        _build(sequential, metadata, migrated, admin_conninfo),
    ]
    assert "CREATE TABLE" in dumps[0]  # not vacuous
    assert dumps[0] == dumps[1]


def test_models_changed_after_the_early_build_are_built_as_they_are_now(
    migrated: str, models_dbs: list[ModelsDatabase], admin_conninfo: dict[str, Any]
) -> None:
    """env.py's hooks may touch the metadata while autogenerate runs: the later state counts."""
    metadata = _metadata("catalog_all")
    early, sequential = models_dbs
    early.start_build([metadata], migrated)
    assert early._early is not None
    table = next(iter(metadata.sorted_tables))
    table.append_column(Column("added_during_autogenerate", String(7)))
    dumps = [
        _build(early, metadata, migrated, admin_conninfo),
        _build(sequential, metadata, migrated, admin_conninfo),
    ]
    assert dumps[0] == dumps[1]
    assert "added_during_autogenerate" in dumps[0]


def _wide_metadata() -> Any:
    """Enough tables that the early build still runs when the comparison starts."""
    from sqlalchemy import Integer, MetaData, Table

    metadata = MetaData()
    for i in range(300):
        Table(f"wide_{i}", metadata, Column("id", Integer, primary_key=True), Column("v", String))
    return metadata


def test_the_comparison_never_shares_the_connection_with_the_early_build(
    migrated: str, models_dbs: list[ModelsDatabase]
) -> None:
    """``compare_catalog`` right after ``start_build``, as the worker calls them.

    The early build's thread holds the models' connection in a transaction. A transaction of
    the comparison's own on it while the thread runs nests in the thread's; one of the two
    ends out of order, and the catalog opinion is skipped (a CI run did so once). The overlap
    is made certain: 300 tables keep the thread busy when the comparison starts, 1000 schemas
    to copy keep any transaction of the comparison's open past the thread's end, and a tiny
    switch interval interleaves the two. The old code failed every run here.
    """
    import sys

    from migration_check.worker.catalog.compare import compare_catalog

    engine = create_engine(migrated, poolclass=NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("; ".join(f"CREATE SCHEMA s{i}" for i in range(1000)))
    engine.dispose()
    metadata = _wide_metadata()
    db = models_dbs[0]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        db.start_build([metadata], migrated)
        assert db._early is not None
        compare_catalog(db, migrated, {"opts": {"target_metadata": metadata}}, [])
    finally:
        sys.setswitchinterval(interval)

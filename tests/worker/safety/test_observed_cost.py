"""The observation's cheaper paths give what the slower ones gave, and -v says what it cost.

Each shortcut is held against the path it replaced, on a real server: the snapshot's timeouts
and sequential-scan counts against ``pg_settings`` and ``pg_stat_xact_user_tables`` (the views
the query read before), the statement's origin against ``traceback.extract_stack``, the seeding
(one savepoint per table, CHECK constraints read once) against the rows and report it made.
"""

from __future__ import annotations

import importlib.util
import os
import re
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, create_engine, event
from sqlalchemy.pool import NullPool

from migration_check.cli.app import EXIT_FINDINGS, main
from migration_check.worker.safety.observe import Observer
from migration_check.worker.safety.seed import seed
from migration_check.worker.safety.snapshot import take
from tests.helpers.safety import project_with
from tests.helpers.scenarios import ScenarioFactory

SCHEMA = """
CREATE SCHEMA other;
CREATE TABLE parent (id serial PRIMARY KEY, code text NOT NULL CHECK (code ~ '^[A-Z]{3}$'));
CREATE TABLE child (id serial PRIMARY KEY, parent_id int NOT NULL REFERENCES parent,
                    kind text NOT NULL CHECK (kind IN ('weekly', 'monthly')),
                    starts date NOT NULL, ends date NOT NULL CHECK (ends > starts));
CREATE TABLE impossible (id serial PRIMARY KEY, x int NOT NULL CHECK (x > 1000 AND x < 1001));
CREATE TABLE populated (id serial PRIMARY KEY, v text NOT NULL);
INSERT INTO populated (v) VALUES ('kept');
CREATE TABLE other.measures (id serial PRIMARY KEY, n numeric NOT NULL);
CREATE TABLE parted (id int NOT NULL, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE parted_2000 PARTITION OF parted FOR VALUES FROM ('2000-01-01') TO ('2001-01-01');
CREATE MATERIALIZED VIEW counts AS SELECT count(*) AS n FROM parent;
"""
_OLD_SCANS = "SELECT relid::bigint, seq_scan FROM pg_stat_xact_user_tables"
_OLD_TIMEOUT = ("SELECT CASE WHEN source = 'session' THEN setting ELSE '0' END FROM pg_settings "
                "WHERE name = %s")  # fmt: skip


@pytest.fixture
def conn(scratch_url: str) -> Iterator[Connection]:
    engine = create_engine(scratch_url, poolclass=NullPool)
    with engine.connect() as connection:
        connection.exec_driver_sql(SCHEMA)
        connection.commit()
        yield connection
    engine.dispose()


def _views(raw: Any, old: frozenset[int] | None) -> tuple[dict[int, int], str, str]:
    cursor = raw.cursor()
    cursor.execute(_OLD_SCANS)
    scans = {int(oid): int(n) for oid, n in cursor.fetchall() if old is None or oid in old}
    timeouts = []
    for name in ("lock_timeout", "statement_timeout"):
        cursor.execute(_OLD_TIMEOUT, (name,))
        timeouts.append(cursor.fetchone()[0])
    cursor.close()
    return scans, timeouts[0], timeouts[1]


def test_snapshot_reads_what_the_views_read(conn: Connection) -> None:
    """Scans and timeouts after each statement, in one transaction and then autocommit."""
    raw = conn.connection.dbapi_connection
    assert raw is not None
    old = frozenset(take(raw).relations)
    statements = [
        "SELECT * FROM parent",
        "SET lock_timeout = '2s'",
        "SELECT count(*) FROM parted",
        "SET LOCAL statement_timeout = '5s'",
        "SELECT * FROM other.measures, child",
        "CREATE INDEX ix_child_kind ON child (kind)",
        "ALTER TABLE child ADD CONSTRAINT ck_child_starts CHECK (starts > '1999-01-01')",
        "REFRESH MATERIALIZED VIEW counts",
        "RESET lock_timeout",
        "CREATE TABLE later (id int)",
        "SELECT * FROM later",
    ]
    seen = 0
    for statement in statements:
        conn.exec_driver_sql(statement)
        for limit in (old, None):
            snap = take(raw, limit)
            scans, lock_timeout, statement_timeout = _views(raw, limit)
            assert snap.scans == scans, statement
            assert (snap.lock_timeout, snap.statement_timeout) == (lock_timeout,
                                                                   statement_timeout)  # fmt: skip
            seen += sum(scans.values())
    assert seen > 0  # the statements did scan: the counts compared were not all zero
    conn.rollback()
    raw.autocommit = True
    raw.cursor().execute("SET statement_timeout = '7s'")
    snap = take(raw, old)
    assert (snap.lock_timeout, snap.statement_timeout) == _views(raw, old)[1:] == ("0", "7000")


def _rows(conn: Connection) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    for table in ("parent", "child", "impossible", "populated", "other.measures", "parted"):
        query = f"SELECT * FROM {table} ORDER BY 1"
        out[table] = [tuple(r) for r in conn.exec_driver_sql(query)]
    return out


def test_seeding_rows_and_its_round_trips(conn: Connection) -> None:
    """The rows the CHECKs steer it to; a rejected row costs two statements, a table three."""
    sent: list[str] = []
    event.listen(conn, "before_cursor_execute", lambda *a: sent.append(a[2]))
    report = seed(conn, "alembic_version")
    conn.commit()
    seeding = sent[:]  # not the reads below
    assert sorted(report.seeded) == ["other.measures", "public.child", "public.parent",
                                     "public.parted"]  # fmt: skip
    assert report.skipped == {"public.impossible": 'invalid input syntax for type integer: "0.5"'}
    rows = _rows(conn)
    ((parent, code),) = rows["parent"]  # ids from sequences the rejected rows also drew on
    assert code == "AAA"
    ((_id, parent_id, kind, starts, ends),) = rows["child"]
    assert (parent_id, kind) == (parent, "weekly")
    assert ends > starts
    assert rows["populated"] == [(1, "kept")]
    assert rows["impossible"] == []
    inserts = [s for s in seeding if s.startswith("INSERT")]
    rejected = sum(s.startswith("ROLLBACK TO SAVEPOINT") for s in seeding)
    checked = sum(s.startswith("SELECT EXISTS") for s in seeding)  # the version table: none
    assert checked == 6
    empty = checked - 1  # populated keeps its row and is not seeded
    assert rejected == len(inserts) - (empty - 1)  # every insert but the seeded ones failed
    assert rejected >= 3  # the CHECKs did reject rows: the cheap retry path ran
    assert len(seeding) == 3 + checked + 2 * empty + len(inserts) + rejected


REVISION = """
def statement(observer, here):
    return observer._origin(), here()  # line 3
"""


def test_origin_is_the_innermost_revision_frame(tmp_path: Path) -> None:
    """The frame walk names the file and line ``traceback.extract_stack`` named, via a symlink."""
    real = tmp_path / "versions" / "0100_new.py"
    real.parent.mkdir()
    real.write_text(REVISION)
    link = tmp_path / "linked"
    link.symlink_to(real.parent)
    observer = Observer({os.path.realpath(real): "0100"}, "alembic_version")

    def extract_stack() -> tuple[str, str, int] | None:
        for frame in reversed(traceback.extract_stack()):
            if os.path.realpath(frame.filename) == os.path.realpath(real):
                return "0100", os.path.relpath(frame.filename), frame.lineno or 1
        return None

    for path in (real, link / real.name):
        spec = importlib.util.spec_from_file_location(f"rev_{path.parent.name}", path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for _ in range(2):  # the second time from the resolved names' memo
            ours, reference = module.statement(observer, extract_stack)
            assert ours == reference == ("0100", os.path.relpath(path), 3)
    assert observer._origin() is None  # not called from a revision


def test_verbose_says_what_each_phase_cost(
    scenario: ScenarioFactory, capsys: pytest.CaptureFixture[str], git_identity: None
) -> None:
    project_with(scenario, 'op.create_index("ix_users_name", "users", ["name"])',
                 'op.drop_index("ix_users_name", "users")')  # fmt: skip
    assert main(["--no-cache", "-v"]) == EXIT_FINDINGS
    err = capsys.readouterr().err
    line = next(ln for ln in err.splitlines() if "safety observation's cost" in ln)
    pattern = (r"check-migrations: safety observation's cost: copy \d+\.\d{3}s, "
               r"rename \d+\.\d{3}s, seed \d+\.\d{3}s \(\d+ rows\), baseline snapshot \d+\.\d{3}s, "
               r"env\.py and Alembic -?\d+\.\d{3}s, 1 statements \d+\.\d{3}s, "
               r"2 snapshots \d+\.\d{3}s, end state \d+\.\d{3}s, hazards and report \d+\.\d{3}s "
               r"\(\d+\.\ds\)")  # fmt: skip
    assert re.fullmatch(pattern, line), line

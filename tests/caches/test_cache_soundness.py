"""A cached verdict is never different from ``--no-cache``: files and interpreters (issue 16).

Each case is a real way a project's inputs change between two checks (helpers/soundness.py runs
the differential). Here: what the interpreter decides at start-up (``PYTHONPATH``,
``sitecustomize``, ``usercustomize``, ``.pth`` files, another venv), files read behind Python's
``open`` (a C extension, a ``psql`` subprocess, a ``stat``), bytecode, the revision map, data a
revision reads, and the PostgreSQL build. test_cache_soundness_env.py has the environment cases.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from migration_check.postgres.server import find_binaries
from tests.helpers.edits import edit, skip_tables
from tests.helpers.soundness import (
    DB_STORED,
    PY_DIR,
    Case,
    Check,
    add_model,
    add_revision,
    add_user_column,
    differential,
    drift_in_notes,
    make_venv,
    name_length_from,
    new_check,
    patch_source,
    site_packages,
)

PG15 = Path("/usr/lib/postgresql/15/bin")


def _pythonpath_setup(c: Check) -> None:
    for name, length in (("lib_a", 100), ("lib_b", 99)):
        (c.tmp / name).mkdir()
        (c.tmp / name / "helpers.py").write_text(f"NAME_LENGTH = {length}\n")
    name_length_from(c.project, "from helpers import NAME_LENGTH")
    c.env["PYTHONPATH"] = str(c.tmp / "lib_a")


def _venv(c: Check, *, system_site: bool = False) -> Path:
    venv = c.tmp / "venv"
    c.python = str(make_venv(venv, system_site=system_site))
    return venv


def _usercustomize_setup(c: Check) -> None:
    # A venv sees the user site only with the system site-packages (site.ENABLE_USER_SITE).
    _venv(c, system_site=True)
    c.env["PYTHONUSERBASE"] = str(c.tmp / "userbase")


def _usercustomize(c: Check) -> None:
    user_site = c.tmp / "userbase" / "lib" / PY_DIR / "site-packages"
    user_site.mkdir(parents=True)
    (user_site / "usercustomize.py").write_text(patch_source(99))


def _pth_setup(c: Check) -> None:
    _venv(c)
    (c.tmp / "extra").mkdir()
    (c.tmp / "extra" / "local_settings.py").write_text("NAME_LENGTH = 99\n")
    name_length_from(
        c.project,
        "try:\n    from local_settings import NAME_LENGTH\nexcept ImportError:\n"
        "    NAME_LENGTH = 100\n",
    )


def _pth_import_setup(c: Check) -> None:
    site = site_packages(_venv(c))
    (site / "patches.pth").write_text("import patcher\n")
    (site / "patcher.py").write_text(patch_source(100))


def _library(venv: Path, version: str, length: int) -> None:
    site = site_packages(venv)
    (site / "appdefaults").mkdir()
    (site / "appdefaults" / "__init__.py").write_text(f"NAME_LENGTH = {length}\n")
    dist = site / f"appdefaults-{version}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: appdefaults\nVersion: {version}\n"
    )
    (dist / "top_level.txt").write_text("appdefaults\n")


def _other_venv_setup(c: Check) -> None:
    _library(_venv(c), "1.0", 100)
    other = c.tmp / "venv2"
    make_venv(other)
    _library(other, "2.0", 99)
    name_length_from(c.project, "from appdefaults import NAME_LENGTH")


def _same_second_edit(c: Check) -> None:
    models = c.project / "models.py"
    assert list((c.project / "__pycache__").glob("models.*.pyc")), "no bytecode was written"
    stat = models.stat()
    edit(models, "String(100)", "String(300)")
    os.utime(models, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert models.stat().st_size == stat.st_size


def _shadowing_revision(c: Check) -> None:
    # Sorted after 0002_notes.py, so Alembic's revision map keeps this one for "0002".
    text = (c.project / "versions" / "0002_notes.py").read_text()
    (c.project / "versions" / "0002_notes_v2.py").write_text(
        text.replace("sa.String(500)", "sa.String(400)")
    )


def _sqlite_setup(c: Check) -> None:
    with sqlite3.connect(c.project / "lengths.db") as db:
        db.execute("CREATE TABLE lengths (name TEXT PRIMARY KEY, value INTEGER)")
        db.execute("INSERT INTO lengths VALUES ('users.name', 100)")
    db.close()
    name_length_from(
        c.project,
        "import sqlite3\n\n"
        '_db = sqlite3.connect(__file__.rsplit("/", 1)[0] + "/lengths.db")\n'
        "NAME_LENGTH = _db.execute(\"SELECT value FROM lengths WHERE name = 'users.name'\")"
        ".fetchone()[0]\n"
        "_db.close()\n",
    )


def _sqlite_edit(c: Check) -> None:
    with sqlite3.connect(c.project / "lengths.db") as db:
        db.execute("UPDATE lengths SET value = 99 WHERE name = 'users.name'")
    db.close()


AUDIT_SQL = (
    "CREATE TABLE audit_log (id serial NOT NULL, note varchar({}),\n"
    "                        CONSTRAINT pk_audit_log PRIMARY KEY (id));\n"
)


def _psql_setup(c: Check) -> None:
    (c.project / "sql").mkdir()
    (c.project / "sql" / "audit.sql").write_text(AUDIT_SQL.format(50))
    psql = find_binaries(None).bindir / "psql"
    # psql reaches the scratch database through the PG* variables the checker sets.
    add_revision(
        c.project,
        f"    subprocess.run([{str(psql)!r}, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', "
        "str(SQL)], check=True)\n",
        '    op.drop_table("audit_log")\n',
        "import subprocess\nfrom pathlib import Path\n\n"
        'SQL = Path(__file__).resolve().parent.parent / "sql" / "audit.sql"\n',
    )
    add_model(
        c.project,
        "class AuditLog(Base):\n"
        '    __tablename__ = "audit_log"\n\n'
        "    id: Mapped[int] = mapped_column(primary_key=True)\n"
        "    note: Mapped[str | None] = mapped_column(String(50))\n",
    )


def _flag_setup(c: Check) -> None:
    (c.project / "conf").mkdir()
    drift_in_notes(c.project)
    skip_tables(c.project, '"notes" if os.path.exists("conf/skip_notes.flag") else ""')


def _data_file_setup(c: Check) -> None:
    (c.project / "seed").mkdir()
    (c.project / "seed" / "nickname_length.txt").write_text("30\n")
    add_revision(
        c.project,
        "    length = int(LENGTH_FILE.read_text())\n"
        '    op.add_column("users", sa.Column("nickname", sa.String(length), nullable=True))\n',
        '    op.drop_column("users", "nickname")\n',
        "from pathlib import Path\n\n"
        'LENGTH_FILE = Path(__file__).resolve().parent.parent / "seed" / "nickname_length.txt"\n',
    )
    add_user_column(c.project, "nickname: Mapped[str | None] = mapped_column(String(30))")


def _postgres_18_only_setup(c: Check) -> None:
    # uuidv7() is new in PostgreSQL 18: the bundled build migrates, 15 fails the revision.
    add_revision(
        c.project,
        '    op.add_column("notes", sa.Column("ref", sa.Uuid(), nullable=False,\n'
        '                                     server_default=sa.text("uuidv7()")))\n',
        '    op.drop_column("notes", "ref")\n',
    )
    body = "    body: Mapped[str] = mapped_column(String(500))\n"
    ref = '    ref: Mapped[uuid.UUID] = mapped_column(server_default=text("uuidv7()"))\n'
    edit(c.project / "models.py", body, body + ref)
    edit(c.project / "models.py", "from sqlalchemy import", "import uuid\n\nfrom sqlalchemy import")


CASES = [
    Case(
        "PYTHONPATH points at another helper module",
        _pythonpath_setup,
        lambda c: c.env.update(PYTHONPATH=str(c.tmp / "lib_b")),
    ),
    Case(
        "sitecustomize appears in site-packages",
        _venv,
        lambda c: (site_packages(c.tmp / "venv") / "sitecustomize.py").write_text(patch_source(99)),
    ),
    Case("usercustomize appears in the user site", _usercustomize_setup, _usercustomize),
    Case(
        ".pth file added",
        _pth_setup,
        lambda c: (site_packages(c.tmp / "venv") / "extra.pth").write_text(f"{c.tmp / 'extra'}\n"),
    ),
    Case(
        "module a .pth imports edited",
        _pth_import_setup,
        lambda c: (site_packages(c.tmp / "venv") / "patcher.py").write_text(patch_source(99)),
    ),
    Case(
        "another venv for the same project",
        _other_venv_setup,
        lambda c: setattr(c, "python", str(c.tmp / "venv2" / "bin" / "python")),
    ),
    Case("model edited in the same second at the same size", lambda c: None, _same_second_edit),
    Case(
        # The checker reports the duplicate as a second head: the verdict changes from 0 to 1.
        "new revision file shadows an older one (same revision id)",
        lambda c: None,
        _shadowing_revision,
    ),
    Case("file a C extension opens (sqlite3.connect)", _sqlite_setup, _sqlite_edit),
    Case(
        "SQL file a revision runs through psql -f",
        _psql_setup,
        lambda c: (c.project / "sql" / "audit.sql").write_text(AUDIT_SQL.format(60)),
        declinable=True,
    ),
    Case(
        "flag file env.py stats with os.path.exists",
        _flag_setup,
        lambda c: (c.project / "conf" / "skip_notes.flag").write_text(""),
    ),
    Case(
        "data file upgrade() opens, outside the versions",
        _data_file_setup,
        lambda c: (c.project / "seed" / "nickname_length.txt").write_text("40\n"),
    ),
    Case(
        "--postgres-bin another PostgreSQL build",
        _postgres_18_only_setup,
        lambda c: c.args.extend(["--postgres-bin", str(PG15)]),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cached_verdict_equals_no_cache(case: Case, tmp_path: Path, run_root: Path) -> None:
    differential(new_check(tmp_path, run_root), case)


def test_a_run_that_starts_a_subprocess_is_never_stored_and_says_so(
    tmp_path: Path, run_root: Path
) -> None:
    """What a child process reads is out of sight: such a run is answered, never stored."""
    check = new_check(tmp_path, run_root)
    _psql_setup(check)
    first = check.run("-v")
    assert first.exit == 0, first.describe()
    refusal = "not storing the verdict: the project's code started a subprocess ("
    assert first.stderr.count(refusal) == 1, first.describe()
    assert "not caching the migrated database: the upgrade started a subprocess" in first.stderr
    again = check.run()
    assert not again.hit, again.describe()
    assert DB_STORED not in again.stderr
    assert refusal not in again.stderr  # said with -v only

"""Every layout ``alembic init`` creates, made in the test exactly as a new user would.

Each project is created with ``alembic init -t TEMPLATE``, given a models module and one
hand-written revision that builds it: in sync it exits 0; after a model change, 1.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from migration_check.cli.app import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK, main
from tests.helpers.edits import edit_all

MODELS = """\
import sqlalchemy as sa

metadata = sa.MetaData()
users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(50), nullable=False),
)
"""

# Two databases, one MetaData each: what the multidb template's comment asks for.
MULTIDB_MODELS = """\
import sqlalchemy as sa

metadata1 = sa.MetaData()
users = sa.Table(
    "users",
    metadata1,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(50), nullable=False),
)

metadata2 = sa.MetaData()
events = sa.Table(
    "events",
    metadata2,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(20), nullable=False),
)
"""

REVISION = '''\
"""create users

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(50), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("users")
'''

MULTIDB_REVISION = '''\
"""create users and events

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade(engine_name: str) -> None:
    globals()["upgrade_%s" % engine_name]()


def downgrade(engine_name: str) -> None:
    globals()["downgrade_%s" % engine_name]()


def upgrade_engine1() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(50), nullable=False),
    )


def downgrade_engine1() -> None:
    op.drop_table("users")


def upgrade_engine2() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
    )


def downgrade_engine2() -> None:
    op.drop_table("events")
'''

# The URLs `alembic init` leaves (driver://...) replaced by what a real project would hold:
# the checker keeps the driver and swaps the rest for its scratch database.
_URLS = {
    "async": "postgresql+asyncpg://app:secret@db.example.com/app",
    "pyproject_async": "postgresql+asyncpg://app:secret@db.example.com/app",
}


def alembic_init(project: Path, template: str) -> None:
    """``alembic init -t TEMPLATE migrations`` in ``project``, then models and a revision."""
    project.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "alembic", "init", "-t", template, "migrations"],
        cwd=project, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    url = _URLS.get(template, "postgresql+psycopg://app:secret@db.example.com/app")
    edit_all(project / "alembic.ini", "driver://user:pass@localhost/dbname", url)
    env = project / "migrations" / "env.py"
    if template == "multidb":
        (project / "models.py").write_text(MULTIDB_MODELS)
        edit_all(
            env,
            "target_metadata = {}\n",
            "import models\n"
            "target_metadata = {'engine1': models.metadata1, 'engine2': models.metadata2}\n",
        )
        (project / "migrations" / "versions" / "0001_init.py").write_text(MULTIDB_REVISION)
    else:
        (project / "models.py").write_text(MODELS)
        edit_all(
            env, "target_metadata = None\n", "import models\ntarget_metadata = models.metadata\n"
        )
        (project / "migrations" / "versions" / "0001_init.py").write_text(REVISION)


TEMPLATES = ["generic", "async", "pyproject", "pyproject_async", "multidb"]


@pytest.mark.parametrize("template", TEMPLATES)
def test_alembic_init_template(
    template: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = tmp_path / "project"
    alembic_init(project, template)
    monkeypatch.chdir(project)
    if template.startswith("pyproject"):
        # What makes these layouts different: script_location lives only in pyproject.toml.
        assert "script_location" not in (project / "alembic.ini").read_text()
        assert "script_location" in (project / "pyproject.toml").read_text()

    rc = main([])
    out, err = capsys.readouterr()
    assert rc == EXIT_OK, out + err
    assert "models and migrations agree (1 revision(s) applied, head 0001" in out

    models = project / "models.py"
    edit_all(models, 'sa.Column("name", sa.String(50), nullable=False),\n)',
             'sa.Column("name", sa.String(50), nullable=False),\n'
             '    sa.Column("email", sa.String(100)),\n)')  # fmt: skip
    if template == "multidb":
        edit_all(models, 'sa.Column("kind", sa.String(20), nullable=False),\n)',
                 'sa.Column("kind", sa.String(20), nullable=False),\n'
                 '    sa.Column("at", sa.Integer),\n)')  # fmt: skip
    rc = main([])
    out, err = capsys.readouterr()
    assert rc == EXIT_FINDINGS, out + err
    assert "users.email" in out
    assert "[add_column]" in out
    if template == "multidb":
        # Each database is compared with its own metadata, and the finding says which.
        assert "database engine1: " in out
        assert "events.at" in out
        assert "database engine2: " in out
        assert "users.email: database engine2" not in out


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    _out, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHECK_MIGRATIONS_QUIET", "1")


@pytest.mark.usefixtures("quiet")
def test_config_naming_a_directory_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    alembic_init(tmp_path / "project", "generic")
    monkeypatch.chdir(tmp_path)
    assert main(["--config", "project"]) == EXIT_ERROR
    line = _error_line(capsys)
    assert "project: is a directory" in line
    assert "--config project/alembic.ini" in line


@pytest.mark.usefixtures("quiet")
def test_non_utf8_alembic_ini_names_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "project"
    alembic_init(project, "generic")
    ini = project / "alembic.ini"
    lines = ini.read_bytes().split(b"\n")
    lines.insert(3, "# r\u00e9sum\u00e9 in Latin-1".encode("latin-1"))
    ini.write_bytes(b"\n".join(lines))
    monkeypatch.chdir(project)
    assert main([]) == EXIT_ERROR
    line = _error_line(capsys)
    assert "internal error" not in line
    assert "alembic.ini:4: not UTF-8" in line


@pytest.mark.usefixtures("quiet")
def test_pyproject_layout_names_where_script_location_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "project"
    alembic_init(project, "pyproject")
    monkeypatch.chdir(project)
    toml = project / "pyproject.toml"
    edit_all(toml, 'script_location = "%(here)s/migrations"', 'script_location = "migratons"')
    assert main([]) == EXIT_ERROR
    line = _error_line(capsys)
    assert "pyproject.toml [tool.alembic]: script_location 'migratons'" in line

    assert main(["--config", "pyproject.toml"]) == EXIT_ERROR
    assert "pass the alembic.ini beside it with --config" in _error_line(capsys)

    edit_all(toml, 'script_location = "migratons"\n', "")
    assert main([]) == EXIT_ERROR
    line = _error_line(capsys)
    assert "alembic.ini: no script_location in [alembic] nor in [tool.alembic] of " in line


def test_multidb_on_an_existing_server_leaves_no_database(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    admin_conninfo: dict[str, object],
) -> None:
    import psycopg

    from migration_check.postgres.server import SUPERUSER

    project = tmp_path / "project"
    alembic_init(project, "multidb")
    monkeypatch.chdir(project)
    url = (
        f"postgresql://{SUPERUSER}@/postgres?host={admin_conninfo['host']}"
        f"&port={admin_conninfo['port']}"
    )
    rc = main(["--database-url", url])
    out, err = capsys.readouterr()
    assert rc == EXIT_OK, out + err
    with psycopg.connect(**admin_conninfo) as conn:  # type: ignore[arg-type]
        left = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'check\\_migrations\\_%'"
        ).fetchall()
    assert left == []


@pytest.mark.usefixtures("quiet")
def test_models_not_imported_is_a_setup_error_not_every_table_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "project"
    alembic_init(project, "generic")
    # The shape met in the wild: env.py imports a base module whose MetaData the models
    # (never imported) would fill.
    (project / "base.py").write_text("import sqlalchemy as sa\n\nmetadata = sa.MetaData()\n")
    edit_all(
        project / "migrations" / "env.py",
        "import models\ntarget_metadata = models.metadata\n",
        "import base\ntarget_metadata = base.metadata\n",
    )
    monkeypatch.chdir(project)
    assert main([]) == EXIT_ERROR
    out, err = capsys.readouterr()
    line = _error_line_from(err)
    assert "remove_table" not in out
    assert line.startswith("check-migrations: error: migrations/env.py:"), line
    assert "target_metadata (target_metadata = base.metadata) holds no tables, while the " in line
    assert "migrated database has 1 (users): the models are probably not imported" in line


def _error_line_from(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_cache_sees_a_script_location_change_in_pyproject(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """[tool.alembic] decides which history replays: the cache key must cover pyproject.toml.

    Two script directories hold a revision 0001 each, building ``name`` differently; moving
    script_location from one to the other changes no file the first run hashed but
    pyproject.toml. The cached run must say what the uncached one says.
    """
    import shutil

    project = tmp_path / "project"
    alembic_init(project, "pyproject")
    shutil.copytree(project / "migrations", project / "migrations_b")
    edit_all(
        project / "migrations_b" / "versions" / "0001_init.py",
        'sa.Column("name", sa.String(50), nullable=False)',
        'sa.Column("name", sa.String(80), nullable=False)',
    )
    monkeypatch.chdir(project)
    # The migrated-database cache is under test: an unchanged check would be answered by the
    # verdict cache (caches/verdict.py) before any database is copied.
    monkeypatch.setenv("CHECK_MIGRATIONS_VERDICT_CACHE", "0")
    assert main([]) == EXIT_OK, capsys.readouterr()
    assert main([]) == EXIT_OK  # served from the cache
    assert "using cached migrated database" in capsys.readouterr().err

    edit_all(project / "pyproject.toml", "%(here)s/migrations", "%(here)s/migrations_b")
    rc = main([])
    out, err = capsys.readouterr()
    assert rc == EXIT_FINDINGS, out + err
    assert "using cached migrated database" not in err
    assert "users.name" in out
    assert main(["--no-cache"]) == EXIT_FINDINGS

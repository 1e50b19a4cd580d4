"""Projects for test_untouched.py whose every URL names the real database: multidb, Flask, a dump.

Made as their users make them (``alembic init -t multidb``, ``flask db init``, ``pg_dump``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from migration_check.postgres.server import SUPERUSER, find_binaries

__all__ = ["flask_project", "multidb_project", "start_from_dump"]

MULTIDB_MODELS = """\
import sqlalchemy as sa

metadata1 = sa.MetaData()
users = sa.Table("users", metadata1, sa.Column("id", sa.Integer, primary_key=True))
metadata2 = sa.MetaData()
events = sa.Table("events", metadata2, sa.Column("id", sa.Integer, primary_key=True))
"""

MULTIDB_REVISION = '''\
"""users and events

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade(engine_name):
    table = {"engine1": "users", "engine2": "events"}[engine_name]
    op.create_table(table, sa.Column("id", sa.Integer, primary_key=True))


def downgrade(engine_name):
    pass
'''

FLASK_APP = """\
from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()
migrate = Migrate()


def create_app():
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = {url!r}
    db.init_app(app)
    migrate.init_app(app, db)

    class User(db.Model):
        __tablename__ = "users"
        id = db.Column(db.Integer, primary_key=True)

    return app
"""

FLASK_REVISION = '''\
"""users

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("users", sa.Column("id", sa.Integer, primary_key=True))


def downgrade():
    op.drop_table("users")
'''


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def multidb_project(project: Path, url: str) -> Path:
    """``alembic init -t multidb``, both engines' URLs set to ``url``."""
    project.mkdir()
    _run([sys.executable, "-m", "alembic", "init", "-t", "multidb", "migrations"], project)
    ini = project / "alembic.ini"
    text = ini.read_text()
    for name in ("dbname2", "dbname"):
        text = text.replace(f"driver://user:pass@localhost/{name}", url)
    ini.write_text(text)
    (project / "models.py").write_text(MULTIDB_MODELS)
    env_py = project / "migrations" / "env.py"
    env_py.write_text(
        env_py.read_text().replace(
            "target_metadata = {}\n",
            "import models\n"
            "target_metadata = {'engine1': models.metadata1, 'engine2': models.metadata2}\n",
        )
    )
    (project / "migrations" / "versions" / "0001_init.py").write_text(MULTIDB_REVISION)
    return project


def flask_project(project: Path, url: str) -> Path:
    """A Flask-Migrate app whose configured database is ``url``; ``flask db init`` as users do."""
    project.mkdir()
    (project / "app.py").write_text(FLASK_APP.format(url=url))
    _run([sys.executable, "-m", "flask", "--app", "app:create_app", "db", "init"], project)
    (project / "migrations" / "versions" / "0001_users.py").write_text(FLASK_REVISION)
    return project


def start_from_dump(project: Path, scratch_url: str, admin: dict[str, object], out: Path) -> Path:
    """The base project's database at 0001, as ``pg_dump`` writes it, for ``--start-from``.

    Built with ``alembic upgrade 0001`` on a scratch database of the session's own server.
    """
    env = {**os.environ, "DATABASE_URL": scratch_url}
    for name in ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE"):
        env.pop(name, None)
    _run([sys.executable, "-m", "alembic", "upgrade", "0001"], project, env)
    database = scratch_url.split("@/", 1)[1].split("?", 1)[0]
    pg_dump = [str(find_binaries(None).bindir / "pg_dump"), "-h", str(admin["host"]),
               "-p", str(admin["port"]), "-U", SUPERUSER, "--no-owner"]  # fmt: skip
    schema = _run([*pg_dump, "--schema-only", database], project, env)
    rows = _run([*pg_dump, "--data-only", "--table=alembic_version", database], project, env)
    out.write_text(schema + rows)
    return out

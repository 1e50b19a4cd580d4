"""Flask-Migrate: env.py reads the engine and the metadata from the Flask app.

The app is made here as a Flask user would: a factory, Flask-SQLAlchemy, Flask-Migrate, and
``flask db init`` for the migrations directory; its configured database is production's,
which the check must never touch.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from migration_check.cli.app import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK, main

APP = """\
from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()
migrate = Migrate()


def create_app():
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = "postgresql+psycopg://app:secret@db.example.com/prod"
    app.config["SQLALCHEMY_BINDS"] = {
        "audit": "postgresql+psycopg://app:secret@audit.example.com/audit",
    }
    db.init_app(app)
    migrate.init_app(app, db)
    import models  # noqa: F401  (registers the tables on db.metadata)
    return app
"""

MODELS = """\
from app import db


class User(db.Model):
    __tablename__ = "users"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(50), nullable=False)
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


def upgrade():
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade():
    op.drop_table("users")
'''


@pytest.fixture
def flask_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    project = tmp_path / "flaskproj"
    project.mkdir()
    (project / "app.py").write_text(APP)
    (project / "models.py").write_text(MODELS)
    proc = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app:create_app", "db", "init"],
        cwd=project, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (project / "migrations" / "versions" / "0001_users.py").write_text(REVISION)
    monkeypatch.chdir(project)
    return project


def test_flask_migrate_app(flask_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["--flask-app", "app:create_app"])
    out, err = capsys.readouterr()
    assert rc == EXIT_OK, out + err
    assert "models and migrations agree (1 revision(s) applied, head 0001" in out

    models = flask_project / "models.py"
    models.write_text(models.read_text() + "    email = db.Column(db.String(100))\n")
    rc = main(["--flask-app", "app:create_app"])
    out, err = capsys.readouterr()
    assert rc == EXIT_FINDINGS, out + err
    assert "users.email" in out
    assert "[add_column]" in out
    # The writer runs the app the same way, so it is the command to type (no database needed).
    assert 'check-migrations revision --flask-app app:create_app -m "describe the change"' in out
    rc = main(["revision", "--flask-app", "app:create_app", "-m", "add email", "--rev-id", "0002"])
    out, err = capsys.readouterr()
    assert rc == EXIT_OK, out + err
    assert out.strip().endswith("0002_add_email.py")
    assert main(["--flask-app", "app:create_app"]) == EXIT_OK, capsys.readouterr()


def test_flask_app_from_pyproject_setting(
    flask_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (flask_project / "pyproject.toml").write_text(
        '[tool.check-migrations]\nflask-app = "app:create_app"\n'
    )
    rc = main([])
    out, err = capsys.readouterr()
    assert rc == EXIT_OK, out + err


def test_flask_env_py_without_the_option_says_which_option(
    flask_project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHECK_MIGRATIONS_QUIET", "1")
    assert main(["-c", "migrations/alembic.ini"]) == EXIT_ERROR
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "--flask-app module:create_app" in err

    # With script_location set by hand, env.py itself stops outside the app context.
    ini = flask_project / "migrations" / "alembic.ini"
    ini.write_text(
        ini.read_text().replace("[alembic]\n", "[alembic]\nscript_location = %(here)s\n")
    )
    assert main(["-c", "migrations/alembic.ini"]) == EXIT_ERROR
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Working outside of application context" in err
    assert "--flask-app module:create_app" in err


def test_models_never_imported_is_not_every_table_removed(
    flask_project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHECK_MIGRATIONS_QUIET", "1")
    app = flask_project / "app.py"
    app.write_text(app.read_text().replace("    import models", "    # import models"))
    assert main(["--flask-app", "app:create_app"]) == EXIT_ERROR
    out, err = capsys.readouterr()
    err = err.strip()
    assert len(err.splitlines()) == 1, err
    assert "remove_table" not in out + err
    assert "holds no tables, while the migrated database has 1 (users)" in err
    assert "the models are probably not imported" in err
    assert "migrations/env.py:" in err
    assert "get_metadata()" in err


def test_factory_that_creates_tables_is_named(
    flask_project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHECK_MIGRATIONS_QUIET", "1")
    app = flask_project / "app.py"
    app.write_text(
        app.read_text().replace(
            "    return app\n",
            "    with app.app_context():\n        db.create_all()\n    return app\n",
        )
    )
    assert main(["--flask-app", "app:create_app"]) == EXIT_ERROR
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "creating the app created tables (users) before any revision ran" in err

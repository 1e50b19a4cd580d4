"""The versions real projects run: SQLAlchemy 1.4 and 2.x, Alembic from 1.11 (a version matrix).

Each row is a venv with those versions pinned and this repository installed into it, as a
project on them would add the checker; its scratch projects are made by that venv's own
``alembic init -t generic`` / ``-t async``. The truth is plain Alembic's, run in the same venv
(alembic_truth.py). What an old version cannot do is said in one line: SQLAlchemy 1.4 has no
psycopg 3 dialect, so the catalog comparison is skipped there, with one warning.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .realproject import Venv, alembic_truth, check, make_venv

ROWS = {
    "sqlalchemy-1.4-alembic-1.11": [
        "sqlalchemy[asyncio]==1.4.54",
        "alembic==1.11.3",
        "psycopg2-binary==2.9.10",
        "asyncpg==0.30.0",
    ],
    "sqlalchemy-2.0-alembic-1.13": [
        "sqlalchemy[asyncio]==2.0.36",
        "alembic==1.13.3",
        "psycopg2-binary==2.9.10",
        "asyncpg==0.30.0",
    ],
}
OLD_SQLALCHEMY = "sqlalchemy-1.4-alembic-1.11"
SKIPPED = "the catalog comparison needs SQLAlchemy 2.0 or later (this project has 1.4.54)"

# Written in the style both versions accept: declarative_base() and Column.
MODELS = """\
from sqlalchemy import CheckConstraint, Column, Integer, MetaData, String
from sqlalchemy.orm import declarative_base

Base = declarative_base(metadata=MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s", "ck": "ck_%(table_name)s_%(constraint_name)s",
    "pk": "pk_%(table_name)s",
}))


class User(Base):
    __tablename__ = "users"
    id = Column(Integer, primary_key=True)
    name = Column(String(50), nullable=False, index=True)
    __table_args__ = (CheckConstraint("length(name) > 0", name="name_nonempty"),)
"""
DRIVERS = {"generic": "postgresql", "async": "postgresql+asyncpg"}


@pytest.fixture(scope="session", params=sorted(ROWS))
def row(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def venvs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Venv]:
    return {
        name: make_venv(tmp_path_factory.mktemp(name) / "venv", pins) for name, pins in ROWS.items()
    }


def _project(venv: Venv, root: Path, template: str) -> Path:
    """What a user on these versions has: ``alembic init``, models, env.py pointed at them."""
    done = venv.run(
        [str(venv.root / "bin" / "alembic"), "init", "-t", template, "migrations"], root
    )
    assert done.returncode == 0, done.stderr
    (root / "models.py").write_text(MODELS)
    env_py = root / "migrations" / "env.py"
    env_py.write_text(
        env_py.read_text().replace(
            "target_metadata = None",
            "from models import Base\ntarget_metadata = Base.metadata",
        )
    )
    ini = root / "alembic.ini"
    text = ini.read_text()
    old = "sqlalchemy.url = driver://user:pass@localhost/dbname"
    assert old in text, "alembic init wrote another placeholder URL"
    ini.write_text(text.replace(old, f"sqlalchemy.url = {DRIVERS[template]}://"))
    return root


def _revision(venv: Venv, project: Path, server_url: str, message: str) -> None:
    done = venv.run(
        [str(venv.root / "bin" / "check-migrations"), "revision", "-m", message,
         "--database-url", server_url],
        cwd=project,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def _truth_url(row: str, scratch_url: str) -> str:
    # Plain Alembic in the venv connects with what that SQLAlchemy has.
    if row == OLD_SQLALCHEMY:
        return scratch_url.replace("postgresql+psycopg://", "postgresql+psycopg2://")
    return scratch_url


@pytest.mark.parametrize("template", sorted(DRIVERS))
def test_a_project_on_these_versions_is_checked(
    row: str,
    venvs: dict[str, Venv],
    template: str,
    tmp_path: Path,
    server_url: str,
    admin_conninfo: dict[str, object],
) -> None:
    venv = venvs[row]
    project = _project(venv, tmp_path, template)

    empty = check(venv, project, server_url)
    assert empty.exit_code == 1
    assert empty.keys == {("add_table", "users", None), ("add_index", "users", "ix_users_name")}

    _revision(venv, project, server_url, "users")
    written = check(venv, project, server_url)
    assert written.exit_code == 0, written.document["findings"]
    assert (SKIPPED in written.stderr) is (row == OLD_SQLALCHEMY), written.stderr
    assert written.stderr.count("catalog comparison needs") <= 1

    models = project / "models.py"
    models.write_text(
        models.read_text().replace(
            "    name = Column(String(50), nullable=False, index=True)\n",
            "    name = Column(String(50), nullable=False, index=True)\n"
            "    email = Column(String(80))\n",
        )
    )
    drifted = check(venv, project, server_url)
    assert drifted.exit_code == 1
    assert drifted.keys == {("add_column", "users", "email")}
    [finding] = drifted.document["findings"]
    assert finding["file"].endswith("models.py"), finding
    assert finding["line"] == 14, finding  # the email attribute


def test_the_verdict_is_plain_alembics(
    row: str, venvs: dict[str, Venv], tmp_path: Path, server_url: str, scratch_url: str
) -> None:
    venv = venvs[row]
    project = _project(venv, tmp_path, "generic")
    _revision(venv, project, server_url, "users")
    models = project / "models.py"
    models.write_text(models.read_text().replace("String(50)", "String(80)"))
    truth = alembic_truth(venv, project / "alembic.ini", _truth_url(row, scratch_url))
    # Alembic compares types by default since 1.12; before, env.py has to ask (compare_type).
    assert truth == (set() if row == OLD_SQLALCHEMY else {("modify_type", "users", "name")})
    checked = check(venv, project, server_url)
    assert checked.exit_code == (0 if row == OLD_SQLALCHEMY else 1)
    assert checked.by_source("autogenerate") == truth


def test_the_catalog_opinion_where_the_version_has_it(
    row: str, venvs: dict[str, Venv], tmp_path: Path, server_url: str
) -> None:
    """A CHECK constraint edited: autogenerate cannot see it; the catalog can, on SQLAlchemy 2."""
    venv = venvs[row]
    project = _project(venv, tmp_path, "generic")
    _revision(venv, project, server_url, "users")
    models = project / "models.py"
    models.write_text(models.read_text().replace("length(name) > 0", "length(name) > 1"))
    checked = check(venv, project, server_url)
    if row == OLD_SQLALCHEMY:
        assert checked.exit_code == 0, checked.document["findings"]
        assert SKIPPED in checked.stderr
    else:
        assert checked.exit_code == 1
        [(kind, table, name)] = checked.by_source("catalog")
        assert "check" in kind, kind
        assert (table, name) == ("users", "ck_users_name_nonempty")


def test_the_bounds_the_distribution_declares_are_the_matrix() -> None:
    """pyproject's lower bounds are the oldest row: a user on them is what this suite runs."""
    text = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"alembic>=1.11"' in text
    assert '"sqlalchemy[asyncio]>=1.4,<3"' in text

"""keystone 30.0.0 (OpenStack Identity, on oslo.db) on PostgreSQL.

A shape optuna does not have: expand and contract branches (two labelled heads), revisions in
one ``versions/RELEASE/BRANCH`` directory per release that keystone lists in
``version_locations`` itself (``keystone.common.sql.upgrades._find_alembic_conf``), and an
env.py whose ``include_object`` hides known drift by table and columns
(``(object.table.name, [c.name for c in object.columns]) not in BORKED_INDEXES``) on both
sides: the migrated database has indexes named ``external_id``/``user_id`` where the models
have ``ix_access_rule_external_id``/..., so a checker that does not hand the filter the
reflected objects reports a clean keystone as drifted. Upstream asserts the sync on PostgreSQL
(``keystone.tests.unit.common.sql.test_upgrades.TestModelsSyncPostgreSQL``).

keystone's env.py imports no model (its own callers, ``keystone-manage`` and the tests, load
the backends first) and its initial revision reads ``CONF.saml``. What a user adopting the
checker writes, and all this suite writes: an env.py that imports the sql backends, runs
``keystone.conf.configure()`` as ``keystone-manage`` does and then runs keystone's own env.py,
and an alembic.ini (keystone's, with that script_location, keystone's version_locations and a
placeholder URL the checker and the truth both replace).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .realproject import Venv, alembic_truth, check, make_venv, mutated

# What defines the schema and its comparison is pinned; keystone's other dependencies
# (keystonemiddleware, pysaml2, ...) cannot change a table.
PINS = ["keystone==30.0.0", "oslo.db==18.1.1", "sqlalchemy==2.1.9", "alembic==1.20.1"]

# Every module of keystone 30.0.0 that declares a table on keystone.common.sql.ModelBase.
BACKENDS = (
    "application_credential.backends.sql",
    "assignment.backends.sql",
    "assignment.role_backends.sql_model",
    "catalog.backends.sql",
    "credential.backends.sql",
    "endpoint_policy.backends.sql",
    "federation.backends.sql",
    "identity.backends.sql_model",
    "identity.mapping_backends.sql",
    "limit.backends.sql",
    "oauth1.backends.sql",
    "policy.backends.sql",
    "resource.backends.sql_model",
    "resource.config_backends.sql",
    "revoke.backends.sql",
    "trust.backends.sql",
)

ENV_PY = f'''"""keystone's own env.py, after the models and options it does not load itself."""

import importlib
import runpy
from pathlib import Path

import keystone.common.sql.migrations as upstream
import keystone.conf

for module in {BACKENDS!r}:
    importlib.import_module(f"keystone.{{module}}")

# What keystone-manage does before db_sync: the initial revision reads CONF.saml.
keystone.conf.configure()
runpy.run_path(str(Path(upstream.__file__).parent / "env.py"))
'''


@pytest.fixture(scope="session")
def keystone_venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    return make_venv(tmp_path_factory.mktemp("keystone") / "venv", PINS)


@pytest.fixture(scope="session")
def sql_dir(keystone_venv: Venv) -> Path:
    return keystone_venv.site_packages / "keystone" / "common" / "sql"


@pytest.fixture(scope="session")
def project(sql_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("keystone-project")
    (root / "env").mkdir()
    (root / "env" / "env.py").write_text(ENV_PY)
    # Alembic's revision command reads the template beside env.py.
    mako = (sql_dir / "migrations" / "script.py.mako").read_text()
    (root / "env" / "script.py.mako").write_text(mako)
    versions = sql_dir / "migrations" / "versions"
    # keystone's _find_alembic_conf: versions/ and each versions/RELEASE/BRANCH that exists.
    locations = [versions, *sorted(p.parent for p in versions.glob("*/*/*.py"))]
    upstream = (sql_dir / "alembic.ini").read_text()
    ini = upstream.replace(
        "script_location = %(here)s/migrations\n",
        "script_location = %(here)s/env\n"
        f"version_locations = {':'.join(str(p) for p in dict.fromkeys(locations))}\n",
    )
    ini = ini.replace(
        "sqlalchemy.url = sqlite:///keystone.db\n", "sqlalchemy.url = postgresql://\n"
    )
    assert "version_locations = /" in ini, "keystone's alembic.ini changed its script_location"
    assert "sqlite" not in ini, "keystone's alembic.ini changed its sqlalchemy.url"
    assert "version_path_separator = os\n" in ini
    (root / "alembic.ini").write_text(ini)
    return root


@pytest.fixture
def catalog_models(sql_dir: Path) -> Path:
    return sql_dir.parents[1] / "catalog" / "backends" / "sql.py"


def test_clean_agrees_through_the_filters(
    keystone_venv: Venv, project: Path, server_url: str, truth_url: str
) -> None:
    # Plain Alembic through keystone's env.py: no diff (its include_object hides the known ones).
    assert alembic_truth(keystone_venv, project / "alembic.ini", truth_url) == set()

    checked = check(keystone_venv, project, server_url)
    assert checked.exit_code == 0, checked.document["findings"]
    assert checked.document["verdict"] == "in_sync"
    assert checked.document["findings"] == []
    # 27e647c0fad4, the yoga, bobcat, 2024.1, 2025.2 and 2026.1 revisions of both branches.
    assert checked.document["revisions_applied"] == 10


MUTATIONS = {
    "add_column": (
        "    parent_region_id = sql.Column(sql.String(255), nullable=True)\n",
        "    parent_region_id = sql.Column(sql.String(255), nullable=True)\n"
        "    note = sql.Column(sql.String(64), nullable=True)\n",
        ("add_column", "region", "note"),
        "note",
    ),
    # Not a column's type or nullability: keystone's process_revision_directives (autogen.py)
    # raises NotImplementedError for every AlterColumnOp, in `alembic check` as in the checker.
    "add_index": (
        "    parent_region_id = sql.Column(sql.String(255), nullable=True)\n",
        "    parent_region_id = sql.Column(sql.String(255), nullable=True, index=True)\n",
        ("add_index", "region", "ix_region_parent_region_id"),
        "parent_region_id",
    ),
    # The index 2025.2's e8725d6fa226 creates, dropped from the model: only the database has it,
    # so env.py's include_object is handed the reflected index (and lets it through).
    "drop_index": (
        "        sql.Index('idx_project_id', 'project_id'),\n",
        "",
        ("remove_index", "project_endpoint_group", "idx_project_id"),
        None,
    ),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_model_only_mutation_is_named(
    name: str,
    keystone_venv: Venv,
    project: Path,
    catalog_models: Path,
    server_url: str,
    truth_url: str,
) -> None:
    old, new, expected, attribute = MUTATIONS[name]
    with mutated(catalog_models, old, new):
        truth = alembic_truth(keystone_venv, project / "alembic.ini", truth_url)
        checked = check(keystone_venv, project, server_url)
        mutated_lines = catalog_models.read_text().splitlines()
    assert truth == {expected}, "plain Alembic does not see the mutation"
    assert checked.exit_code == 1
    assert checked.keys == {expected}
    [finding] = checked.document["findings"]
    assert finding["source"] == "autogenerate"
    if attribute is not None:
        assert finding["file"].endswith("keystone/catalog/backends/sql.py"), finding
        assert attribute in mutated_lines[finding["line"] - 1], finding


def test_a_column_change_stops_the_check_as_it_stops_alembic_check(
    keystone_venv: Venv,
    project: Path,
    catalog_models: Path,
    server_url: str,
    truth_url: str,
    tmp_path: Path,
) -> None:
    """keystone's process_revision_directives raises for every AlterColumnOp (autogen.py).

    So `alembic check` itself fails on a changed column type: the checker must fail too, with
    one line naming keystone's error, never read the diff as "in sync".
    """
    ini = tmp_path / "alembic.ini"
    url = truth_url.replace("%", "%%")
    text = (project / "alembic.ini").read_text().replace("%(here)s/env", str(project / "env"))
    ini.write_text(text.replace("sqlalchemy.url = postgresql://\n", f"sqlalchemy.url = {url}\n"))
    alembic = str(keystone_venv.root / "bin" / "alembic")
    old = "    description = sql.Column(sql.String(255), nullable=False)\n    # NOTE(jaypipes)"
    with mutated(catalog_models, old, old.replace("255", "128")):
        upgraded = keystone_venv.run([alembic, "-c", str(ini), "upgrade", "heads"], cwd=tmp_path)
        plain = keystone_venv.run([alembic, "-c", str(ini), "check"], cwd=tmp_path)
        checked = keystone_venv.run(
            [str(keystone_venv.root / "bin" / "check-migrations"), "--database-url", server_url],
            cwd=project,
        )
    assert upgraded.returncode == 0, upgraded.stderr
    refusal = "NotImplementedError: Don't know if operation is an expand or contract"
    assert plain.returncode == 1
    assert refusal in plain.stderr
    assert checked.returncode == 2, checked.stdout
    assert "Traceback" not in checked.stderr
    [error] = [ln for ln in checked.stderr.splitlines() if "error:" in ln]
    assert error.startswith("check-migrations: error: env/env.py:"), error
    assert refusal in error

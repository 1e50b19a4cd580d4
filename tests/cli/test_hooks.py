"""The commit hook end to end: a scratch git repository, real pre-commit, real ``git commit``.

Two ways a project wires the check, each driven through the same story (model change refused,
revision generated with ``alembic revision --autogenerate`` and added, commit accepted):

- ``repo: local`` with ``language: system``: ``check-migrations`` runs in the project's own
  environment (here, this test's virtualenv, which has the console script).
- the published ``.pre-commit-hooks.yaml`` (``language: python``): pre-commit clones this
  repository at a commit and pip-installs it into a hook environment; the consumer's model
  dependency comes in through ``additional_dependencies``.

These tests are slow (each commit starts a server; the second builds a hook environment), so
there are few of them and each walks a whole story.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from migration_check.run.untracked import untracked_revisions
from tests.helpers.paths import REPO, SCENARIOS

HOOK_FILES = r"^(models\.py|alembic/|alembic\.ini)$"
LOCAL_CONFIG = f"""\
repos:
  - repo: local
    hooks:
      - id: check-migrations
        name: check-migrations
        entry: check-migrations
        language: system
        pass_filenames: false
        files: {HOOK_FILES}
"""


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pre-commit's cache (cloned hook repositories, hook environments), private to this module."""
    return tmp_path_factory.mktemp("pre-commit-home")


@pytest.fixture
def git_env(pre_commit_home: Path) -> dict[str, str]:
    # GIT_* from an outer hook (GIT_INDEX_FILE, GIT_DIR) would point git at the wrong repository.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["PRE_COMMIT_HOME"] = str(pre_commit_home)
    # The project's own environment, as a developer's activated virtualenv or `uv run` gives it.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["GIT_CONFIG_NOSYSTEM"] = "1"
    env["GIT_CONFIG_GLOBAL"] = os.devnull
    return env


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        timeout=900, check=False,
    )  # fmt: skip


def _ok(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = _run(args, cwd, env)
    assert proc.returncode == 0, f"{args} exited {proc.returncode}:\n{proc.stdout}"
    return proc.stdout


def _init_repo(path: Path, env: dict[str, str]) -> None:
    _ok(["git", "init", "-q", "-b", "main"], path, env)
    _ok(["git", "config", "user.name", "Hook Test"], path, env)
    _ok(["git", "config", "user.email", "hook-test@example.invalid"], path, env)
    _ok(["git", "config", "commit.gpgsign", "false"], path, env)


def _commit(repo: Path, env: dict[str, str], message: str) -> subprocess.CompletedProcess[str]:
    return _run(["git", "commit", "-m", message], repo, env)


def _head(repo: Path, env: dict[str, str]) -> str:
    return _ok(["git", "log", "-1", "--format=%s"], repo, env).strip()


def _consumer(tmp_path: Path, env: dict[str, str], config: str) -> Path:
    """A consumer project in a fresh git repository with its hook installed, nothing committed."""
    repo = tmp_path / "consumer"
    shutil.copytree(SCENARIOS / "hook_project", repo)
    _init_repo(repo, env)
    (repo / ".pre-commit-config.yaml").write_text(config)
    _ok([sys.executable, "-m", "pre_commit", "install"], repo, env)
    return repo


def _add_phone(repo: Path) -> int:
    """Add a column to the model; return its line."""
    models = repo / "models.py"
    text = models.read_text()
    anchor = "    email: Mapped[str] = mapped_column(String(200))\n"
    assert anchor in text
    models.write_text(
        text.replace(anchor, anchor + "    phone: Mapped[str | None] = mapped_column(String(30))\n")
    )
    return next(i for i, ln in enumerate(models.read_text().splitlines(), 1) if "phone" in ln)


def _autogenerate(repo: Path, env: dict[str, str], scratch_url: str) -> str:
    """Write the missing revision the way a developer does; return its path in the repository."""
    env = {**env, "DATABASE_URL": scratch_url}
    before = set((repo / "alembic" / "versions").glob("*.py"))
    _ok([sys.executable, "-m", "alembic", "upgrade", "head"], repo, env)
    _ok([sys.executable, "-m", "alembic", "revision", "--autogenerate", "-m", "add phone"],
        repo, env)  # fmt: skip
    [new] = set((repo / "alembic" / "versions").glob("*.py")) - before
    assert "op.add_column('users', sa.Column('phone'" in new.read_text()
    return new.relative_to(repo).as_posix()


def test_local_hook_refuses_a_model_change_without_its_revision(
    tmp_path: Path, git_env: dict[str, str]
) -> None:
    repo = _consumer(tmp_path, git_env, LOCAL_CONFIG)
    _ok(["git", "add", "-A"], repo, git_env)
    first = _commit(repo, git_env, "initial")
    assert first.returncode == 0, first.stdout
    assert re.search(r"check-migrations\.+Passed", first.stdout), first.stdout

    # A model change alone is refused, naming table.column at the model's line.
    line = _add_phone(repo)
    _ok(["git", "add", "models.py"], repo, git_env)
    refused = _commit(repo, git_env, "add phone")
    assert refused.returncode != 0
    assert re.search(r"check-migrations\.+Failed", refused.stdout), refused.stdout
    assert f"models.py:{line}: users.phone: column phone VARCHAR(30)" in refused.stdout
    # The hook prints the writer's command (it never writes files itself); run it as printed.
    printed = re.search(r"^\s*(check-migrations revision .*)$", refused.stdout, re.MULTILINE)
    assert printed, refused.stdout
    assert printed.group(1) == 'check-migrations revision -m "describe the change" --rev-id 0002'
    assert _head(repo, git_env) == "initial"
    assert not (repo / "alembic" / "versions" / "0002_describe_the_change.py").exists()

    # The trap: the revision exists on disk but was never added, so the commit would lack it.
    written = _ok(shlex.split(printed.group(1)), repo, git_env)
    revision = "alembic/versions/0002_describe_the_change.py"
    assert revision in written.splitlines()
    assert "op.add_column('users', sa.Column('phone'" in (repo / revision).read_text()
    trapped = _commit(repo, git_env, "add phone")
    assert trapped.returncode != 0, trapped.stdout
    assert f"{revision}:1: revision file not tracked by git" in trapped.stdout
    assert f"fix: git add {revision}" in trapped.stdout
    assert "revision files are not tracked by git." in trapped.stdout
    assert _head(repo, git_env) == "initial"

    # With the revision added, the same commit goes through.
    _ok(["git", "add", revision], repo, git_env)
    accepted = _commit(repo, git_env, "add phone")
    assert accepted.returncode == 0, accepted.stdout
    assert re.search(r"check-migrations\.+Passed", accepted.stdout), accepted.stdout
    assert _head(repo, git_env) == "add phone"
    assert revision in _ok(["git", "show", "--name-only", "HEAD"], repo, git_env)

    # A commit that touches no model or migration never reaches the checker.
    (repo / "README.md").write_text("# A consumer project\n\nNow with phones.\n")
    _ok(["git", "add", "README.md"], repo, git_env)
    docs = _commit(repo, git_env, "docs")
    assert docs.returncode == 0, docs.stdout
    assert re.search(r"check-migrations\.+\(no files to check\)Skipped", docs.stdout), docs.stdout
    assert "models and migrations agree" not in docs.stdout


def _snapshot_of_this_repository(dest: Path, env: dict[str, str]) -> str:
    """This working tree (tracked and unignored files) as a commit pre-commit can clone.

    pre-commit installs a hook repository from a commit; a snapshot tests the code as it is
    now, including changes not committed yet.
    """
    listed = _ok(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], REPO, env)
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    _init_repo(dest, env)
    _ok(["git", "add", "-A"], dest, env)
    _ok(["git", "commit", "-q", "--no-verify", "-m", "snapshot"], dest, env)
    return _ok(["git", "rev-parse", "HEAD"], dest, env).strip()


def test_published_hook_with_additional_dependencies(
    tmp_path: Path, git_env: dict[str, str], scratch_url: str
) -> None:
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert [h["id"] for h in hooks] == ["check-migrations"]
    published = tmp_path / "check-migrations-repo"
    rev = _snapshot_of_this_repository(published, git_env)
    config = f"""\
repos:
  - repo: {published}
    rev: {rev}
    hooks:
      - id: check-migrations
        files: {HOOK_FILES}
        additional_dependencies: [inflection]
"""
    repo = _consumer(tmp_path, git_env, config)
    # The consumer's models need a package the checker does not: only the hook's
    # additional_dependencies can bring it into the isolated hook environment.
    models = repo / "models.py"
    models.write_text(
        "import inflection\n"
        + models.read_text().replace('__tablename__ = "users"', '__tablename__ = '
                                     'inflection.tableize("User")')
    )  # fmt: skip
    _ok(["git", "add", "-A"], repo, git_env)
    first = _commit(repo, git_env, "initial")
    assert first.returncode == 0, first.stdout
    assert re.search(r"check-migrations\.+Passed", first.stdout), first.stdout

    line = _add_phone(repo)
    _ok(["git", "add", "models.py"], repo, git_env)
    refused = _commit(repo, git_env, "add phone")
    assert refused.returncode != 0
    assert f"models.py:{line}: users.phone: column phone VARCHAR(30)" in refused.stdout

    # The revision is generated in the consumer's own environment, which lacks inflection:
    # give it a stand-in so autogenerate can import the models.
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "inflection.py").write_text(
        "def tableize(word: str) -> str:\n    return word.lower() + 's'\n"
    )
    dev_env = {**git_env, "PYTHONPATH": str(shim)}
    revision = _autogenerate(repo, dev_env, scratch_url)
    _ok(["git", "add", revision], repo, git_env)
    accepted = _commit(repo, git_env, "add phone")
    assert accepted.returncode == 0, accepted.stdout
    assert _head(repo, git_env) == "add phone"


def test_this_repositorys_hook_config() -> None:
    """This repository's own hooks: ruff, ruff format, mypy, and the drift check scoped to the
    schema's files, run through uv."""
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    hooks = {h["id"]: h for repo in config["repos"] for h in repo["hooks"]}
    expected = {"ruff-check", "ruff-format", "mypy", "import-linter", "check-migrations"}
    assert expected <= hooks.keys()
    check = hooks["check-migrations"]
    assert check["entry"] == "uv run python tools/check_migrations.py"
    assert check["pass_filenames"] is False
    files = re.compile(check["files"])
    for path in ("expense_models/expenses.py", "alembic/versions/0003_x.py", "alembic.ini",
                 "alembic/env.py"):  # fmt: skip
        assert files.search(path), path
    for path in ("README.md", "tools/migration_check/cli/app.py", "tests/cli/test_cli.py",
                 "alembic.ini.bak"):  # fmt: skip
        assert not files.search(path), path
    for name in (".pre-commit-config.yaml", ".pre-commit-hooks.yaml"):
        kind = "validate-config" if "config" in name else "validate-manifest"
        proc = subprocess.run(
            [sys.executable, "-m", "pre_commit", kind, str(REPO / name)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_hook_id_is_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    for hook in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text()):
        assert f"id: {hook['id']}" in readme, hook["id"]


def test_untracked_revisions_respects_gitignore_and_pycache(
    tmp_path: Path, git_env: dict[str, str]
) -> None:
    """Only .py files git neither tracks nor ignores count; outside a repository, none do."""
    versions = tmp_path / "alembic" / "versions"
    (versions / "__pycache__").mkdir(parents=True)
    (versions / "sub").mkdir()
    for name in ("0001_tracked.py", "0002_new.py", "0003_ignored.py", "notes.txt",
                 "__pycache__/0002_new.cpython-311.py", "sub/0004_nested.py"):  # fmt: skip
        (versions / name).write_text("")
    assert untracked_revisions([str(versions)]) == []  # not a git work tree (yet)

    _init_repo(tmp_path, git_env)
    (tmp_path / ".gitignore").write_text("0003_ignored.py\n")
    _ok(["git", "add", ".gitignore", "alembic/versions/0001_tracked.py"], tmp_path, git_env)
    assert untracked_revisions([str(versions), str(tmp_path / "missing")]) == [
        versions / "0002_new.py",
        versions / "sub" / "0004_nested.py",
    ]
    _ok(["git", "add", "alembic"], tmp_path, git_env)
    assert untracked_revisions([str(versions)]) == []

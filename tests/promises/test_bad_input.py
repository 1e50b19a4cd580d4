"""Bad input: every case ends in exit 2 and ONE stderr line naming the culprit and the fix.

Each case starts from a scenario project (a copy of ``tests/scenarios/base`` or a ``bad_*``
directory) and breaks one thing. Progress lines are silenced (CHECK_MIGRATIONS_QUIET=1), so
stderr must be exactly the error line: no traceback, no second line. Two cases are not errors
at all and say so: an empty history with models present is drift (exit 1), and two heads is a
finding (exit 1) that prints the ``alembic merge heads`` command.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from migration_check.cli.app import EXIT_ERROR, EXIT_FINDINGS, main
from tests.helpers.checker import (
    free_port,
    shared_dir,
)
from tests.helpers.edits import edit
from tests.helpers.prereq import require_mount, require_root
from tests.helpers.scenarios import ScenarioFactory
from tests.helpers.second_server import (
    NOCREATE,
    NOCREATE_PASSWORD,
    OWNER_PASSWORD,
    PASSWORDS,
    SecondServer,
)

Setup = Callable[[Path, "Ctx"], list[str]]


@dataclass
class Ctx:
    """What a case may need beyond its project: the second server, a scratch directory."""

    tmp: Path
    shared: Path  # traversable by the server user, unlike tmp_path
    server: SecondServer | None = None
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    setup: Setup
    scenario: str = "base"
    exit: int = EXIT_ERROR
    # Regexes the one stderr line (or stdout, for exit 1) must match.
    expect: tuple[str, ...] = ()
    needs_server: bool = False
    root: bool = False  # the workflow runs these in its root job


def _revision(project: Path, rev: str, down: str | None, body: str, name: str = "") -> Path:
    path = project / "versions" / f"{rev}_{name or 'change'}.py"
    path.write_text(
        f'"""{name or "change"}\n\nRevision ID: {rev}\n"""\n'
        "import sqlalchemy as sa\nfrom alembic import op\n\n"
        f"revision = {rev!r}\ndown_revision = {down!r}\n"
        "branch_labels = None\ndepends_on = None\n\n\n"
        f"def upgrade() -> None:\n{body}\n\n\ndef downgrade() -> None:\n    pass\n"
    )
    return path


def _env_prepend(project: Path, code: str) -> None:
    env = project / "env.py"
    edit(env, "config = context.config\n", f"config = context.config\n{code}\n")


def no_alembic_ini(project: Path, ctx: Ctx) -> list[str]:
    (project / "alembic.ini").unlink()
    return []


def ini_not_ini(project: Path, ctx: Ctx) -> list[str]:
    (project / "alembic.ini").write_text("script_location = .\n[alembic\n")
    return []


def wrong_script_location(project: Path, ctx: Ctx) -> list[str]:
    edit(project / "alembic.ini", "script_location = %(here)s", "script_location = migrations")
    return []


def missing_section(project: Path, ctx: Ctx) -> list[str]:
    return ["--name", "tenants"]


def env_raises(project: Path, ctx: Ctx) -> list[str]:
    _env_prepend(project, 'raise RuntimeError("SECRET_KEY is not set")')
    return []


def env_exits(project: Path, ctx: Ctx) -> list[str]:
    _env_prepend(project, 'import sys\nsys.exit("configure APP_ENV first")')
    return []


def env_never_runs_migrations(project: Path, ctx: Ctx) -> list[str]:
    edit(project / "env.py", "run_migrations_online()\n", "")
    return []


def env_never_commits(project: Path, ctx: Ctx) -> list[str]:
    # Its own engine on DATABASE_URL (allowed: the scratch database), an explicit begin(),
    # and no commit: the upgrade "succeeds" and is rolled back when the connection closes.
    edit(
        project / "env.py",
        "    with engine.connect() as connection:\n",
        "    with engine.connect() as connection:\n        connection.begin()\n",
    )
    edit(
        project / "env.py",
        '    connectable = config.attributes.get("connection")',
        "    connectable = None",
    )
    return []


def target_metadata_none(project: Path, ctx: Ctx) -> list[str]:
    edit(project / "env.py", "target_metadata = metadata", "target_metadata = None")
    return []


def model_import_error(project: Path, ctx: Ctx) -> list[str]:
    edit(
        project / "models.py",
        "from sqlalchemy import",
        "import billing_helpers\nfrom sqlalchemy import",
    )
    return []


def model_syntax_error(project: Path, ctx: Ctx) -> list[str]:
    edit(project / "models.py", "class User(Base):", "class User(Base)")
    return []


def revision_syntax_error(project: Path, ctx: Ctx) -> list[str]:
    _revision(
        project, "0003", "0002", "    op.add_column('users', sa.Column('x', sa.Integer()", "oops"
    )
    return []


def revision_sql_fails(project: Path, ctx: Ctx) -> list[str]:
    return []


def revision_raises(project: Path, ctx: Ctx) -> list[str]:
    _revision(
        project, "0003", "0002", "    op.add_column('users', sa.Column('x', sa.Intger()))", "typo"
    )
    return []


def missing_down_revision(project: Path, ctx: Ctx) -> list[str]:
    _revision(project, "0003", "0099", "    pass", "orphan")
    return []


def revision_cycle(project: Path, ctx: Ctx) -> list[str]:
    edit(project / "versions" / "0001_initial.py", "down_revision = None", 'down_revision = "0002"')
    return []


def not_from_empty(project: Path, ctx: Ctx) -> list[str]:
    return []


def empty_versions(project: Path, ctx: Ctx) -> list[str]:
    for path in (project / "versions").glob("*.py"):
        path.unlink()
    return []


def two_heads(project: Path, ctx: Ctx) -> list[str]:
    _revision(project, "0003", "0001", "    pass", "branch")
    return []


def malformed_dotenv(project: Path, ctx: Ctx) -> list[str]:
    (project / ".env").write_text(
        f"APP_ENV=dev\nDATABASE_URL=postgresql+psycopg://app:{OWNER_PASSWORD}@db/app\n"
        "this line is not an assignment\n"
    )
    return []


def unreachable_url(project: Path, ctx: Ctx) -> list[str]:
    # A closed local port: nothing listens there, the kernel refuses at once.
    return ["--database-url", f"postgresql://app:{OWNER_PASSWORD}@127.0.0.1:{free_port()}/app"]


def wrong_password(project: Path, ctx: Ctx) -> list[str]:
    assert ctx.server is not None
    return ["--database-url", ctx.server.url("postgres", password="Pw-wrong-" + "3a9f")]


def role_without_createdb(project: Path, ctx: Ctx) -> list[str]:
    assert ctx.server is not None
    return [
        "--database-url",
        ctx.server.url("postgres", user=NOCREATE, password=NOCREATE_PASSWORD),
    ]


def bad_database_url(project: Path, ctx: Ctx) -> list[str]:
    return ["--database-url", f"app:{OWNER_PASSWORD}@db.internal/app"]


def no_binaries(project: Path, ctx: Ctx) -> list[str]:
    empty = ctx.tmp / "pg" / "bin"
    empty.mkdir(parents=True)
    return ["--postgres-bin", str(empty)]


def server_will_not_start(project: Path, ctx: Ctx) -> list[str]:
    fake = ctx.shared / "fakepg" / "bin"
    fake.mkdir(parents=True)
    for name, script in {
        "initdb": '#!/bin/sh\nfor a; do case "$a" in -D) ;; esac; done\n'
        'while [ $# -gt 0 ]; do [ "$1" = -D ] && mkdir -p "$2" && echo 18 > "$2/PG_VERSION"; '
        "shift; done\nexit 0\n",
        "postgres": "#!/bin/sh\necho 'FATAL:  could not map anonymous shared memory: "
        "Cannot allocate memory' >&2\nexit 1\n",
    }.items():
        (fake / name).write_text(script)
        (fake / name).chmod(0o755)
    fake.parent.chmod(0o755)
    fake.chmod(0o755)
    return ["--postgres-bin", str(fake), "--no-cache"]


def unknown_server_user(project: Path, ctx: Ctx) -> list[str]:
    require_root("--server-user only matters when run as root")
    return ["--server-user", "no_such_user_x"]


def bad_timeout(project: Path, ctx: Ctx) -> list[str]:
    return ["--timeout", "-5"]


def bad_pyproject_setting(project: Path, ctx: Ctx) -> list[str]:
    (project / "pyproject.toml").write_text("[tool.check-migrations]\ntimeuot = 30\n")
    return []


def read_only_run_dir(project: Path, ctx: Ctx) -> list[str]:
    target = ctx.shared / "ro"
    target.mkdir()
    _mount(["-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(target)])
    ctx.env["CHECK_MIGRATIONS_RUN_DIR"] = str(target)
    return ["--no-cache"]


def full_run_dir(project: Path, ctx: Ctx) -> list[str]:
    target = ctx.shared / "full"
    target.mkdir()
    # Room for the run directory, not for a cluster (initdb writes about 40 MB).
    _mount(["-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(target)])
    ctx.env["CHECK_MIGRATIONS_RUN_DIR"] = str(target)
    return ["--no-cache"]


_MOUNTED: list[Path] = []


def _mount(args: list[str]) -> None:
    require_mount(args)
    _MOUNTED.append(Path(args[-1]))


CASES: dict[str, Case] = {
    "no_alembic_ini": Case(no_alembic_ini, expect=(r"alembic\.ini: no such file", r"--config")),
    "ini_not_ini": Case(ini_not_ini, expect=(r"alembic\.ini: not a valid ini file",)),
    "wrong_script_location": Case(
        wrong_script_location,
        expect=(
            r"error: alembic\.ini: script_location 'migrations': Path doesn't exist: migrations;",
            r"set script_location to the directory holding env\.py",
        ),
    ),
    "missing_section": Case(
        missing_section, expect=(r"alembic\.ini: no \[tenants\] section", r"--name")
    ),
    "env_raises": Case(
        env_raises, expect=(r"^check-migrations: error: env\.py:\d+: RuntimeError: SECRET_KEY",)
    ),
    "env_exits": Case(env_exits, expect=(r"env\.py stopped: configure APP_ENV first",)),
    "env_never_runs_migrations": Case(
        env_never_runs_migrations, expect=(r"env\.py: env\.py never called .*run_migrations",)
    ),
    "env_never_commits": Case(
        env_never_commits,
        expect=(
            r"env\.py: after the upgrade the scratch database's alembic_version holds nothing, "
            r"not head 0002: env\.py did not migrate the database the checker handed it",
        ),
    ),
    "target_metadata_none": Case(
        target_metadata_none, expect=(r"env\.py: target_metadata is None; set it",)
    ),
    "model_import_error": Case(
        model_import_error, expect=(r"models\.py:1: cannot import module 'billing_helpers'",)
    ),
    "model_syntax_error": Case(model_syntax_error, expect=(r"models\.py:\d+: SyntaxError",)),
    "revision_syntax_error": Case(
        revision_syntax_error, expect=(r"versions/0003_oops\.py:\d+: SyntaxError",)
    ),
    "revision_sql_fails": Case(
        revision_sql_fails,
        scenario="bad_sql",
        expect=(
            r"revision 0002 \(versions/0002_broken\.py\)",
            r'relation "missing_table" does not exist',
            r"SQLSTATE 42P01",
        ),
    ),
    "revision_raises": Case(
        revision_raises,
        expect=(r"revision 0003 \(versions/0003_typo\.py\) raised AttributeError", r"Intger"),
    ),
    "missing_down_revision": Case(
        missing_down_revision,
        expect=(r"versions/0003_orphan\.py", r"0099", r"down_revision"),
    ),
    "revision_cycle": Case(
        revision_cycle,
        expect=(r"form a cycle", r"0001 \(versions/0001_initial\.py\)", r"down_revision"),
    ),
    "not_from_empty": Case(
        not_from_empty,
        scenario="bad_not_from_empty",
        expect=(
            r"revision 0002 \(versions/0002_legacy_code\.py\)",
            r'relation "legacy_accounts" does not exist',
            r"the history does not build a database from empty",
        ),
    ),
    "empty_versions_is_drift": Case(
        empty_versions,
        exit=EXIT_FINDINGS,
        expect=(r"users: table in the models, no revision creates it \[add_table\]",),
    ),
    "two_heads_is_a_finding": Case(
        two_heads, exit=EXIT_FINDINGS, expect=(r"2 heads", r"alembic merge heads")
    ),
    "malformed_dotenv": Case(malformed_dotenv, expect=(r"\.env:3", r"KEY=VALUE")),
    "unreachable_url": Case(unreachable_url, expect=(r"cannot connect to 127\.0\.0\.1:\d+/",)),
    "wrong_password": Case(
        wrong_password,
        needs_server=True,
        expect=(r"cannot connect to 127\.0\.0\.1:\d+/postgres", r"password authentication failed"),
    ),
    "role_without_createdb": Case(
        role_without_createdb,
        needs_server=True,
        expect=(r"127\.0\.0\.1:\d+/postgres: the role may not create databases", r"CREATEDB"),
    ),
    "bad_database_url": Case(bad_database_url, expect=(r"--database-url: not a URL",)),
    "no_binaries": Case(no_binaries, expect=(r"--postgres-bin .*/pg/bin: no postgres or initdb",)),
    "server_will_not_start": Case(
        server_will_not_start,
        expect=(r"PostgreSQL exited during start-up", r"could not map anonymous shared memory"),
    ),
    "unknown_server_user": Case(
        unknown_server_user, expect=(r"server user 'no_such_user_x' does not exist",), root=True
    ),
    "bad_timeout": Case(
        bad_timeout, expect=(r"Invalid value for '--timeout': -5\.0 is not in the range x>0",)
    ),
    "bad_pyproject_setting": Case(
        bad_pyproject_setting, expect=(r"pyproject\.toml .*unknown setting 'timeuot'",)
    ),
    "read_only_run_dir": Case(
        read_only_run_dir,
        expect=(r"cannot create .*/ro/check-migrations-\d+", r"Read-only"),
        root=True,
    ),
    "full_run_dir": Case(
        full_run_dir,
        expect=(
            r"initdb failed in .*/full/check-migrations-\d+/run-",
            # Which write hits the limit first varies: a relation file, or the 1 MB shared
            # memory file initdb's backend keeps in the data directory.
            r"No space left on device|could not resize shared memory segment",
            r"check free space",
        ),
        root=True,
    ),
}


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Ctx]:
    with shared_dir("cm-bad-input-") as shared:
        context = Ctx(tmp=tmp_path / "ctx", shared=shared)
        context.tmp.mkdir()
        try:
            yield context
        finally:
            while _MOUNTED:
                subprocess.run(["umount", "-l", str(_MOUNTED.pop())], check=False)


@pytest.mark.parametrize(
    "case", [pytest.param(k, marks=[pytest.mark.root] if c.root else []) for k, c in CASES.items()]
)
def test_bad_input(
    case: str,
    scenario: ScenarioFactory,
    ctx: Ctx,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = CASES[case]
    if spec.needs_server:
        ctx.server = request.getfixturevalue("real_server")
    project = scenario(spec.scenario)
    args = spec.setup(project, ctx)
    monkeypatch.setenv("CHECK_MIGRATIONS_QUIET", "1")
    for key, value in ctx.env.items():
        monkeypatch.setenv(key, value)

    assert main(args) == spec.exit
    out, err = capsys.readouterr()
    for secret in PASSWORDS:
        assert secret not in out + err
    if spec.exit == EXIT_FINDINGS:
        assert err == ""
        for pattern in spec.expect:
            assert re.search(pattern, out), f"{pattern!r} not in:\n{out}"
        return
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("check-migrations: error: "), err
    for pattern in spec.expect:
        assert re.search(pattern, lines[0]), f"{pattern!r} not in:\n{lines[0]}"
    assert out == ""


def test_traceback_only_with_verbose(
    scenario: ScenarioFactory, capfd: pytest.CaptureFixture[str]
) -> None:
    # capfd: with -v the worker writes to the real stderr, which capsys cannot stand in for.
    project = scenario("base")
    env_raises(project, Ctx(tmp=project, shared=project))
    assert main([]) == EXIT_ERROR
    assert "Traceback" not in capfd.readouterr().err
    assert main(["-v"]) == EXIT_ERROR
    err = capfd.readouterr().err
    assert "Traceback" in err
    assert err.strip().splitlines()[-1].startswith("check-migrations: error: env.py:")


def test_list_is_long_enough() -> None:
    errors = [c for c in CASES.values() if c.exit == EXIT_ERROR]
    assert len(errors) >= 20
